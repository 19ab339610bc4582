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

import numpy as np

from .heldout import (HeldOutUnavailableError, REFERENCE_SEED, ensure_heldout_samples, heldout_samples as draw,
                      heldout_set, held_out_real, real_reference, reference_key)
from .rundir import is_results_copy, real_dir
from ..core import io as cio
from ..core.data import load_dataset
from ..core.presets import scale
from ..core.vocab import (FD_METRICS, HELDOUT_FD_METRICS, MEMORIZATION_METRICS, REAL_REFERENCE_FEATURE_METRICS,
                          REAL_REFERENCE_METRICS, real_reference_metrics)
from ..measure.features import FeatureSpaceUnavailableError, extract_features
from ..measure.metrics import (frechet_distance, generation_metrics, memorization_index,
                               real_reference_memorization)

if TYPE_CHECKING:  # pragma: no cover
    from ..core.config import RunConfig
    from .rundir import GenerationResult, RunResult

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- feature spaces
@functools.lru_cache(maxsize=4)
def dinov2_unavailable_reason(device: str | None = None) -> str | None:
    """``None`` when DINOv2 features can be computed here, else the reason (weights missing offline, …)."""
    try:
        extract_features(np.zeros((1, 8, 8, 3), np.uint8), "dinov2", device=device)
    except FeatureSpaceUnavailableError as exc:
        return str(exc)
    return None


def real_reference_feature_space(runs: Sequence["RunResult"], device: str | None = None) -> str | None:
    """The feature space of the real-referenced memorization metrics beside pixels (PAPER.md §3.7,
    vocab.REAL_REFERENCE_FEATURE_METRICS): the bundled MNIST LeNet's for grey images, DINOv2-CLS for colour images
    where its weights exist; ``None`` (said in the log) where neither applies."""
    first = next((r.generations[0] for r in runs if r.generations), None)
    if first is None:
        return None
    if np.shape(first.train_images)[-1] == 1:
        return "lenet"
    reason = dinov2_unavailable_reason(device)
    if reason is None:
        return "dinov2"
    log.warning("no real-referenced memorization in a feature space for colour images: %s", reason)
    return None


def resolve_fd_metric(fd_fallback: str | None, device: str | None = None) -> tuple[str, str | None]:
    """F15's metric: ``("fd_dinov2", None)``, or, when DINOv2 is unavailable and the caller asked for a fallback,
    ``("fid", note)`` (``fd_fallback="inception"``: the FID Inception's pool3 space) or ``("fd_lenet", note)``
    (``"lenet"``: the bundled MNIST LeNet on held-out samples); otherwise the DINOv2 error is raised."""
    reason = dinov2_unavailable_reason(device)
    if reason is None:
        return "fd_dinov2", None
    if fd_fallback not in ("inception", "lenet"):
        raise FeatureSpaceUnavailableError(f"{reason}\nF15: pass fd_fallback='inception' (or 'lenet' for grey digits) "
                                           "to plot the Fréchet distance in that space instead (recorded on the figure).")
    if fd_fallback == "lenet":
        return "fd_lenet", ("FALLBACK: DINOv2 weights are unavailable here, so this is the Fréchet distance in the "
                            "bundled MNIST LeNet's features (held-out samples vs MNIST test images), not FD_DINO")
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
        real = r.real_images()[: r.config.n][:cap]
        key = (space, hashlib.sha1(real.tobytes()).hexdigest(), len(real))
        if key not in self.cache:
            self.cache[key] = extract_features(real, space, device=self.device)
        return self.cache[key]


def _fd(images: Any, real_features: Any, space: str, device: str | None, method: str = "eigh") -> float:
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

    Same definition as :func:`collapse_utils.measure.metrics.generation_metrics` (samples G_n vs the run's first n real
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
                          fid_samples: int | None = None, heldout_samples: int | None = None,
                          fd_samples: int | None = None, workers: int = 1) -> None:
    """Make sure every generation of ``runs`` has the metrics ``names`` (computed from stored artifacts).

    Held-out metrics (vocab.HELDOUT_METRICS) draw their held-out samples first, in ``workers`` processes;
    ``heldout_samples`` / ``fd_samples``: their sizes (None: the preset's, presets.Scale).
    """
    names = list(dict.fromkeys(names))
    heldout = (*HELDOUT_FD_METRICS, *MEMORIZATION_METRICS, *REAL_REFERENCE_FEATURE_METRICS)
    other = [m for m in names if m not in FD_METRICS and m not in heldout]
    if other:
        for r in runs:
            ensure_metrics(r, other, device=device)
    for m in names:
        if m in FD_METRICS:
            ensure_fd(runs, m, max_samples=fid_samples, device=device)
    held = [m for m in names if m in heldout]
    if held:
        ensure_heldout_metrics(runs, held, heldout_samples=heldout_samples, fd_samples=fd_samples, device=device,
                               workers=workers)


