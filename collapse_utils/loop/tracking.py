"""Experiment tracking: each generation's training loss curve and metrics, mirrored to an accelerate tracker.

The run's own files stay the source of truth; a tracker only shows them. After generation ``g`` is finished
(metrics written, ``DONE`` marked) :meth:`RunTracker.log_generation` reads back what was written and logs

* ``train/loss``: every optimizer step's loss from ``train_log.json`` at global step ``(g-1)*train_steps + step``
  (steps counted from 1), so the generations' curves follow one another on one axis;
* ``metrics/<name>``: every numeric value of ``metrics.json`` (strings and the timings are left out) at step ``g``;
* ``samples``: the generation's sample grid ``samples.png`` (its first samples, one row per class in conditional
  runs) as an image at step ``g``, so the images can be watched degrading over generations next to the numbers
  (TensorBoard's Images tab, through accelerate's ``log_images``; a ``wandb.Image`` in the metrics row for wandb).

Trackers (the ``tracker`` field, ``--tracker``): ``auto`` (default) is TensorBoard when it is installed (event
files in ``<run_dir>/tb/``) and no tracking when it is not; ``tensorboard`` and ``wandb`` must be installed,
else the run stops at its start, before anything is written; ``none`` logs nothing. Weights & Biases is started
as wandb itself is configured (``WANDB_MODE=offline`` keeps it offline, its files under ``<run_dir>/wandb/``).
Only the main process logs.

Resuming: only the generations computed by the current call are logged, each once, after its ``DONE`` marker,
so a resumed run never logs again what an earlier attempt logged (a finished run logs nothing). The price: a
generation whose process died between its ``DONE`` marker and its logging, or that was computed with tracking
off, is not logged later.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from accelerate.utils import is_tensorboard_available, is_wandb_available

from . import rundir
from ..core.config import RunConfig

# The package each tracker needs, and how to tell whether it is installed.
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}
INSTALLED = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}


SAMPLES_TAG = "samples"  # the tracker's name of each generation's sample grid


class TrackerMissingError(RuntimeError):
    """An explicitly chosen tracker whose package is not installed."""


def installed(name: str) -> bool:
    return bool(INSTALLED[name]())


def resolve_tracker(choice: str) -> str | None:
    """The tracker a run logs to (``None``: no tracking). Raises :class:`TrackerMissingError` when an explicitly
    chosen tracker is not installed; ``auto`` without TensorBoard is silently no tracking."""
    if choice == "none":
        return None
    if choice == "auto":
        return "tensorboard" if installed("tensorboard") else None
    if choice not in PACKAGES:
        raise ValueError(f"tracker must be one of auto, {', '.join(PACKAGES)} or none, got {choice!r}")
    if not installed(choice):
        pkg = PACKAGES[choice]
        raise TrackerMissingError(
            f"tracker {choice!r} needs the package {pkg}, which is not installed: pip install {pkg} "
            "(or choose --tracker none)")
    return choice


def samples_grid_image(gen: Path) -> Any:
    """The generation's written sample grid (``samples.png``) as a uint8 H×W×C array, or None if it has none."""
    import numpy as np
    from PIL import Image

    path = gen / rundir.SAMPLES_GRID
    if not path.exists():
        return None
    with Image.open(path) as img:
        grid = np.asarray(img)
    return grid[..., None] if grid.ndim == 2 else grid


def numeric_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The values of a metrics record that are numbers (no bools, strings or nested records)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class RunTracker:
    """The tracker of one run, started on the first generation it logs (so a run that computes nothing opens
    none); a no-op when tracking is off or on another process than the main one."""

    def __init__(self, cfg: RunConfig, run_dir: Path, main_process: bool = True):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.kind = resolve_tracker(cfg.tracker) if main_process else None
        self._tracker: Any = None

    def _start(self) -> Any:
        if self._tracker is None:
            if self.kind == "tensorboard":
                from accelerate.tracking import TensorBoardTracker

                tb = rundir.tb_dir(self.run_dir)
                tracker = TensorBoardTracker(tb.name, tb.parent)
                tracker.start()
            else:
                from accelerate.tracking import WandBTracker

                # One wandb run per run directory, continued when the run is resumed.
                ident = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:8]
                tracker = WandBTracker("model-collapse-repro", name=self.run_dir.name, dir=str(self.run_dir),
                                       id=f"{self.cfg.run_key()}-{ident}", resume="allow", config=self.cfg.to_dict())
                tracker.start()
                tracker.tracker.define_metric("train/global_step")
                tracker.tracker.define_metric("train/*", step_metric="train/global_step")
                tracker.tracker.define_metric("generation")
                tracker.tracker.define_metric("metrics/*", step_metric="generation")
                tracker.tracker.define_metric(SAMPLES_TAG, step_metric="generation")
            self._tracker = tracker
        return self._tracker

    def log_generation(self, g: int) -> None:
        """Log generation ``g`` from its written ``train_log.json``, ``metrics.json`` and ``samples.png``."""
        if self.kind is None:
            return
        gen = rundir.gen_dir(self.run_dir, g)
        tracker = self._start()
        log_data = rundir.read_train_log(gen) or {"losses": []}
        offset = (g - 1) * self.cfg.train_steps
        metrics = {f"metrics/{k}": v for k, v in numeric_scalars(rundir.read_metrics(gen)).items()}
        grid = samples_grid_image(gen)
        if self.kind == "tensorboard":
            writer = tracker.tracker
            for step, loss in enumerate(log_data["losses"], start=1):
                writer.add_scalar("train/loss", float(loss), global_step=offset + step)
            if grid is not None:  # one image, N×H×W×C
                tracker.log_images({SAMPLES_TAG: grid[None]}, step=g, dataformats="NHWC")
            tracker.log(metrics, step=g)  # flushes
        else:  # wandb: each series against its own step metric (wandb's own step only grows)
            import wandb

            for step, loss in enumerate(log_data["losses"], start=1):
                tracker.log({"train/loss": float(loss), "train/global_step": offset + step})
            row: dict[str, Any] = {**metrics, "generation": g}
            if grid is not None:
                row[SAMPLES_TAG] = wandb.Image(grid, caption=f"generation {g}: first samples")
            tracker.log(row)

    def __enter__(self) -> "RunTracker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()

    def finish(self) -> None:
        if self._tracker is not None:
            self._tracker.finish()
            self._tracker = None
