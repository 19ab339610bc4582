"""The package's vocabularies: every name a configuration, a figure or a metric may use, defined once.

Every other module imports its names from here (the config validates against them, the CLI offers them as
choices, the figure registry and plots order by them), so a new paradigm, method, space or metric is added in
one place. Meanings: paradigms PAPER.md §4.4; selection methods PAPER.md §4 (Algorithms 1 and 2); feature
spaces and metrics PAPER.md §3.
"""

from __future__ import annotations

PRESETS = ("smoke", "demo", "paper")

# Datasets by name (collapse_utils.core.data), the path forms, and the resizing filters.
DATASETS = ("mnist", "cifar10", "cifar10_catdog", "ffhq32", "fashion_mnist", "digits")
DATASET_PREFIXES = ("folder:", "npy:")
RESIZE_METHODS = ("bilinear", "area", "nearest")

# How generation g >= 2 builds its training set (PAPER.md §4.4; the loop's module table).
PARADIGMS = ("replace", "replace_2n", "accumulate_subsample", "accumulate", "fresh")

# Display names of the paradigms: in legends and panel titles, and in running text (the claims table, the demo's arm
# names), where the paper's "accumulate" is accumulate_subsample.
PARADIGM_LABELS = {"replace": "Replace", "replace_2n": "Replace, 2N images", "accumulate_subsample": "Accumulate",
                   "accumulate": "Accumulate (growing set)", "fresh": "Fresh real data"}
PARADIGM_SHORT_LABELS = {**{p: p for p in PARADIGMS}, "accumulate_subsample": "accumulate"}

# The built-in ways n images are picked from a candidate pool: none (the first n), random, Greedy Selection
# (Algorithm 1), Threshold Decay Filter (Algorithm 2). Everything else about a method (its function, parameters,
# defaults, feature spaces, labels, colour) and methods of one's own: the registry, collapse_utils.core.methods.
SELECTION_METHODS = ("none", "random", "greedy", "threshold")
# When the Threshold Decay Filter lowers its threshold: after every pass (the authors' code) or only when a pass
# adds nothing (the paper's pseudo-code).
FILTER_SCHEDULES = ("every_pass", "when_stalled")
# The two pool kinds the filter's default parameters depend on (selection.default_filter_params).
POOL_KINDS = ("replace", "accumulate")
# Conditional runs: select within each class, or over the whole pool.
CLASS_SELECTIONS = ("per_class", "global")

# Where images are compared: raw pixels (0-255), DINOv2-small CLS token, Inception pool3 (FID's network), the
# bundled MNIST LeNet's penultimate layer (grey digits only).
FEATURE_SPACES = ("pixel", "dinov2", "inception", "lenet")
# Spaces only metrics use (a run's selection cannot): the authors' FID network, torchvision's ImageNet
# inception_v3 (PAPER.md §3.3), and DINOv2-small's full token map, 257 tokens x 384 flattened (their
# token-map score, PAPER.md §3.1).
METRIC_ONLY_SPACES = ("inception_torchvision", "dinov2_tokens")

# Fréchet-distance metrics of a generation's samples against the run's real images, and the space of each.
FD_METRICS = {"fid": "inception", "fd_dinov2": "dinov2", "fid_torchvision": "inception_torchvision"}
# Which Fréchet distance the FD figures compute and plot (their ``fid_mode`` parameter): clean-fid's standard FID
# Inception, the authors' torchvision network, or the bundled MNIST LeNet on held-out samples (PAPER.md §3.8).
FID_MODES = {"clean": "fid", "torchvision": "fid_torchvision", "lenet": "fd_lenet"}
# Metrics measured after a run against held-out images (collapse_utils.loop.heldout), never by the loop: the
# memorization index and copy rate of the model's samples against fresh draws of D_t's source, and the same
# distances against a real reference fixed per run (PAPER.md §3.7; from the same draws) ...
MEMORIZATION_INDEX_METRICS = ("mem_index_pixel", "copy_rate_pixel")
REAL_REFERENCE_QUANTITIES = ("copy_rate_real", "rho", "contraction")