# ---------------------------------------------------------------------------------------------- held-out metrics
def _preset_counts(cfg: "RunConfig", heldout_samples: int | None, fd_samples: int | None) -> tuple[int, int]:
    s = scale(cfg.preset) if cfg.preset in ("smoke", "demo", "paper") else scale("paper")
    mem = int(heldout_samples if heldout_samples is not None else s.heldout_samples)
    fd = fd_samples if fd_samples is not None else (s.fd_samples if s.fd_samples is not None else cfg.n)
    return mem, int(fd)


def fd_sample_size(run: "RunResult", metric: str, fid_samples: int | None = None) -> int:
    """The images per side a figure's Fréchet distance ``metric`` of ``run`` uses: the preset's held-out count for
    held-out metrics, else ``fid_samples`` capped at the run's n (the convention of :func:`ensure_fd`)."""
    if metric in HELDOUT_FD_METRICS:
        return _preset_counts(run.config, None, None)[1]
    return run.config.n if fid_samples is None else min(int(fid_samples), run.config.n)


def _memorization_missing(g: Any, count: int, wanted: Sequence[str]) -> bool:
    return any(m not in g.metrics for m in wanted) or g.metrics.get("mem_index_pixel_samples") != count


def _feature_missing(g: Any, count: int, space: str) -> bool:
    return (any(m not in g.metrics for m in real_reference_metrics(space))
            or g.metrics.get(f"real_reference_{space}_samples") != count)


