"""The self-consuming loop (PAPER.md §4.4, F1): train → sample → build the next training set → repeat.

Generation 1 trains on real data. Generation g ≥ 2 trains on a set built by the paradigm from the real
data and the samples of generations 1 … g−1, optionally through a selection step that picks n images from a
candidate pool (Greedy Selection, Threshold Decay Filter):

================== ======================================================= ===============================
paradigm           training set of generation g ≥ 2                         pool when selecting
================== ======================================================= ===============================
replace            n samples of generation g−1 (the first n)               pool_factor·n samples of g−1
replace_2n         2n samples of generation g−1 (appendix C.1)             (no selection)
accumulate_subsample n images drawn evenly from real, 1, …, g−1 (authors')   real ∪ all earlier samples
accumulate         real ∪ all samples of 1 … g−1 (grows by n per generation) real ∪ all earlier samples
fresh              ⌊f·n⌉ new real images + the rest from generation g−1     pool_factor·n samples of g−1
================== ======================================================= ===============================

Per generation ``gen_XX/`` holds ``train.npy`` (uint8), ``train_sources.npy`` (0 = real, k = generation k),
``train_labels.npy`` (conditional runs), ``samples.npy`` (+ ``sample_labels.npy``), ``model/`` (diffusers
format, loadable by ``DDPMPipeline``), ``metrics.json`` and the ``DONE`` marker, written last.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import io as cio
from .config import RunConfig
from .models import build_scheduler, min_resolution

log = logging.getLogger(__name__)

SelectFn = Callable[..., np.ndarray]


class ConfigMismatchError(ValueError):
    """The run directory was started with another configuration."""


# ---------------------------------------------------------------------- seeds
def derive_seed(seed: int, generation: int, purpose: str) -> int:
    """Independent, reproducible seeds per (run seed, generation, purpose)."""
    code = int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")
    return int(np.random.SeedSequence([seed, generation, code]).generate_state(1)[0])


# ---------------------------------------------------------------------- results
@dataclass
class GenerationResult:
    generation: int
    dir: Path
    metrics: dict[str, Any]

    def load(self, name: str) -> np.ndarray:
        return cio.load_npy(self.dir / f"{name}.npy")

    @property
    def train_images(self) -> np.ndarray:
        return self.load("train")

    @property
    def samples(self) -> np.ndarray:
        return self.load("samples")

    @property
    def train_sources(self) -> np.ndarray:
        return self.load("train_sources")


@dataclass
class RunResult:
    config: RunConfig
    run_dir: Path
    generations: list[GenerationResult] = field(default_factory=list)

    def metrics_table(self) -> list[dict[str, Any]]:
        """One row per generation: the run's identifying fields plus that generation's metrics."""
        c = self.config
        base = dict(run=self.run_dir.name, dataset=c.dataset, n=c.n, paradigm=c.paradigm, selection=c.selection,
                    feature_space=c.feature_space, seed=c.seed, decay=c.decay)
        return [{**base, "generation": g.generation, **g.metrics} for g in self.generations]

    def real_images(self) -> np.ndarray:
        return cio.load_npy(self.run_dir / "real" / "images.npy")

    def ensure_metrics(self, names: tuple[str, ...] | list[str], device: str | None = None) -> "RunResult":
        """Compute metrics missing from finished generations (e.g. FID for a figure) and store them.

        Metrics are not part of a run's key: a figure that needs one more metric reuses the trained runs.
        """
        from .metrics import generation_metrics

        real = None
        for g in self.generations:
            missing = [m for m in names if m not in g.metrics]
            if not missing:
                continue
            if real is None:
                real = self.real_images()[: self.config.n]
            g.metrics.update(generation_metrics(g.train_images, g.samples, real_images=real, names=tuple(missing),
                                                device=device))
            cio.atomic_write_json(g.dir / "metrics.json", g.metrics)
        return self


# ---------------------------------------------------------------------- training-set construction
@dataclass
class Pool:
    """Candidate images with where each came from (0 = real, k = generation k) and optional labels."""

    images: np.ndarray
    sources: np.ndarray
    labels: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "Pool":
        idx = np.asarray(idx, dtype=np.int64)
        return Pool(self.images[idx], self.sources[idx], None if self.labels is None else self.labels[idx])

    @staticmethod
    def concat(pools: list["Pool"]) -> "Pool":
        labels = None if any(p.labels is None for p in pools) else np.concatenate([p.labels for p in pools])
        return Pool(np.concatenate([p.images for p in pools]), np.concatenate([p.sources for p in pools]), labels)

    def __len__(self) -> int:
        return len(self.images)


def even_counts(total: int, parts: int) -> np.ndarray:
    """Split ``total`` into ``parts`` counts differing by at most one (earlier parts get the remainder)."""
    counts = np.full(parts, total // parts, dtype=np.int64)
    counts[: total % parts] += 1
    return counts


def subsample_evenly(sources: list[Pool], n: int, seed: int) -> Pool:
    """The authors' accumulate-subsample: n images drawn evenly at random from each source.

    The authors take n//t + 1 per source and train on the slightly larger union (PAPER.md §4.4 quirk);
    here exactly n are taken, per-source counts differing by at most one.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for pool, k in zip(sources, even_counts(n, len(sources))):
        if k > len(pool):
            raise ValueError(f"a source holds {len(pool)} images, fewer than the {k} to draw from it")
        picked.append(pool.take(np.sort(rng.choice(len(pool), size=k, replace=False))))
    return Pool.concat(picked)