def real_reference_metrics(space: str) -> tuple[str, ...]:
    """The real-referenced metrics with distances in ``space``: ``copy_rate_real_<space>``, ``rho_<space>``,
    ``contraction_<space>``."""
    return tuple(f"{q}_{space}" for q in REAL_REFERENCE_QUANTITIES)


REAL_REFERENCE_METRICS = real_reference_metrics("pixel")
MEMORIZATION_METRICS = MEMORIZATION_INDEX_METRICS + REAL_REFERENCE_METRICS
# ... the same real-referenced metrics with the distances taken in a network's feature space instead of pixels, and
# the space of each: the bundled MNIST LeNet's (grey digits) and DINOv2-small's CLS token (where its weights exist).
REAL_REFERENCE_SPACES = ("lenet", "dinov2")
REAL_REFERENCE_FEATURE_METRICS = {m: space for space in REAL_REFERENCE_SPACES for m in real_reference_metrics(space)}
# ... and Fréchet distances of held-out samples against a held-out real reference (PAPER.md §3.8), with the
# feature space of each.
HELDOUT_FD_METRICS = {"fd_lenet": "lenet"}
HELDOUT_METRICS = MEMORIZATION_METRICS + tuple(REAL_REFERENCE_FEATURE_METRICS) + tuple(HELDOUT_FD_METRICS)
# Metrics of a generation's samples G_t rather than of its training set D_t carry this prefix
# (``samples_entropy_pixel``); the suffix ``_samples`` is taken by sample counts (``fid_samples``).
SAMPLES_PREFIX = "samples_"
# Every per-generation metric (metrics.generation_metrics computes those not in HELDOUT_METRICS).
METRIC_NAMES = tuple(
    [f"gs_{s}" for s in FEATURE_SPACES]
    + [f"entropy_{s}" for s in FEATURE_SPACES]
    + list(FD_METRICS) + ["cov_trace", "mnnd", "mem_ratio"]
    + [f"{SAMPLES_PREFIX}entropy_{s}" for s in FEATURE_SPACES]
    + [f"{SAMPLES_PREFIX}cov_trace", f"{SAMPLES_PREFIX}mnnd"]
    + ["gs_dinov2_tokens"]
    + list(HELDOUT_METRICS)
)
DEFAULT_METRICS = ("gs_pixel", "entropy_pixel", "cov_trace", "mnnd", "mem_ratio")

# Model families (collapse_utils.diffusion.family.FAMILIES registers one per name): the paper's DDPM UNet, and a DiT
# on pixels (ours).
MODEL_FAMILIES = ("unet", "dit")
MODEL_FAMILY_LABELS = {"unet": "UNet", "dit": "DiT"}  # as the command line names them

# Execution: numeric precision of training, and which implementation trains and samples.
MIXED_PRECISION = ("no", "fp16", "bf16")
RECIPES = ("auto", "reference", "fast")
# Where each generation's loss curve and metrics are also logged (collapse_utils.loop.tracking): auto is TensorBoard
# when it is installed, else nothing.
TRACKERS = ("auto", "tensorboard", "wandb", "none")

# How `sweep --executor` submits runs: a Slurm job array, processes on this machine, or in the sweep's own process
EXECUTORS = ("slurm", "local", "debug")


def metric_feature_spaces(names) -> set[str]:
    """The feature spaces the metrics ``names`` extract (``gs_dinov2`` → dinov2, ``fid`` → inception,
    ``samples_entropy_dinov2`` → dinov2, ``gs_dinov2_tokens`` → dinov2_tokens)."""
    spaces = set()
    for name in names:
        if name.startswith(SAMPLES_PREFIX):
            name = name[len(SAMPLES_PREFIX):]
        if name.startswith(("gs_", "entropy_")):
            spaces.add(name.split("_", 1)[1])
        elif name in FD_METRICS:
            spaces.add(FD_METRICS[name])
        elif name in HELDOUT_FD_METRICS:
            spaces.add(HELDOUT_FD_METRICS[name])
        elif name in REAL_REFERENCE_FEATURE_METRICS:
            spaces.add(REAL_REFERENCE_FEATURE_METRICS[name])
    return spaces
