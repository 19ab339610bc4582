"""Preflight: the checks a run must pass before any long work starts, so bad input fails first and loses nothing.

The selection method and the feature space it compares in (collapse_utils.core.methods.check_selection), the
real images (count, shape, dtype), the model (a size of the run's model family, fitting the resolution, with
a recipe the family has: the fast CUDA recipe is the UNet's alone), the metric names, the feature networks that
selection and metrics will need (loaded now, so missing DINOv2 weights fail here rather than after generation 1
trained), the free disk for the generations still to run, and a warning for a paper-size run on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core import io as cio
from . import rundir
from ..core.config import RunConfig
from ..core.data import validate_images
from ..core.methods import check_selection
from ..measure.features import check_feature_space
from ..diffusion.family import get_family
from .paradigms import real_images_needed
from ..core.vocab import METRIC_NAMES, metric_feature_spaces


def estimate_disk_bytes(cfg: RunConfig, image_bytes: int, params: int, generations: int | None = None) -> int:
    """A generous estimate of what the run writes: training sets, samples, models and one checkpoint.

    ``generations``: how many generations are still to run (default all); the real images count once.
    Samples count twice (part files and the assembled array exist together for a moment).
    """
    todo = cfg.generations if generations is None else generations
    per_gen_train = cfg.n * (cfg.generations if cfg.paradigm == "accumulate" else 2)
    per_gen = (per_gen_train + 2 * cfg.samples_per_generation) * image_bytes + params * 4 * 4
    return todo * per_gen + real_images_needed(cfg) * image_bytes


def _size(nbytes: int) -> str:
    """A byte count in the largest unit that keeps it above 1 (3 MiB, not 0.00 GiB)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes} bytes"


def check_model_choice(cfg: RunConfig, device: torch.device | str | None = None) -> None:
    """Refuse a model the run's family does not have, or a recipe it lacks (the fast CUDA recipe is the UNet's
    alone), before anything is loaded or written; the resolution is checked with the images (:func:`preflight`)."""
    family = get_family(cfg.model_family)
    if cfg.model not in family.sizes:
        family.check(cfg.model, 0)  # raises, naming the family's sizes
    family.resolve_recipe(cfg.recipe, torch.device(device) if device is not None else torch.device("cpu"))


def preflight(cfg: RunConfig, real_images: np.ndarray, run_dir: Path, device: torch.device | str | None = None) -> None:
    """Refuse the run now if it cannot finish (see the module docstring); nothing is written."""
    check_selection(cfg)
    validate_images(real_images, name=f"dataset {cfg.dataset!r}")
    if len(real_images) < real_images_needed(cfg):
        raise ValueError(f"the run needs {real_images_needed(cfg)} real images, but only {len(real_images)} were loaded")
    h, w, c = real_images.shape[1:]
    if h != w:
        raise ValueError(f"images must be square, got {h}×{w}")
    check_model_choice(cfg, device)
    family = get_family(cfg.model_family)
    family.check(cfg.model, h)  # fitting the resolution
    if cfg.conditional and cfg.num_classes < 2:
        raise ValueError("a conditional run needs num_classes >= 2")
    unknown = [m for m in cfg.metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric name(s) {unknown}; valid: {METRIC_NAMES}")
    spaces = metric_feature_spaces(cfg.metrics) | ({cfg.feature_space} if cfg.selection != "none" else set())
    if "lenet" in spaces and c != 1:
        raise ValueError(f"feature space 'lenet' (an MNIST digit classifier's features) needs grey images, but "
                         f"dataset {cfg.dataset!r} has {c} channels; use pixel, dinov2 or inception")
    for space in sorted(spaces):
        check_feature_space(space, device=device)
    params = family.count_parameters(cfg.model, resolution=h, channels=c)
    todo = sum(not rundir.is_done(run_dir, g) for g in range(1, cfg.generations + 1))
    need = estimate_disk_bytes(cfg, h * w * c, params, generations=todo)
    free = cio.free_disk_bytes(run_dir)
    if todo and need > free:
        raise OSError(f"the run needs about {_size(need)} of disk in {run_dir}, but only {_size(free)} is free")


def paper_scale_on_cpu(cfg: RunConfig, device: torch.device) -> str | None:
    """A warning for a paper-size model and schedule on a CPU, where one generation takes days."""
    if device.type != "cpu" or not cfg.model.startswith(("unet", "dit_")) or cfg.train_steps < 10_000:
        return None
    return (f"{cfg.model} for {cfg.train_steps:,} training steps on a CPU takes days per generation; "
            "use a CUDA GPU (see README 'GPU, Colab and several GPUs'), or --preset demo for a CPU-sized run")