def select_from_pool(
    pool: Pool,
    n: int,
    cfg: RunConfig,
    seed: int,
    *,
    features_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    select_fn: SelectFn | None = None,
    paradigm_kind: str = "replace",
) -> Pool:
    """Pick ``n`` of ``pool`` with ``cfg.selection`` in ``cfg.feature_space``.

    Conditional runs with ``class_selection='per_class'`` select within each class, keeping the class
    counts of a balanced set (so guidance still sees every digit); ``'global'`` ignores labels.
    """
    if n > len(pool):
        raise ValueError(f"cannot select {n} images from a pool of {len(pool)}")
    if cfg.selection == "none":
        return pool.take(np.arange(n))
    from . import features as feats
    from . import selection as sel

    features_fn = features_fn or (lambda imgs: feats.extract_features(imgs, cfg.feature_space, device=cfg.device))
    select_fn = select_fn or sel.select
    params: dict[str, Any] = {}
    if cfg.selection == "threshold":
        params = sel.default_filter_params(cfg.feature_space, paradigm_kind)
        if cfg.threshold is not None:
            params["threshold"] = cfg.threshold
        if cfg.decay is not None:
            params["decay"] = cfg.decay
        params["schedule"] = cfg.filter_schedule
    features = features_fn(pool.images)
    if not (cfg.conditional and cfg.class_selection == "per_class" and pool.labels is not None):
        return pool.take(select_fn(cfg.selection, features, n, seed=seed, **params))
    chosen: list[np.ndarray] = []
    for c, k in zip(range(cfg.num_classes), even_counts(n, cfg.num_classes)):
        members = np.flatnonzero(pool.labels == c)
        if len(members) < k:
            raise ValueError(f"class {c} has {len(members)} candidates, fewer than the {k} to select")
        local = select_fn(cfg.selection, features[members], int(k), seed=seed + c, **params)
        chosen.append(members[local])
    return pool.take(np.concatenate(chosen))


def fresh_count(cfg: RunConfig) -> int:
    return int(round(cfg.fresh_fraction * cfg.n)) if cfg.paradigm == "fresh" else 0


def real_images_needed(cfg: RunConfig) -> int:
    """Real images the run draws: n, plus the fresh images of every later generation (paradigm 'fresh')."""
    return cfg.n + fresh_count(cfg) * (cfg.generations - 1)


def build_training_set(
    cfg: RunConfig,
    generation: int,
    real: Pool,
    samples_of: Callable[[int], Pool],
    *,
    select: Callable[[Pool, int, int, str], Pool] | None = None,
) -> Pool:
    """The training set of ``generation`` (1-based) under ``cfg.paradigm`` (see the module table)."""
    n = cfg.n
    initial_real = real.take(np.arange(n))
    if generation == 1:
        return initial_real
    seed = derive_seed(cfg.seed, generation, "select")
    select = select or (lambda pool, k, s, kind: select_from_pool(pool, k, cfg, s, paradigm_kind=kind))
    previous = samples_of(generation - 1)
    p = cfg.paradigm
    if p == "replace":
        return select(previous, n, seed, "replace")
    if p == "replace_2n":
        return previous.take(np.arange(min(2 * n, len(previous))))
    if p == "fresh":
        k = fresh_count(cfg)
        start = n + k * (generation - 2)
        new_real = real.take(np.arange(start, start + k))
        return Pool.concat([new_real, select(previous, n - k, seed, "replace")])
    history = [initial_real] + [samples_of(g) for g in range(1, generation)]
    if cfg.selection != "none":
        return select(Pool.concat(history), n, seed, "accumulate")
    if p == "accumulate_subsample":
        return subsample_evenly(history, n, seed)
    if p == "accumulate":
        return Pool.concat(history)
    raise ValueError(f"unknown paradigm {p!r}")


