"""Metrics of stored runs computed after the fact from their artifacts (samples, real images), not by the loop.

A figure may plot a metric its runs did not compute while training (FID, FD_DINO, GS/entropy in another feature
space, PAPER.md §3). These functions compute it from the run's stored samples and real images and add it to the
generation's ``metrics.json``; a metric already there (with the same sample count, for Fréchet distances) is kept.

Every Fréchet distance here goes one way (:func:`_fd_of_generation`): features of the generation's first k
samples against the run's first min(n, cap) real images (real features extracted once per distinct real set),
``metrics.frechet_distance(method="eigh")``, stored as ``<metric>`` and ``<metric>_samples``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .rundir import real_dir
from .vocab import FD_METRICS

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig
    from .rundir import GenerationResult, RunResult

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- feature spaces
@functools.lru_cache(maxsize=4)
def dinov2_unavailable_reason(device: str | None = None) -> str | None:
    """``None`` when DINOv2 features can be computed here, else the reason (weights missing offline, …)."""
    import numpy as np

    from .features import FeatureSpaceUnavailableError, extract_features

    try:
        extract_features(np.zeros((1, 8, 8, 3), np.uint8), "dinov2", device=device)
    except FeatureSpaceUnavailableError as exc:
        return str(exc)
    return None


def resolve_fd_metric(fd_fallback: str | None, device: str | None = None) -> tuple[str, str | None]:
    """F15's metric: ``("fd_dinov2", None)``, or ``("fid", note)`` when DINOv2 is unavailable and the caller asked
    for the Inception fallback (``fd_fallback="inception"``); otherwise the DINOv2 error is raised."""
    reason = dinov2_unavailable_reason(device)
    if reason is None:
        return "fd_dinov2", None
    if fd_fallback != "inception":
        from .features import FeatureSpaceUnavailableError

        raise FeatureSpaceUnavailableError(f"{reason}\nF15: pass fd_fallback='inception' to plot the Fréchet "
                                           "distance in the FID Inception's pool3 space instead (recorded on the figure).")
    return "fid", ("FALLBACK: DINOv2 weights are unavailable here, so this is the Fréchet distance in the FID "
                   "Inception's pool3 space (= FID), not FD_DINO")


# ---------------------------------------------------------------------------------------------- the one FD path
def _fd_sample_count(g: Any, cap: int | None) -> int:
    total = int(g.metrics.get("num_samples") or len(g.samples))
    return total if cap is None else min(cap, total)


def _fd_missing(g: Any, metric: str, cap: int) -> bool:
    """The generation lacks ``metric``, or has it computed with another sample count."""
    done = g.metrics.get(f"{metric}_samples", g.metrics.get("num_samples"))
    return metric not in g.metrics or done != _fd_sample_count(g, cap)


class _RealFeatures:
    """Features of runs' real sets, extracted once per (feature space, distinct real set)."""

    def __init__(self, device: str | None) -> None:
        self.device = device
        self.cache: dict[tuple[str, str, int], Any] = {}

    def __call__(self, r: "RunResult", cap: int, space: str) -> Any:
        from .features import extract_features

        real = r.real_images()[: r.config.n][:cap]
        key = (space, hashlib.sha1(real.tobytes()).hexdigest(), len(real))
        if key not in self.cache:
            self.cache[key] = extract_features(real, space, device=self.device)
        return self.cache[key]


def _fd(images: Any, real_features: Any, space: str, device: str | None, method: str = "eigh") -> float:
    from .features import extract_features
    from .metrics import frechet_distance

    return frechet_distance(extract_features(images, space, device=device), real_features, method=method)


def _fd_of_generation(r: "RunResult", g: "GenerationResult", metric: str, cap: int, real: _RealFeatures,
                      method: str = "eigh") -> None:
    """Compute ``metric`` (a name of ``vocab.FD_METRICS``) of generation ``g`` of run ``r`` and record it with its
    count."""
    space = FD_METRICS[metric]
    k = _fd_sample_count(g, cap)
    g.metrics[metric] = _fd(g.samples[:k], real(r, cap, space), space, real.device, method)
    g.metrics[f"{metric}_samples"] = k
    g.write_metrics()  # through the run directory's one writer of metrics.json


# ---------------------------------------------------------------------------------------------- figure metrics
def ensure_fd(runs: Sequence["RunResult"], metric: str, *, max_samples: int | None = None,
              device: str | None = None, method: str = "eigh") -> None:
    """Compute a missing Fréchet-distance metric (``fid``, ``fid_torchvision``, ``fd_dinov2``: ``vocab.FD_METRICS``)
    for every generation and store it.

    Same definition as :func:`collapse_utils.metrics.generation_metrics` (samples G_n vs the run's first n real
    images), but real features are extracted once per distinct real set, and the matrix square root uses
    ``frechet_distance(method="eigh")`` (exact; agrees with scipy's ``sqrtm`` to ~1e-8 relative, seconds instead
    of ~30 s per value on a 2-core CPU). ``max_samples`` caps both sets (``None``: the run's n; the figures pass
    32,768 at paper scale, the authors' cap on G_n in ``FID.py``); the count used is stored as
    ``<metric>_samples`` and a value computed with another count is recomputed.
    """
    real = _RealFeatures(device)
    for r in runs:
        cap = r.config.n if max_samples is None else int(max_samples)
        for g in [g for g in r.generations if _fd_missing(g, metric, cap)]:
            _fd_of_generation(r, g, metric, cap, real, method)


