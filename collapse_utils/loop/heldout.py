"""Held-out sets: images from the source of a generation's training set that no model trained on.

The memorization index (PAPER.md §3.7, our design) compares how close a model's samples lie to its training set
D_t with how close *fresh draws from the same source* lie to it; the Fréchet distance of small grayscale images
(``fd_lenet``) compares samples with real images no run trained on. Both need images beyond what a run stores,
and both must leave the run as it is (its training sets, samples and metrics), so everything here is drawn
after the run, from what it saved:

* **held-out samples** E_t (:func:`heldout_samples`): extra samples of generation t's saved model, with their own
  seed ``derive_seed(seed, t, "heldout")`` and a fixed batch size (:data:`HELDOUT_BATCH`), so a larger request
  extends a smaller one batch for batch, on any machine of the same device type. They are stored in the
  generation's ``heldout/`` folder (collapse_utils.loop.rundir) tied to the model's weights hash: a retrained model
  gets new ones. Conditional runs draw class-balanced labels with the run's guidance scale.
* **held-out real images** (:func:`held_out_real`): the next images of the run's own seeded draw, which the run
  never took (its subset is a prefix of that draw).
* **H_t** (:func:`heldout_set`), the held-out set of generation t: ``count`` images split over D_t's sources in
  D_t's proportions (``train_sources``), real ones from the held-out real images and generation k's from E_k.
  So H_1 is held-out real images; under replace H_t is E_{t-1} (unselected fresh samples of the model D_t was
  drawn from); under accumulate_subsample a mixture with D_t's even shares. Where D_t was *selected* from a
  pool, H_t is a random draw from the same sources in the same shares, so the index then also measures the
  selection (selected images are spread out, fresh draws are not).
* **the real reference of a Fréchet distance** (:func:`real_reference`): for MNIST the bundled MNIST test set
  (disjoint from every training subset), else held-out real images; its second part, of the same size, gives
  the noise floor (FD between two disjoint real sets).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import rundir
from ..core.config import derive_seed
from ..diffusion.family import get_family
from ..diffusion.ddpm import SampleSettings, balanced_labels
from ..core.devices import fixed_cpu_threads, resolve_device, die_with_parent
from ..core import io as cio
from ..core.data import load_dataset, convert_channels, mnist_test_images, resize_images
from .paradigms import real_images_needed
from .rundir import load_run

if TYPE_CHECKING:  # pragma: no cover
    from ..core.config import RunConfig
    from .rundir import RunResult

log = logging.getLogger(__name__)

# Held-out samples are drawn in batches of this size whatever the run's sample_batch_size, so that the first k
# batches of a larger request are those of a smaller one.
HELDOUT_BATCH = 500
# The seed of the fixed order in which the MNIST test set is split into the FD reference and the noise-floor set.
REFERENCE_SEED = 0


class HeldOutUnavailableError(ValueError):
    """The held-out images a metric needs cannot be had (the dataset has no images beyond the run's)."""


# ---------------------------------------------------------------------- E_t: extra samples of a saved model
def _heldout_meta(cfg: "RunConfig", g: int, gen: Any, device: Any) -> dict[str, Any]:
    import torch

    dev = torch.device(device)
    return dict(purpose="heldout", generation=g, seed=derive_seed(cfg.seed, g, "heldout"), batch_size=HELDOUT_BATCH,
                num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale,
                conditional=cfg.conditional,
                sampler=get_family(cfg.model_family).resolve_recipe(cfg.recipe, dev), device_type=dev.type,
                model_sha256=rundir.model_sha256(gen))


def heldout_samples(run: "RunResult", g: int, count: int, device: Any = None, progress: bool = False) -> np.ndarray:
    """``count`` held-out samples E_g of generation ``g``'s saved model (drawn now, or read back), uint8 N×H×W×C.

    Whole batches of :data:`HELDOUT_BATCH` are drawn (and the first ``count`` returned), so any count is the
    prefix of a larger one. Batches already in the generation's ``heldout/`` folder are reused; batches drawn under other settings (another
    model, sampler or device type) are drawn again. The CPU draws with the loop's fixed thread count.
    """
    if count <= 0:
        raise ValueError(f"held-out sample count must be positive; got {count}")
    cfg = run.config
    dev = resolve_device(device)
    gen = rundir.gen_dir(run.run_dir, g)
    family = get_family(cfg.model_family)
    model = rundir.load_model(rundir.model_path(gen), family=family.name)
    if model is None:
        raise FileNotFoundError(f"generation {g} of {run.run_dir} has no whole saved model to draw held-out samples from")
    parts = rundir.heldout_path(gen)
    rundir.prepare_parts_dir(parts, _heldout_meta(cfg, g, gen, dev))
    drawn = -(-count // HELDOUT_BATCH) * HELDOUT_BATCH  # whole batches: every request is a prefix of a larger one
    labels = balanced_labels(drawn, cfg.num_classes) if cfg.conditional else None
    settings = SampleSettings.from_config(cfg, dev)
    with fixed_cpu_threads(dev):
        images = family.sample(model, family.scheduler(cfg.num_train_timesteps, cfg.beta_schedule), drawn,
                               seed=derive_seed(cfg.seed, g, "heldout"), settings=settings, labels=labels,
                               parts_dir=parts, batch_size=HELDOUT_BATCH, progress=progress,
                               desc=f"{run.run_dir.name} gen {g} held-out samples")
    return images[:count]


def heldout_ready(run: "RunResult", g: int, count: int, device: Any = None) -> bool:
    """Whether :func:`heldout_samples` would only read (every batch of ``count`` already drawn)."""
    gen = rundir.gen_dir(run.run_dir, g)
    parts = rundir.heldout_path(gen)
    try:
        if cio.read_json(parts / "meta.json") != _heldout_meta(run.config, g, gen, resolve_device(device)):
            return False
    except (cio.CorruptArtifactError, FileNotFoundError, OSError):
        return False
    return all((parts / f"part_{b:06d}.npy.sha256").exists() for b in range(-(-count // HELDOUT_BATCH)))


# ---------------------------------------------------------------------- real images no run trained on
def held_out_real(cfg: "RunConfig", count: int) -> "np.ndarray | None":
    """``count`` real images the run never saw (the next ones of the same seeded draw), or ``None`` if the dataset
    has no more (e.g. the bundled 12,000-image MNIST at n = 12,000)."""
    used = real_images_needed(cfg)
    try:
        ds = load_dataset(cfg.dataset, used + count, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                          root=cfg.data_root, resize_method=cfg.resize_method)
        ref = load_dataset(cfg.dataset, used, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                           root=cfg.data_root, resize_method=cfg.resize_method)
    except (ValueError, OSError) as exc:
        log.info("no held-out real images: %s", exc)
        return None
    if not np.array_equal(ds.indices[:used], ref.indices):  # a larger draw must extend the run's own
        return None
    return ds.images[used:used + count]


# ---------------------------------------------------------------------- H_t
def split_counts(source_counts: dict[int, int], count: int) -> dict[int, int]:
    """``count`` split over sources in proportion to ``source_counts`` (largest remainders; ties to the lower
    source), e.g. ``{0: 43, 1: 43, 2: 42}`` and 1,000 → ``{0: 336, 1: 336, 2: 328}``."""
    total = sum(source_counts.values())
    if total <= 0 or count <= 0:
        raise ValueError(f"cannot split {count} images over sources {source_counts}")
    keys = sorted(source_counts)
    exact = {k: count * source_counts[k] / total for k in keys}
    out = {k: int(np.floor(exact[k])) for k in keys}
    for k in sorted(keys, key=lambda k: (-(exact[k] - out[k]), k))[: count - sum(out.values())]:
        out[k] += 1
    return {k: v for k, v in out.items() if v > 0}


def heldout_set(run: "RunResult", g: int, count: int, device: Any = None) -> tuple[np.ndarray, dict[int, int]]:
    """H_g of run ``run``: ``count`` held-out images split over D_g's sources in D_g's shares (module docstring).

    Returns the images and how many came from each source (0 = real, k = held-out samples of generation k).
    Raises :class:`HeldOutUnavailableError` when the dataset has no held-out real images to offer.
    """
    gen = run.generations[g - 1]
    sources, counts = np.unique(gen.train_sources, return_counts=True)
    shares = split_counts({int(s): int(c) for s, c in zip(sources, counts)}, count)
    parts = []
    for source, k in shares.items():
        if source == 0:
            real = held_out_real(run.config, k)
            if real is None or len(real) < k:
                raise HeldOutUnavailableError(
                    f"{run.run_dir.name}: {run.config.dataset} has no {k} real images beyond the run's "
                    f"{run.config.n}, which the held-out set of generation {g} needs")
            parts.append(real)
        else:
            parts.append(heldout_samples(run, source, k, device))
    return np.concatenate(parts), shares


# ---------------------------------------------------------------------- the real reference of a Fréchet distance
def _mnist_test_pool(cfg: "RunConfig") -> np.ndarray:
    """The MNIST test set at the run's resolution, channels and resizing."""
    return _mnist_test_at(cfg.resolution, cfg.resize_method, cfg.channels)


@functools.lru_cache(maxsize=4)
def _mnist_test_at(resolution: int | None, resize_method: str, channels: int | None) -> np.ndarray:
    images, _ = mnist_test_images()
    if images.ndim == 3:
        images = images[..., None]
    if resolution is not None and resolution != images.shape[1]:
        images = resize_images(images, resolution, resize_method)
    images = images if channels is None else convert_channels(images, channels)
    images.setflags(write=False)  # shared by every caller
    return images


def real_reference(cfg: "RunConfig", count: int, part: int = 0, order_seed: int | None = None) -> np.ndarray:
    """``count`` real images no run trained on, part ``part`` (0: the reference every FD is measured against,
    1: a disjoint set of the same size for the noise floor), at the run's resolution, channels and resizing.

    MNIST: the bundled MNIST test set (10,000 images, disjoint from every training subset) in a fixed random order
    (``order_seed``, default :data:`REFERENCE_SEED`; the test set's first and second 5,000 come from different
    writer pools, NIST SD-3 and SD-1, so consecutive slices would not be draws from one distribution): part 0 its
    first ``count``, part 1 the next ``count``. Other datasets: held-out real images of the run's own draw
    (:func:`held_out_real`).
    """
    if part not in (0, 1):
        raise ValueError(f"part must be 0 (reference) or 1 (noise-floor set); got {part}")
    if cfg.dataset == "mnist":
        images = _mnist_test_pool(cfg)
        if 2 * count > len(images):
            raise HeldOutUnavailableError(f"the MNIST test set has {len(images)} images; a reference of {count} and "
                                          f"a noise-floor set of {count} need {2 * count}")
        order = np.random.default_rng(REFERENCE_SEED if order_seed is None else order_seed).permutation(len(images))
        return images[order[part * count:(part + 1) * count]]
    if order_seed is not None:
        raise HeldOutUnavailableError(f"{cfg.dataset} has one held-out split only (the run's own draw)")
    held = held_out_real(cfg, 2 * count)
    if held is None or len(held) < 2 * count:
        raise HeldOutUnavailableError(f"{cfg.dataset} has no {2 * count} real images beyond the run's {cfg.n} for a "
                                      f"Fréchet reference of {count} and its noise floor")
    return held[part * count:(part + 1) * count]


def reference_key(cfg: "RunConfig") -> tuple[Any, ...]:
    """What :func:`real_reference` depends on: runs with the same key share one reference."""
    key: tuple[Any, ...] = (cfg.dataset, cfg.resolution, cfg.resize_method, cfg.channels)
    return key if cfg.dataset == "mnist" else key + (cfg.seed, cfg.n, cfg.data_root)


def ensure_heldout_samples(runs: Sequence["RunResult"], requests: Sequence[tuple[int, int, int]], *,
                           device: Any = None, workers: int = 1) -> None:
    """Draw the held-out samples ``requests`` = ``[(run index, generation, count), …]`` not yet on disk, in
    ``workers`` processes (one run's generation per task; each process uses the fixed CPU thread count)."""
    todo = [(i, g, c) for i, g, c in requests if not heldout_ready(runs[i], g, c, device)]
    if not todo:
        return
    log.info("drawing held-out samples for %d generation(s)", len(todo))
    if workers <= 1 or len(todo) == 1:
        for i, g, c in todo:
            heldout_samples(runs[i], g, c, device)
        return
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(str(runs[i].run_dir), g, c, None if device is None else str(device)) for i, g, c in todo]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        for f in [pool.submit(_draw_in_worker, *job) for job in jobs]:
            f.result()


def _draw_in_worker(run_dir: str, g: int, count: int, device: str | None) -> None:
    heldout_samples(load_run(run_dir), g, count, device)