# ---------------------------------------------------------------------- run directory
def check_config(run_dir: Path, cfg: RunConfig, allow_config_change: bool = False) -> None:
    """Refuse to resume a run directory made with a different configuration, naming the differing keys."""
    path = run_dir / "config.json"
    if path.exists():
        try:
            old = cio.read_json(path)
        except cio.CorruptArtifactError as exc:
            if not allow_config_change:
                raise ConfigMismatchError(
                    f"{exc}, so it cannot be checked that {run_dir} was started with this configuration. Restore it, "
                    "or pass allow_config_change=True (--allow-config-change) to record the current one."
                ) from exc
            log.warning("%s; recording the current configuration", exc)
            return
        new = cfg.key_dict()
        old_key = {k: v for k, v in old.items() if k in new}
        differing = sorted(k for k in set(old_key) | set(new) if old_key.get(k) != new.get(k))
        if differing and not allow_config_change:
            lines = [f"{k}: {old_key.get(k)!r} (run) vs {new.get(k)!r} (now)" for k in differing]
            raise ConfigMismatchError(
                f"{run_dir} was started with a different configuration; differing keys:\n  "
                + "\n  ".join(lines)
                + "\nUse another output directory, or allow_config_change=True (--allow-config-change) to continue anyway."
            )
        if differing:
            log.warning("continuing %s with changed keys %s", run_dir, differing)


def check_or_write_config(run_dir: Path, cfg: RunConfig, allow_config_change: bool = False) -> None:
    """Record the configuration; refuse to resume a run directory made with a different one."""
    check_config(run_dir, cfg, allow_config_change)
    cio.atomic_write_json(run_dir / "config.json", cfg.to_dict() | {"run_key": cfg.run_key()})


def write_manifest(run_dir: Path, cfg: RunConfig, device: torch.device) -> None:
    """Provenance: config, seed, package versions, git commit, device; one entry per (re)start."""
    path = run_dir / "manifest.json"
    manifest = {"sessions": []}
    if path.exists():
        try:  # provenance only: a damaged manifest is started afresh rather than stopping the run
            manifest = cio.read_json(path)
            manifest.setdefault("sessions", [])
        except (cio.CorruptArtifactError, AttributeError) as exc:
            log.warning("%s; starting a new manifest", exc)
            manifest = {"sessions": [], "damaged_manifest_replaced": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    manifest.update(config=cfg.to_dict(), run_key=cfg.run_key(), seed=cfg.seed)
    manifest["sessions"].append(dict(
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), git_commit=cio.git_commit(), versions=cio.package_versions(),
        device=cio.device_description(device),
    ))
    cio.atomic_write_json(path, manifest)


def estimate_disk_bytes(cfg: RunConfig, image_bytes: int, params: int, generations: int | None = None) -> int:
    """A generous estimate of what the run writes: training sets, samples, models and one checkpoint.

    ``generations``: how many generations are still to run (default all); the real images count once.
    Samples count twice (part files and the assembled array exist together for a moment).
    """
    todo = cfg.generations if generations is None else generations
    per_gen_train = cfg.n * (cfg.generations if cfg.paradigm == "accumulate" else 2)
    per_gen = (per_gen_train + 2 * cfg.samples_per_generation) * image_bytes + params * 4 * 4
    return todo * per_gen + real_images_needed(cfg) * image_bytes


def metric_feature_spaces(names: tuple[str, ...] | list[str]) -> set[str]:
    """The feature spaces the metrics ``names`` extract (``fid`` → inception, ``fd_dinov2`` → dinov2)."""
    spaces = set()
    for name in names:
        if name.startswith(("gs_", "entropy_")):
            spaces.add(name.split("_", 1)[1])
        elif name == "fid":
            spaces.add("inception")
        elif name == "fd_dinov2":
            spaces.add("dinov2")
    return spaces