def ensure_heldout_metrics(runs: Sequence["RunResult"], names: Iterable[str], *, heldout_samples: int | None = None,
                           fd_samples: int | None = None, device: str | None = None, workers: int = 1) -> None:
    """Compute the held-out metrics ``names`` (``vocab.MEMORIZATION_METRICS``,
    ``vocab.REAL_REFERENCE_FEATURE_METRICS``, ``fd_lenet``) missing from every generation of ``runs`` and store
    them in its metrics.json (collapse_utils.loop.heldout says what is drawn).

    * memorization (PAPER.md §3.7): G_t = the first ``heldout_samples`` held-out samples of generation t, H_t =
      :func:`~collapse_utils.loop.heldout.heldout_set` of that size; stored with ``mem_index_pixel_samples`` and
      ``heldout_sources`` (H_t's count per source). The index and copy rate (``mem_index_pixel``,
      ``copy_rate_pixel``) and, from the same draws, the real-referenced ``copy_rate_real_pixel``, ``rho_pixel``
      and ``contraction_pixel`` (:func:`~collapse_utils.measure.metrics.real_reference_memorization`: R′ = as many
      held-out real images, i.e. H_1, against D_1) are computed and stored together; a request for any of them
      computes those missing;
    * the real-referenced metrics in a network's feature space (``rho_lenet``, ``copy_rate_real_lenet``,
      ``contraction_lenet``; the same with ``_dinov2``): the same draws G_t, H_t, D_t, R′ and D_1, each mapped to
      the space's features (:func:`~collapse_utils.measure.features.extract_features`) before the nearest-neighbour
      distances are taken; stored together with ``real_reference_<space>_samples``. A space that cannot be
      computed here (DINOv2 without its weights, LeNet on colour images) raises before any generation is written;
    * held-out Fréchet distances: the first ``fd_samples`` held-out samples of generation t against
      :func:`~collapse_utils.loop.heldout.real_reference` of the same size; stored with ``<metric>_samples``.

    Values computed with other counts are recomputed. A run whose dataset has no held-out real images gets a
    warning and no memorization metrics (its Fréchet distances use the MNIST test set or fail loudly). A
    weights-free copy (a results bundle's run, :func:`~collapse_utils.loop.rundir.copy_results`) cannot draw
    held-out samples: memorization metrics it lacks are left out with a warning (figures then omit their panels),
    and the copy is not written to.
    """
    names = list(names)
    fds = [m for m in names if m in HELDOUT_FD_METRICS]
    wanted = [m for m in names if m in MEMORIZATION_METRICS]
    spaces = list(dict.fromkeys(REAL_REFERENCE_FEATURE_METRICS[m] for m in names
                                if m in REAL_REFERENCE_FEATURE_METRICS))

    def lacks_memorization(g: Any, count: int) -> bool:
        return ((bool(wanted) and _memorization_missing(g, count, wanted))
                or any(_feature_missing(g, count, s) for s in spaces))

    requests: list[tuple[int, int, int]] = []
    for i, r in enumerate(runs):
        m_count, f_count = _preset_counts(r.config, heldout_samples, fd_samples)
        copy = is_results_copy(r.run_dir)
        for g in r.generations:
            need = 0
            if lacks_memorization(g, m_count) and not copy:
                need = m_count  # G_t, and (as a source of later H's) E_t
                sources = np.unique(g.train_sources)
                requests += [(i, int(k), m_count) for k in sources if k > 0]
            if any(m not in g.metrics or g.metrics.get(f"{m}_samples") != f_count for m in fds):
                need = max(need, f_count)
            if need:
                requests.append((i, g.generation, need))
    ensure_heldout_samples(runs, sorted(set(requests)), device=device, workers=workers)
    refs: dict[tuple[Any, ...], Any] = {}
    for r in runs:
        m_count, f_count = _preset_counts(r.config, heldout_samples, fd_samples)
        lacking = [g.generation for g in r.generations if lacks_memorization(g, m_count)]
        if lacking and is_results_copy(r.run_dir):
            asked = [*wanted, *(m for s in spaces for m in real_reference_metrics(s))]
            absent = [m for m in asked if any(m not in g.metrics for g in r.generations if g.generation in lacking)]
            log.warning("%s is a weights-free copy with no held-out samples: %s of generation(s) %s left out "
                        "(write the bundle again from the full store)", r.run_dir.name,
                        ", ".join(absent or asked), lacking)
            lacking = []
        reference = _real_reference_set(r, m_count) if lacking else None
        # R′ and D_1 in each feature space, once per run (an unavailable space raises here, before any write)
        reference_features = {} if reference is None else {
            s: tuple(_features(x, s, device) for x in reference) for s in spaces
            if any(_feature_missing(g, m_count, s) for g in r.generations)}
        for g in r.generations:
            changed = False
            if g.generation in lacking:
                try:
                    held, shares = heldout_set(r, g.generation, m_count, device)
                except HeldOutUnavailableError as exc:
                    log.warning("no memorization index for %s: %s", r.run_dir.name, exc)
                else:
                    samples = draw(r, g.generation, m_count, device)
                    if wanted and _memorization_missing(g, m_count, wanted):
                        if reference is None:
                            out = memorization_index(samples, held, g.train_images, device=device)
                        else:
                            out = real_reference_memorization(samples, held, g.train_images, *reference, device=device)
                            g.metrics.update(copy_rate_real_pixel=out["copy_rate_real"], rho_pixel=out["rho"],
                                             contraction_pixel=out["contraction"])
                        g.metrics.update(mem_index_pixel=out["mem_index"], copy_rate_pixel=out["copy_rate"],
                                         mem_index_pixel_samples=m_count,
                                         heldout_sources={str(k): v for k, v in shares.items()})
                    for space, (f_ref, f_first) in reference_features.items():
                        if not _feature_missing(g, m_count, space):
                            continue
                        out = real_reference_memorization(
                            *(_features(x, space, device) for x in (samples, held, g.train_images)), f_ref, f_first,
                            device=device)
                        c_name, rho_name, k_name = real_reference_metrics(space)
                        g.metrics.update({c_name: out["copy_rate_real"], rho_name: out["rho"],
                                          k_name: out["contraction"], f"real_reference_{space}_samples": m_count})
                    changed = True
            for m in fds:
                if m in g.metrics and g.metrics.get(f"{m}_samples") == f_count:
                    continue
                space = HELDOUT_FD_METRICS[m]
                key = (space, f_count, *reference_key(r.config))
                if key not in refs:
                    refs[key] = _features(real_reference(r.config, f_count, 0), space, device)
                g.metrics[m] = frechet_distance(_features(draw(r, g.generation, f_count, device), space, device),
                                                refs[key], method="eigh")
                g.metrics[f"{m}_samples"] = f_count
                changed = True
            if changed:
                g.write_metrics()


