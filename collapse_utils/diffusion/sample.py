"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), batched, seeded, optionally class-guided.

:func:`sample_images` draws a run's samples batch by batch with the reference sampler (:func:`sample_batch`,
diffusers' ``DDPMScheduler.step``) or the fast one (collapse_utils.diffusion.fast_sample), as ``SampleSettings.recipe``
says (devices.resolve_recipe); both take the same draws from the same per-batch generators.

Batch ``b`` of a call draws all its randomness from its own generator seeded with (seed, b), so the images
do not depend on how batches are spread over processes or whether the call was interrupted: finished
batches are kept as part files and a resumed call only samples the missing ones.

Classifier-free guidance (Ho & Salimans 2022): ε̂ = ε_θ(x, ∅) + w·(ε_θ(x, c) − ε_θ(x, ∅)); ``w = 0`` is
unconditional sampling, ``w = 1`` plain conditional sampling, the paper's F11 uses scale 2 (PAPER.md §5).
This is the "ε_u + w(ε_c − ε_u)" convention (diffusers' ``guidance_scale``); Ho & Salimans write the same
thing as (1 + w')ε_c − w'ε_u, i.e. w' = w − 1, so the paper's "scale 2" is read here as w = 2 (PAPER.md
does not say which convention the authors used). ∅ is the extra class index ``num_classes`` of a
conditional model (the last of its class embeddings, collapse_utils.diffusion.family). Sampling a conditional model
without labels uses ∅ for every image. The combination itself is ddpm.guided_epsilon, shared with the fast sampler.

Any model family's network samples here (the denoiser contract of collapse_utils.diffusion.family); the fast
sampler is the UNet's alone, so :func:`make_batch_sampler` asks the model's family which recipe it runs.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from .ddpm import SampleSettings, batch_generator, guided_epsilon, to_uint8
from ..core.devices import resolve_recipe
from .fast_sample import FastSampler
from ..core.io import CorruptArtifactError, atomic_save_npy, atomic_write_bytes, file_sha256, load_npy


def model_null_class(model: torch.nn.Module) -> int | None:
    """The null-class index of a conditional model (its last class embedding), ``None`` for an unconditional one."""
    n = getattr(getattr(model, "config", None), "num_class_embeds", None)
    return None if not n else int(n) - 1


def resolve_labels(
    model: torch.nn.Module, num_images: int, labels: np.ndarray | None, guidance_scale: float, null_class: int | None,
) -> tuple[np.ndarray | None, float, int | None]:
    """Check labels against the model; a conditional model sampled without labels gets ∅ (unconditional).

    Returns ``(labels, guidance_scale, null_class)`` to sample with.
    """
    own_null = model_null_class(model)
    if labels is None:
        if own_null is None:
            return None, guidance_scale, null_class
        return np.full(num_images, own_null, np.int64), 1.0, own_null
    if own_null is None:
        raise ValueError("labels were given but the model is unconditional (it has no class embedding)")
    null_class = own_null if null_class is None else int(null_class)
    if null_class != own_null:
        raise ValueError(f"null_class {null_class} is not the model's null class {own_null} (its last class embedding)")
    labels = np.asarray(labels)
    if len(labels) != num_images:
        raise ValueError(f"got {len(labels)} labels for {num_images} images")
    if len(labels) and (labels.min() < 0 or labels.max() > own_null):
        raise ValueError(f"labels must lie in [0, {own_null}] (the model's classes and its null class {own_null})")
    return labels, guidance_scale, null_class


@torch.no_grad()
def sample_batch(
    model: torch.nn.Module,
    scheduler: DDPMScheduler,
    num_images: int,
    *,
    generator: torch.Generator,
    shape: tuple[int, int, int],
    num_inference_steps: int,
    class_labels: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    null_class: int | None = None,
) -> torch.Tensor:
    """One batch of the reverse process, returned in model space [-1, 1]."""
    device = generator.device
    sched = copy.deepcopy(scheduler)
    sched.set_timesteps(num_inference_steps, device=device)
    x = torch.randn((num_images, *shape), generator=generator, device=device)
    for t in sched.timesteps:
        eps = guided_epsilon(model, x, t, class_labels, guidance_scale, null_class)
        x = sched.step(eps, t, x, generator=generator).prev_sample
    return x


BatchSampler = Callable[[int, torch.Generator, "torch.Tensor | None"], torch.Tensor]


def make_batch_sampler(model: torch.nn.Module, scheduler: DDPMScheduler, settings: SampleSettings, *,
                       shape: tuple[int, int, int], conditional: bool) -> BatchSampler:
    """``f(n, generator, class_labels)`` → one batch in model space; the same draws whichever recipe.

    ``settings.recipe`` as the model's family resolves it (``ModelFamily.resolve_recipe``: the fast sampler only
    for the UNet): the :class:`~collapse_utils.diffusion.fast_sample.FastSampler` or :func:`sample_batch`;
    ``settings.batch_size`` is the largest batch the sampler is asked for.
    """
    device = torch.device(settings.device)
    recipe = resolve_recipe(settings.recipe, device)
    if recipe == "fast" and not FastSampler.drives(model):  # the fast path is the UNet's (model families)
        if settings.recipe != "auto":
            raise ValueError(f"recipe 'fast' samples a diffusers UNet2DModel only, not a {type(model).__name__} "
                             "(use recipe auto or reference)")
        recipe = "reference"
    if recipe == "fast":
        return FastSampler(model, scheduler, settings, shape=shape, conditional=conditional)
    ref = partial(sample_batch, model, scheduler, shape=shape, num_inference_steps=settings.num_inference_steps,
                  guidance_scale=settings.guidance_scale, null_class=settings.null_class)
    return lambda n, generator, class_labels: ref(n, generator=generator, class_labels=class_labels)


def _hash_path(part: Path) -> Path:
    return part.with_name(part.name + ".sha256")


def _save_part(path: Path, part: np.ndarray) -> None:
    """A finished batch, then its sha256 beside it (a part without one, or not matching it, is drawn again)."""
    atomic_save_npy(path, part)
    atomic_write_bytes(_hash_path(path), file_sha256(path).encode())


def _load_part(path: Path, expected: int) -> np.ndarray | None:
    try:
        if _hash_path(path).read_bytes().decode() != file_sha256(path):
            raise CorruptArtifactError(f"{path} does not match its recorded sha256")
        part = load_npy(path, dtype=np.uint8, ndim=4)
    except (CorruptArtifactError, FileNotFoundError, UnicodeDecodeError):
        path.unlink(missing_ok=True)
        return None
    if len(part) != expected:
        path.unlink(missing_ok=True)
        return None
    return part


def sample_images(
    model: torch.nn.Module,
    scheduler: DDPMScheduler,
    num_images: int,
    *,
    seed: int,
    settings: SampleSettings | None = None,
    labels: np.ndarray | None = None,
    parts_dir: Path | None = None,
    rank: int = 0,
    world_size: int = 1,
    **options: Any,
) -> np.ndarray | None:
    """Draw ``num_images`` uint8 N×H×W×C samples. With ``labels`` the model is class-conditional (CFG).

    ``settings`` (:class:`~collapse_utils.diffusion.ddpm.SampleSettings`, e.g. ``SampleSettings.from_config(cfg, device)``)
    says how: batch size, DDPM steps, guidance scale, null class, device, recipe, progress bar; ``options`` are
    fields of it to set for this call (``sample_images(model, scheduler, 16, seed=0, batch_size=4)``), over
    ``settings`` or the defaults.

    ``labels[i]`` is image i's class; ``guidance_scale`` w as in :func:`~collapse_utils.diffusion.ddpm.guided_epsilon`;
    ``null_class`` defaults to the model's own (its last class embedding). A conditional model sampled with
    ``labels=None`` samples unconditionally (∅ for every image), which equals ``w = 0`` at any labels.

    With ``parts_dir`` each finished batch is written there, and batches already there are reused.
    With ``world_size > 1`` this process samples batches ``rank, rank + world_size, …`` into ``parts_dir``
    and returns None; the main process assembles them with :func:`assemble_parts` once all are done.
    ``recipe``: ``auto`` samples with :class:`collapse_utils.diffusion.fast_sample.FastSampler` on CUDA (bf16, compiled
    step, the same draws), ``reference`` with :func:`sample_batch` everywhere.
    """
    settings = replace(settings if settings is not None else SampleSettings(), **options)
    if num_images <= 0:
        raise ValueError(f"num_images must be positive, got {num_images}")
    if labels is not None and len(labels) != num_images:
        raise ValueError(f"got {len(labels)} labels for {num_images} images")
    if world_size > 1 and parts_dir is None:
        raise ValueError("sharded sampling needs a parts_dir")
    labels, guidance_scale, null_class = resolve_labels(model, num_images, labels, settings.guidance_scale,
                                                        settings.null_class)
    device = torch.device(settings.device)
    batch_size = settings.batch_size
    model = model.to(device).eval()
    cfg = model.config
    shape = (cfg.in_channels, cfg.sample_size, cfg.sample_size)
    num_batches = -(-num_images // batch_size)
    mine = list(range(rank, num_batches, world_size))
    out: list[np.ndarray] = []
    sampler: BatchSampler | None = None  # built on first use: every batch may already be on disk
    bar = tqdm(mine, desc=settings.desc, disable=not settings.progress, dynamic_ncols=True, leave=True)
    for b in bar:
        lo, hi = b * batch_size, min(num_images, (b + 1) * batch_size)
        part_path = parts_dir / f"part_{b:06d}.npy" if parts_dir is not None else None
        part = _load_part(part_path, hi - lo) if part_path is not None and part_path.exists() else None
        if part is None:
            y = None if labels is None else torch.from_numpy(labels[lo:hi].astype(np.int64)).to(device)
            if sampler is None:
                resolved = replace(settings, batch_size=min(batch_size, num_images), device=device,
                                   guidance_scale=guidance_scale, null_class=null_class)
                sampler = make_batch_sampler(model, scheduler, resolved, shape=shape, conditional=labels is not None)
            x = sampler(hi - lo, batch_generator(seed, b, device), y)
            part = to_uint8(x)
            if part_path is not None:
                _save_part(part_path, part)
        out.append(part)
    bar.close()
    if world_size > 1:
        return None
    return np.concatenate(out, axis=0)


def assemble_parts(parts_dir: Path, num_images: int, batch_size: int) -> np.ndarray:
    """Concatenate the part files of a sharded :func:`sample_images` call, checking none is missing."""
    num_batches = -(-num_images // batch_size)
    parts = []
    for b in range(num_batches):
        expected = min(num_images, (b + 1) * batch_size) - b * batch_size
        part = _load_part(parts_dir / f"part_{b:06d}.npy", expected)
        if part is None:
            raise CorruptArtifactError(f"sample part {b} in {parts_dir} is missing or damaged")
        parts.append(part)
    return np.concatenate(parts, axis=0)