def preflight(cfg: RunConfig, real_images: np.ndarray, run_dir: Path, device: torch.device | str | None = None) -> None:
    """Checks that must fail before any long work starts (issue 7): the real images, the model, the metric
    names, the feature networks that selection and metrics will need (loaded now, so missing weights fail here
    rather than after generation 1 trained), and the free disk for the generations still to run."""
    from .data import validate_images
    from .features import check_feature_space
    from .metrics import METRIC_NAMES
    from .models import MODEL_CONFIGS

    validate_images(real_images, name=f"dataset {cfg.dataset!r}")
    if len(real_images) < real_images_needed(cfg):
        raise ValueError(f"the run needs {real_images_needed(cfg)} real images, but only {len(real_images)} were loaded")
    h, w, c = real_images.shape[1:]
    if h != w:
        raise ValueError(f"images must be square, got {h}×{w}")
    if cfg.model not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {cfg.model!r}; choose one of {sorted(MODEL_CONFIGS)}")
    if h % min_resolution(cfg.model):
        raise ValueError(f"resolution {h} is not divisible by {min_resolution(cfg.model)}, as model {cfg.model!r} needs")
    if cfg.conditional and cfg.num_classes < 2:
        raise ValueError("a conditional run needs num_classes >= 2")
    from .models import build_unet, count_parameters

    unknown = [m for m in cfg.metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric name(s) {unknown}; valid: {METRIC_NAMES}")
    spaces = metric_feature_spaces(cfg.metrics) | ({cfg.feature_space} if cfg.selection != "none" else set())
    for space in sorted(spaces):
        check_feature_space(space, device=device)
    params = count_parameters(build_unet(cfg.model, resolution=h, channels=c))
    todo = sum(not _is_done(run_dir / f"gen_{g:02d}") for g in range(1, cfg.generations + 1))
    need = estimate_disk_bytes(cfg, h * w * c, params, generations=todo)
    free = cio.free_disk_bytes(run_dir)
    if todo and need > free:
        raise OSError(f"the run needs about {need / 2**30:.2f} GiB of disk in {run_dir}, but only {free / 2**30:.2f} GiB is free")


def resolve_device(cfg: RunConfig) -> torch.device:
    if cfg.device:
        from .devices import resolve_device as checked_device

        return checked_device(cfg.device)
    from accelerate import PartialState

    return PartialState().device


def _real_request(cfg: RunConfig) -> dict[str, Any]:
    return dict(dataset=cfg.dataset, n=real_images_needed(cfg), seed=cfg.seed, resolution=cfg.resolution,
                channels=cfg.channels, resize_method=cfg.resize_method, labels=bool(cfg.conditional))


def _check_labels(cfg: RunConfig, labels: np.ndarray | None, count: int) -> None:
    if not cfg.conditional:
        return
    if labels is None:
        raise ValueError(f"dataset {cfg.dataset!r} has no labels, which a conditional run needs")
    if len(labels) != count or labels.min() < 0 or labels.max() >= cfg.num_classes:
        raise ValueError(f"dataset {cfg.dataset!r} has labels in [{labels.min()}, {labels.max()}] for {count} images; "
                         f"a conditional run with num_classes={cfg.num_classes} needs one label in [0, {cfg.num_classes}) each")


def load_real(cfg: RunConfig, run_dir: Path, check: Callable[[np.ndarray], None] | None = None) -> Pool:
    """The run's real images: drawn once (seeded) and stored in ``real/`` so a resume never re-draws them.

    The stored copy is reused only when it was drawn for the same request (dataset, count, seed, resolution,
    channels, resize method, labels) and reads back whole; otherwise the dataset is loaded again.
    ``check(images)`` (the preflight) runs before anything is written.
    """
    from .data import load_dataset

    real_dir = run_dir / "real"
    try:
        stored = cio.read_json(real_dir / "source.json")
        images = cio.load_npy(real_dir / "images.npy", dtype=np.uint8, ndim=4)
        labels = cio.load_npy(real_dir / "labels.npy", ndim=1) if cfg.conditional else None
        if stored.get("request") == _real_request(cfg) and len(images) == real_images_needed(cfg):
            _check_labels(cfg, labels, len(images))
            if check is not None:
                check(images)
            return Pool(images, np.zeros(len(images), np.int16), labels)
    except (cio.CorruptArtifactError, FileNotFoundError, AttributeError):
        pass
    ds = load_dataset(cfg.dataset, real_images_needed(cfg), seed=cfg.seed, resolution=cfg.resolution,
                      channels=cfg.channels, root=cfg.data_root, resize_method=cfg.resize_method)
    labels = ds.labels if cfg.conditional else None
    _check_labels(cfg, labels, len(ds.images))
    if check is not None:
        check(ds.images)
    # images.npy last: its presence means its companions are complete.
    (real_dir / "images.npy").unlink(missing_ok=True)
    if labels is not None:
        cio.atomic_save_npy(real_dir / "labels.npy", labels.astype(np.int64))
    cio.atomic_save_npy(real_dir / "indices.npy", ds.indices)
    cio.atomic_write_json(real_dir / "source.json", {"name": ds.name, "source": ds.source, "shape": list(ds.images.shape),
                                                     "request": _real_request(cfg)})
    cio.atomic_save_npy(real_dir / "images.npy", ds.images)
    return Pool(ds.images, np.zeros(len(ds.images), np.int16), labels)


# ---------------------------------------------------------------------- one generation
def _load_pool(gen_dir: Path, prefix: str, labels_name: str, sources_value: int | None = None) -> Pool:
    images = cio.load_npy(gen_dir / f"{prefix}.npy", dtype=np.uint8, ndim=4)
    if sources_value is None:
        sources = cio.load_npy(gen_dir / "train_sources.npy")
    else:
        sources = np.full(len(images), sources_value, np.int16)
    labels = cio.load_npy(gen_dir / f"{labels_name}.npy") if (gen_dir / f"{labels_name}.npy").exists() else None
    if len(sources) != len(images) or (labels is not None and len(labels) != len(images)):
        raise cio.CorruptArtifactError(f"{gen_dir}: {prefix} arrays disagree in length")
    return Pool(images, sources, labels)


def _save_training_set(gen_dir: Path, pool: Pool) -> None:
    # Images last: train.npy existing means its companions are complete too.
    cio.atomic_save_npy(gen_dir / "train_sources.npy", pool.sources.astype(np.int16))
    if pool.labels is not None:
        cio.atomic_save_npy(gen_dir / "train_labels.npy", pool.labels.astype(np.int64))
    cio.atomic_save_npy(gen_dir / "train.npy", pool.images)


UNET_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"


def _check_model_files(model_dir: Path) -> None:
    """Raise :class:`CorruptArtifactError` unless the model and its training log are complete and whole."""
    cio.restore_replaced_dir(model_dir)
    if not (model_dir / "COMPLETE").exists():
        raise cio.CorruptArtifactError(f"{model_dir} is missing or incomplete")
    cio.check_safetensors(model_dir / UNET_WEIGHTS)
    train_log = cio.read_json(model_dir.parent / "train_log.json")
    if not isinstance(train_log, dict) or len(train_log.get("losses", ())) != train_log.get("steps"):
        raise cio.CorruptArtifactError(f"{model_dir.parent / 'train_log.json'} is incomplete")


def _load_model(model_dir: Path):
    """The generation's trained UNet, or None when it must be (re)trained: missing, truncated or unreadable."""
    from diffusers import UNet2DModel

    try:
        _check_model_files(model_dir)
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        if model_dir.exists():
            log.warning("%s; retraining", exc)
        return None
    try:
        return UNet2DModel.from_pretrained(model_dir, subfolder="unet")
    except Exception as exc:  # damaged weights: retrain rather than trust them
        log.warning("model in %s unreadable (%s); retraining", model_dir, exc)
        return None


def _verify_checkpoint(ckpt_dir: Path) -> None:
    """Remove a training checkpoint that would not load whole (training then starts at step 0).

    A file that fails half-way through ``load_state`` would leave the model restored but not the step counter;
    reading every file first rules that out.
    """
    if not ckpt_dir.exists():
        return
    try:
        if not (ckpt_dir / "COMPLETE").exists():
            raise cio.CorruptArtifactError("no COMPLETE marker")
        for f in sorted(ckpt_dir.iterdir()):
            if f.suffix == ".safetensors":
                cio.check_safetensors(f)
            elif f.is_file() and f.name != "COMPLETE":
                torch.load(f, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable part: the checkpoint is worth nothing
        log.warning("checkpoint %s is damaged (%s); training this generation from step 0", ckpt_dir, exc)
        shutil.rmtree(ckpt_dir, ignore_errors=True)


def _check_finite(model: torch.nn.Module, g: int) -> None:
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise FloatingPointError(
            f"training generation {g} diverged: non-finite weights in {bad[:3]}{'…' if len(bad) > 3 else ''}; "
            "nothing was saved. Lower lr, or check the training set."
        )


def _save_model(model, scheduler, model_dir: Path) -> None:
    """Save as a diffusers ``DDPMPipeline`` (unet/ + scheduler/ + model_index.json)."""
    from diffusers import DDPMPipeline

    tmp = cio.fresh_tmp_dir(model_dir.parent, model_dir.name)
    DDPMPipeline(unet=model, scheduler=scheduler).save_pretrained(tmp)
    (tmp / "COMPLETE").write_text("ok\n")
    cio.atomic_replace_dir(tmp, model_dir)


def _is_done(gen_dir: Path) -> bool:
    return (gen_dir / "DONE").exists()


def _parts_meta(cfg: RunConfig, g: int, device: torch.device) -> dict[str, Any]:
    """What the sample part files depend on: parts from another batch size or sampler are not mixed in."""
    from .devices import resolve_recipe

    return dict(generation=g, num=cfg.samples_per_generation, batch_size=cfg.sample_batch_size,
                seed=derive_seed(cfg.seed, g, "sample"), num_inference_steps=cfg.num_inference_steps,
                guidance_scale=cfg.guidance_scale, sampler=resolve_recipe(cfg.recipe, torch.device(device)),
                device_type=torch.device(device).type)


def _prepare_parts_dir(parts: Path, meta: dict[str, Any]) -> None:
    """Keep ``parts`` only if its part files were drawn under ``meta``; else start it afresh."""
    try:
        same = cio.read_json(parts / "meta.json") == meta
    except (cio.CorruptArtifactError, FileNotFoundError):
        same = False
    if not same:
        if any(parts.glob("part_*.npy")):
            log.warning("sample parts in %s were drawn with other settings; sampling them again", parts)
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True, exist_ok=True)
        cio.atomic_write_json(parts / "meta.json", meta)


def run_generation(cfg: RunConfig, g: int, run_dir: Path, real: Pool, samples_of: Callable[[int], Pool],
                   device: torch.device, state: Any) -> GenerationResult:
    """Train, sample and measure generation ``g``; every step reuses what a previous attempt finished."""
    from .train import remove_checkpoint, train_model
    from .ddpm import balanced_labels
    from .sample import assemble_parts, sample_images

    gen_dir = run_dir / f"gen_{g:02d}"
    gen_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    if state.is_main_process:  # after a kill: put a half-replaced checkpoint back, drop temporary files
        cio.restore_replaced_dir(gen_dir / "ckpt")
        cio.restore_replaced_dir(gen_dir / "model")
        cio.remove_stale_tmp(gen_dir)
        if not (gen_dir / "model" / "COMPLETE").exists():
            _verify_checkpoint(gen_dir / "ckpt")
    state.wait_for_everyone()

    # 1. training set (selection runs on the main process only)
    t0 = time.perf_counter()
    if state.is_main_process:
        try:
            train = _load_pool(gen_dir, "train", "train_labels")
        except (cio.CorruptArtifactError, FileNotFoundError):
            train = build_training_set(cfg, g, real, samples_of)
            _save_training_set(gen_dir, train)
    state.wait_for_everyone()
    if not state.is_main_process:
        train = _load_pool(gen_dir, "train", "train_labels")
    timings["build_training_set"] = time.perf_counter() - t0

    # 2. model
    t0 = time.perf_counter()
    scheduler = build_scheduler(cfg.num_train_timesteps, cfg.beta_schedule)
    model = _load_model(gen_dir / "model")
    train_info: dict[str, Any] = {}
    if model is None:
        on_step = None
        if os.environ.get(cio.KILL_ENV, "").startswith("train_step:"):  # test hook (io.kill_point), off by default
            on_step = lambda step, _loss: cio.kill_point(f"train_step:{g}:{step}")  # noqa: E731
        result = train_model(train.images, train.labels, cfg, seed=derive_seed(cfg.seed, g, "train"), device=device,
                             ckpt_dir=gen_dir / "ckpt", on_step=on_step)
        model = result.model
        _check_finite(model, g)
        if state.is_main_process:
            # The log first: the model directory counts only with a whole log beside it (_check_model_files).
            cio.atomic_write_json(gen_dir / "train_log.json", {"losses": result.losses, "mixed_precision": result.mixed_precision,
                                                               "recipe": result.recipe, "steps": result.steps})
            _save_model(model, scheduler, gen_dir / "model")
        state.wait_for_everyone()
        if state.is_main_process:
            remove_checkpoint(gen_dir / "ckpt")
    timings["train"] = time.perf_counter() - t0
    if (gen_dir / "train_log.json").exists():
        log_data = cio.read_json(gen_dir / "train_log.json")
        losses = log_data["losses"] or [float("nan")]
        k = max(1, len(losses) // 20)
        train_info = {"loss_first": float(np.mean(losses[:k])), "loss_last": float(np.mean(losses[-k:])),
                      "mixed_precision": log_data["mixed_precision"], "recipe": log_data["recipe"]}

    # 3. samples (sharded over processes; batches already on disk are kept)
    t0 = time.perf_counter()
    num = cfg.samples_per_generation
    sample_labels = balanced_labels(num, cfg.num_classes) if cfg.conditional else None
    try:
        samples = _load_pool(gen_dir, "samples", "sample_labels", sources_value=g)
        if len(samples) != num:
            raise cio.CorruptArtifactError("wrong number of samples")
    except (cio.CorruptArtifactError, FileNotFoundError):
        parts = gen_dir / "sample_parts"
        if state.is_main_process:
            _prepare_parts_dir(parts, _parts_meta(cfg, g, device))
        state.wait_for_everyone()
        images = sample_images(
            model, scheduler, num, seed=derive_seed(cfg.seed, g, "sample"), batch_size=cfg.sample_batch_size,
            num_inference_steps=cfg.num_inference_steps, device=device, labels=sample_labels,
            guidance_scale=cfg.guidance_scale, null_class=cfg.num_classes if cfg.conditional else None,
            parts_dir=parts, rank=state.process_index, world_size=state.num_processes, progress=cfg.progress,
            recipe=cfg.recipe,
        )
        state.wait_for_everyone()
        if state.is_main_process:
            if images is None:
                images = assemble_parts(parts, num, cfg.sample_batch_size)
            if sample_labels is not None:
                cio.atomic_save_npy(gen_dir / "sample_labels.npy", sample_labels)
            cio.atomic_save_npy(gen_dir / "samples.npy", images)
            shutil.rmtree(parts, ignore_errors=True)
        state.wait_for_everyone()
        samples = _load_pool(gen_dir, "samples", "sample_labels", sources_value=g)
    timings["sample"] = time.perf_counter() - t0
    if state.is_main_process:  # left behind when a kill came between saving the next artifact and cleaning up
        remove_checkpoint(gen_dir / "ckpt")
        shutil.rmtree(gen_dir / "sample_parts", ignore_errors=True)

    # 4. metrics, then the DONE marker
    metrics: dict[str, Any] = {}
    if state.is_main_process:
        t0 = time.perf_counter()
        metrics = measure_generation(cfg, train, samples, real, device)
        timings["metrics"] = time.perf_counter() - t0
        metrics.update(train_info)
        metrics["timings"] = timings
        cio.atomic_write_json(gen_dir / "metrics.json", metrics)
        cio.atomic_write_json(gen_dir / "DONE", {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    state.wait_for_everyone()
    if not state.is_main_process:
        metrics = cio.read_json(gen_dir / "metrics.json")
    return GenerationResult(g, gen_dir, metrics)


def measure_generation(cfg: RunConfig, train: Pool, samples: Pool, real: Pool, device: torch.device) -> dict[str, Any]:
    """The per-generation metrics file: the configured metrics plus the training set's composition."""
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


def _load_done_generation(run_dir: Path, g: int) -> GenerationResult | None:
    gen_dir = run_dir / f"gen_{g:02d}"
    if not _is_done(gen_dir):
        return None
    try:  # cheap checks (headers and sizes, not the data): a truncated or missing artifact redoes the generation
        metrics = cio.read_json(gen_dir / "metrics.json")
        if not isinstance(metrics, dict):
            raise cio.CorruptArtifactError(f"{gen_dir / 'metrics.json'} is not a metrics record")
        for prefix, companions in (("train", ("train_sources", "train_labels")), ("samples", ("sample_labels",))):
            count = cio.check_npy(gen_dir / f"{prefix}.npy", dtype=np.uint8, ndim=4)[0]
            for name in companions:
                path = gen_dir / f"{name}.npy"
                if (path.exists() or name == "train_sources") and cio.check_npy(path, ndim=1)[0] != count:
                    raise cio.CorruptArtifactError(f"{path} does not match {prefix}.npy in length")
        _check_model_files(gen_dir / "model")
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        log.warning("generation %d in %s is damaged (%s); redoing it", g, run_dir, exc)
        (gen_dir / "DONE").unlink(missing_ok=True)
        return None
    return GenerationResult(g, gen_dir, metrics)


def _on_main(state: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the main process; if it fails, every process raises (no rank is left waiting)."""
    err: BaseException | None = None
    if state.is_main_process:
        try:
            fn()
        except BaseException as exc:  # re-raised below, after the other ranks were told
            err = exc
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        msg = broadcast_object_list([None if err is None else f"{type(err).__name__}: {err}"])
        if err is None and msg[0] is not None:
            raise RuntimeError(f"the main process failed: {msg[0]}")
    if err is not None:
        raise err


def paper_scale_on_cpu(cfg: RunConfig, device: torch.device) -> str | None:
    """A warning for a paper-size model and schedule on a CPU, where one generation takes days."""
    if device.type != "cpu" or not cfg.model.startswith("unet") or cfg.train_steps < 10_000:
        return None
    return (f"{cfg.model} for {cfg.train_steps:,} training steps on a CPU takes days per generation; "
            "use a CUDA GPU (see README 'GPU, Colab and several GPUs'), or --preset demo for a CPU-sized run")


def run_self_consuming(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    allow_config_change: bool = False,
    on_generation: Callable[[GenerationResult], None] | None = None,
) -> RunResult:
    """Run (or resume) the self-consuming loop of ``config`` in ``run_dir``; returns every generation's results.

    Finished generations (``DONE`` marker, artifacts readable) are skipped; an interrupted one resumes from
    its last training checkpoint and its finished sample batches.
    """
    from accelerate import PartialState

    config.validate()
    # cpu=True lets torchrun/accelerate start several CPU processes (gloo); accelerate ignores the flag otherwise.
    state = PartialState(cpu=config.device == "cpu" or (config.device is None and not torch.cuda.is_available()))
    run_dir = Path(run_dir)
    device = resolve_device(config)
    too_big = paper_scale_on_cpu(config, device)
    if too_big and state.is_main_process:
        warnings.warn(too_big, RuntimeWarning, stacklevel=2)
    real: Pool | None = None

    def start() -> None:
        # Every check before anything is recorded: a refused start leaves the directory as it was.
        nonlocal real
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            check_config(run_dir, config, allow_config_change)
            real = load_real(config, run_dir, check=lambda images: preflight(config, images, run_dir, device))
        except BaseException:
            if created and not any(run_dir.iterdir()):
                run_dir.rmdir()  # the folder this call made, still empty
            raise
        cio.atomic_write_json(run_dir / "config.json", config.to_dict() | {"run_key": config.run_key()})
        write_manifest(run_dir, config, device)

    _on_main(state, start)
    if not state.is_main_process:
        real = load_real(config, run_dir)

    cache: dict[int, Pool] = {}

    def samples_of(g: int) -> Pool:
        if g not in cache:
            cache[g] = _load_pool(run_dir / f"gen_{g:02d}", "samples", "sample_labels", sources_value=g)
        return cache[g]

    result = RunResult(config, run_dir)
    for g in range(1, config.generations + 1):
        done = _load_done_generation(run_dir, g)
        if done is None:
            log.info("generation %d/%d of %s", g, config.generations, run_dir)
            done = run_generation(config, g, run_dir, real, samples_of, device, state)
        result.generations.append(done)
        if on_generation is not None and state.is_main_process:
            on_generation(done)
    return result


def load_run(run_dir: str | os.PathLike) -> RunResult:
    """Read a run directory's finished generations without computing anything."""
    run_dir = Path(run_dir)
    cfg_dict = cio.read_json(run_dir / "config.json")
    cfg_dict.pop("run_key", None)
    cfg = RunConfig.from_dict(cfg_dict)
    result = RunResult(cfg, run_dir)
    for g in range(1, cfg.generations + 1):
        done = _load_done_generation(run_dir, g)
        if done is None:
            break
        result.generations.append(done)
    return result