def _real_reference_set(run: "RunResult", count: int) -> tuple[Any, Any] | None:
    """The real reference of :func:`ensure_heldout_metrics`' real-referenced metrics (PAPER.md §3.7): ``count``
    held-out real images R′ (H_1's draws: the next images of the run's seeded draw, which no model trained on) and
    the run's first training set D_1; ``None`` (with a warning) where there are not ``count`` of them or D_1 is
    not all real."""
    first = run.generations[0] if run.generations else None
    real = held_out_real(run.config, count)
    if first is None or real is None or len(real) < count or not np.all(first.train_sources == 0):
        log.warning("no real reference for %s (%d held-out real images against an all-real D_1): %s left out",
                    run.run_dir.name, count, ", ".join(REAL_REFERENCE_METRICS))
        return None
    return real, first.train_images


def _features(images: Any, space: str, device: str | None) -> Any:
    return extract_features(images, space, device=device)


_FLOORS: dict[tuple[Any, ...], tuple[float, float, int]] = {}


# A held-out FD's noise floor is the mean over this many random disjoint splits of the reference source (MNIST's
# test set), as one split's FD is itself noisy (e.g. 1.7 or 2.0 at 2,000 or 5,000 images per side at 8×8).
FLOOR_SPLITS = 5


def _floor(cfg: "RunConfig", metric: str, count: int, device: str | None) -> tuple[float, float, int]:
    if metric in HELDOUT_FD_METRICS:
        space = HELDOUT_FD_METRICS[metric]
        if cfg.dataset == "mnist":
            values = [frechet_distance(_features(real_reference(cfg, count, 1, REFERENCE_SEED + k), space, device),
                                       _features(real_reference(cfg, count, 0, REFERENCE_SEED + k), space, device),
                                       method="eigh") for k in range(FLOOR_SPLITS)]
            return float(np.mean(values)), float(np.std(values, ddof=1)), len(values)
        a, b = real_reference(cfg, count, 1), real_reference(cfg, count, 0)
    else:  # the in-run convention: FD of samples against the run's first real images
        space = FD_METRICS[metric]
        a = held_out_real(cfg, count)
        if a is None or len(a) < count:
            raise HeldOutUnavailableError(f"{cfg.dataset} has no {count} held-out real images for a noise floor")
        b = load_dataset(cfg.dataset, count, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                         root=cfg.data_root, resize_method=cfg.resize_method).images
    return frechet_distance(_features(a, space, device), _features(b, space, device), method="eigh"), float("nan"), 1


def _floor_key(cfg: "RunConfig", metric: str, count: int, device: str | None) -> tuple[Any, ...]:
    """What a noise floor depends on: the metric, its real sets (the held-out reference, or the run's draw), the
    count and the device."""
    ref = reference_key(cfg) if metric in HELDOUT_FD_METRICS else (cfg.dataset, cfg.resolution, cfg.seed, cfg.n)
    return (metric, ref, int(count), device)


def fd_noise_floor(cfg: "RunConfig", metric: str, count: int, device: str | None = None) -> float:
    """The noise floor of a Fréchet distance on ``count`` images per side: the same distance between two disjoint
    real sets of that size (so differences below it are sampling noise).

    Held-out metrics (``fd_lenet``) on MNIST: the mean over :data:`FLOOR_SPLITS` random disjoint splits of the
    MNIST test set (:func:`~collapse_utils.loop.heldout.real_reference` with other orders; :func:`fd_noise_floor_spread`
    gives their sd); ``fid`` / ``fd_dinov2`` (samples against the run's first real images): held-out real images
    against the run's first ``count`` real images (one split). Cached per (metric, reference, count).
    """
    if metric not in HELDOUT_FD_METRICS and metric not in FD_METRICS:
        raise ValueError(f"{metric!r} is not a Fréchet-distance metric; choose one of "
                         f"{sorted(HELDOUT_FD_METRICS) + sorted(FD_METRICS)}")
    key = _floor_key(cfg, metric, count, device)
    if key not in _FLOORS:
        _FLOORS[key] = _floor(cfg, metric, int(count), device)
    return _FLOORS[key][0]


def fd_noise_floor_spread(cfg: "RunConfig", metric: str, count: int, device: str | None = None) -> tuple[float, int]:
    """The sd of :func:`fd_noise_floor` over its splits and their number (NaN and 1 where there is one split)."""
    fd_noise_floor(cfg, metric, count, device)
    _, sd, k = _FLOORS[_floor_key(cfg, metric, count, device)]
    return sd, k


# ---------------------------------------------------------------------------------------------- F11's FID
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
