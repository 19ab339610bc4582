"""The self-consuming loop (PAPER.md §4): how each generation's training set is built (paradigms, selection),
one run (run), its folder on disk (rundir), its metrics (run_metrics, heldout), checks before training
(preflight), logging (tracking), the run store shared by commands and notebooks (store) and the paper's
experiment grids (experiments).

Entry points: :func:`collapse_utils.loop.run.run_self_consuming`, :func:`collapse_utils.loop.rundir.load_run`,
:func:`collapse_utils.loop.store.ensure_runs`.
"""
