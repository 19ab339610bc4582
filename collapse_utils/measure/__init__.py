"""What is measured on a set of images: feature spaces (features, lenet) and the paper's metrics (metrics:
the entropy and generalization score of PAPER.md §3, Fréchet distances, memorization). Knows nothing of runs.

Entry points: :func:`collapse_utils.measure.metrics.generation_metrics`,
:func:`collapse_utils.measure.features.extract_features`.
"""