def measure_generation(cfg: "RunConfig", train: Any, samples: Any, real: Any, device: Any) -> dict[str, Any]:
    """A generation's metrics record, as the loop writes it: the configured metrics (PAPER.md §3) of its
    training set and samples, plus the training set's composition (size, share and counts per source)."""
    import numpy as np

    from .metrics import generation_metrics

    metrics: dict[str, Any] = dict(generation_metrics(
        train.images, samples.images, real_images=real.images[: cfg.n], names=cfg.metrics, device=device,
    ))
    sources, counts = np.unique(train.sources, return_counts=True)
    metrics["train_size"] = int(len(train))
    metrics["num_samples"] = int(len(samples))
    metrics["real_share"] = float(np.mean(train.sources == 0))
    metrics["source_counts"] = {str(int(s)): int(c) for s, c in zip(sources, counts)}
    metrics["feature_space"] = cfg.feature_space
    return metrics


def ensure_metrics(run: "RunResult", names: Iterable[str], device: str | None = None) -> "RunResult":
    """Compute the metrics ``names`` missing from a run's finished generations from the stored artifacts, and store
    them. Metrics are not part of a run's key: a figure that needs one more metric reuses the trained runs."""
    from .metrics import generation_metrics

    names = list(names)
    real = None
    for g in run.generations:
        missing = [m for m in names if m not in g.metrics]
        if not missing:
            continue
        if real is None:
            real = run.real_images()[: run.config.n]
        g.metrics.update(generation_metrics(g.train_images, g.samples, real_images=real, names=tuple(missing),
                                            device=device))
        g.write_metrics()
    return run


def ensure_figure_metrics(runs: Sequence["RunResult"], names: Iterable[str], *, device: str | None = None,
                          fid_samples: int | None = None) -> None:
    """Make sure every generation of ``runs`` has the metrics ``names`` (computed from stored artifacts)."""
    names = list(dict.fromkeys(names))
    other = [m for m in names if m not in FD_METRICS]
    if other:
        for r in runs:
            ensure_metrics(r, other, device=device)
    for m in names:
        if m in FD_METRICS:
            ensure_fd(runs, m, max_samples=fid_samples, device=device)


# ---------------------------------------------------------------------------------------------- F11's FID
def held_out_real(cfg: "RunConfig", count: int) -> "Any | None":
    """``count`` real images the run never saw (the next ones of the same seeded draw), or ``None`` if the dataset
    has no more (e.g. the bundled 12,000-image MNIST at n = 12,000)."""
    import numpy as np

    from .data import load_dataset
    from .paradigms import real_images_needed

    used = real_images_needed(cfg)
    try:
        ds = load_dataset(cfg.dataset, used + count, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                          root=cfg.data_root, resize_method=cfg.resize_method)
        ref = load_dataset(cfg.dataset, used, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                           root=cfg.data_root, resize_method=cfg.resize_method)
    except (ValueError, OSError) as exc:
        log.info("no held-out real images for the FID reference: %s", exc)
        return None
    if not np.array_equal(ds.indices[:used], ref.indices):  # a larger draw must extend the run's own
        return None
    return ds.images[used:used + count]


def ensure_last_generation_fid(runs: Sequence["RunResult"], *, max_samples: int | None = None,
                               device: str | None = None, metric: str = "fid") -> dict[str, Any] | None:
    """FID of each run's last generation against its first n real images, stored as ``<metric>`` /
    ``<metric>_samples`` in that generation's metrics.json (the convention of :func:`ensure_fd`, so F8 reuses it
    and vice versa); ``metric`` is ``fid`` or the authors' ``fid_torchvision`` (``vocab.FID_MODES``).

    Only the last generation: F11 reports FID there ([PN]: "FID at Iter. 8"). ``max_samples`` caps both sets
    (``None``: the run's n). The Fréchet distance uses the exact ``eigh`` form (seconds instead of ~30 s for 2048-d
    on a CPU; equal to scipy's sqrtm to ~1e-8). Returns the sample-size floor: FID of as many held-out real images
    against the same real set (``None`` where the dataset has no held-out images), cached in the first run's
    ``real/`` folder.
    """
    from . import io as cio

    real = _RealFeatures(device)
    space = FD_METRICS[metric]
    reference = None
    for r in runs:
        cap = r.config.n if max_samples is None else int(max_samples)
        if r.generations and _fd_missing(r.generations[-1], metric, cap):
            _fd_of_generation(r, r.generations[-1], metric, cap, real)
    if runs and runs[0].generations:
        r = runs[0]
        cap = r.config.n if max_samples is None else int(max_samples)
        count = min(cap, r.config.n)
        path = real_dir(r.run_dir) / f"{metric}_reference_{count}.json"
        try:
            reference = cio.read_json(path)
        except (cio.CorruptArtifactError, FileNotFoundError):
            held = held_out_real(r.config, count)
            if held is not None and len(held) == count:
                reference = {"fid": _fd(held, real(r, cap, space), space, device), "metric": metric,
                             "samples": count, "what": "FID of held-out real images against the run's real set"}
                cio.atomic_write_json(path, reference)
    return reference
