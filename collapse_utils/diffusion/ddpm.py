"""The DDPM primitives both recipes share: data order, scaling, the random draws, the loss, guided ε.

Denoising diffusion probabilistic models (Ho et al. 2020) as the authors train and sample them (PAPER.md §5):

* training (Algorithm 1): batches from a seeded per-epoch data order (:class:`EpochStream`), uint8 images
  scaled to [-1, 1] (:func:`scale_to_model`), ε ~ N(0, I) and t ~ U{0, …, T−1} (:func:`draw_noise`), and the
  epsilon-prediction loss ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖² (Eq. 14, :func:`epsilon_loss`); the cosine
  learning-rate schedule with linear warm-up (:func:`lr_at`);
* classifier-free guidance (Ho & Salimans 2022): label dropout to the null class while training
  (:func:`drop_labels`) and ε̂ = ε_θ(x, ∅) + w·(ε_θ(x, c) − ε_θ(x, ∅)) while sampling (:func:`guided_epsilon`);
* sampling (Algorithm 2): one seeded generator per batch (:func:`batch_generator`), model space back to
  uint8 (:func:`to_uint8`), class-balanced labels (:func:`balanced_labels`).

The reference recipe (collapse_utils.diffusion.train, collapse_utils.diffusion.sample) and the fast path (collapse_utils.diffusion.fast_train,
collapse_utils.diffusion.fast_sample) both build on these, which is what makes their draws and maths the same.
What one training or sampling call runs with is passed as one object: :class:`TrainJob` (with its
:class:`TrainSettings`), :class:`SampleSettings`. These primitives never see a run's whole configuration: the loop
adapts it (``TrainSettings.from_config``, ``SampleSettings.from_config``, which read only the fields they name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

# The training hyper-parameters a recipe reads (PAPER.md §5 "Training"), by the names RunConfig gives them.
TRAIN_FIELDS = ("model_family", "model", "conditional", "num_classes", "label_dropout", "num_train_timesteps",
                "beta_schedule", "train_steps", "batch_size", "lr", "adam_betas", "weight_decay", "adam_eps",
                "warmup_steps", "grad_clip", "mixed_precision", "recipe", "checkpoint_every", "progress")


# ====================================================================== what a call runs with
@dataclass(frozen=True)
class TrainSettings:
    """What one generation's training needs and nothing else: the model (family, size, classes), the DDPM noise
    schedule, the optimiser and its schedule, precision and recipe, checkpoint cadence and progress bar.
    Defaults are the paper's (PAPER.md §5); :meth:`from_config` reads them from any object with these attributes
    (a RunConfig), so the recipes never see a run's selection, data or metric settings."""

    model_family: str = "unet"
    model: str = "unet48"
    conditional: bool = False
    num_classes: int = 10
    label_dropout: float = 0.1
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    train_steps: int = 128_256
    batch_size: int = 128
    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 1e-6
    adam_eps: float = 1e-8
    warmup_steps: int = 500
    grad_clip: float = 1.0
    mixed_precision: str = "fp16"
    recipe: str = "auto"
    checkpoint_every: int = 2000
    progress: bool = True

    @classmethod
    def from_config(cls, cfg: object) -> "TrainSettings":
        """The training fields of ``cfg`` (a RunConfig, or already a TrainSettings); a missing one keeps its default."""
        if isinstance(cfg, cls):
            return cfg
        defaults = cls()
        return cls(**{name: getattr(cfg, name, getattr(defaults, name)) for name in TRAIN_FIELDS})

    @property
    def class_count(self) -> int | None:
        """The classes the model is built with: ``num_classes`` for a conditional run, None for an unconditional one."""
        return self.num_classes if self.conditional else None


@dataclass(frozen=True)
class TrainJob:
    """One training run: the images (uint8 N×H×W×C) and labels, its :class:`TrainSettings`, its seed and device, and
    where it checkpoints (``ckpt_dir``); ``on_step(step, loss)`` is called after every step, in order;
    ``desc`` labels the progress bar (e.g. ``"runs/a gen 2/5 train"``), nothing else."""

    images: np.ndarray
    labels: np.ndarray | None
    cfg: TrainSettings
    seed: int
    device: torch.device
    ckpt_dir: Path | None = None
    on_step: Callable[[int, float], None] | None = None
    desc: str = "train"

    def __post_init__(self) -> None:  # a run's configuration is read through TrainSettings.from_config
        object.__setattr__(self, "cfg", TrainSettings.from_config(self.cfg))


@dataclass
class TrainResult:
    model: torch.nn.Module  # the family's denoiser (collapse_utils.diffusion.family)
    losses: list[float]
    steps: int
    mixed_precision: str
    recipe: str
    info: dict = field(default_factory=dict)  # how the recipe ran (e.g. the fast path's mode); not part of the maths


@dataclass(frozen=True)
class SampleSettings:
    """How images are sampled: batch size, DDPM steps, guidance scale w and null class, device, recipe, progress bar.

    ``recipe``: ``auto`` samples with the fast sampler on CUDA, ``reference`` with diffusers' scheduler everywhere
    (devices.resolve_recipe). :meth:`from_config` reads them from a run's settings.
    """

    batch_size: int = 1024
    num_inference_steps: int = 1000
    guidance_scale: float = 1.0
    null_class: int | None = None
    device: torch.device | str = "cpu"
    recipe: str = "auto"
    progress: bool = True
    desc: str = "sample"  # the progress bar's label, nothing else

    @classmethod
    def from_config(cls, cfg: object, device: torch.device | str) -> "SampleSettings":
        """The sampling fields of a run's configuration (batch size, steps, guidance, classes, recipe, progress)."""
        return cls(batch_size=cfg.sample_batch_size, num_inference_steps=cfg.num_inference_steps,
                   guidance_scale=cfg.guidance_scale, null_class=cfg.num_classes if cfg.conditional else None,
                   device=device, recipe=cfg.recipe, progress=cfg.progress)


# ====================================================================== training data
class EpochStream:
    """Index stream: concatenated seeded permutations of range(n); batch ``s`` = positions [s·B, (s+1)·B).

    Every epoch sees every image once, as with a shuffling DataLoader; batches may straddle two epochs
    (instead of a short last batch), which keeps every optimizer step at the paper's batch size.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
            self._cache[epoch] = rng.permutation(self.n)
        return self._cache[epoch]

    def batch(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        pos = np.arange(start, start + self.batch_size)
        epochs, offsets = np.divmod(pos, self.n)
        out = np.empty(self.batch_size, dtype=np.int64)
        for e in np.unique(epochs):
            mask = epochs == e
            out[mask] = self._perm(int(e))[offsets[mask]]
        return out


def images_to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 N×H×W×C → uint8 N×C×H×W on ``device`` (scaled later, per batch)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)


def labels_to_tensor(labels: np.ndarray | None, conditional: bool, device: torch.device) -> torch.Tensor | None:
    """The training labels as int64 on ``device`` for a conditional run; None for an unconditional one."""
    return torch.from_numpy(labels.astype(np.int64)).to(device) if (conditional and labels is not None) else None


def scale_to_model(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], as ToTensor then Normalize(0.5, 0.5)."""
    return batch_u8.float().div_(127.5).sub_(1.0)


# ====================================================================== training step (Algorithm 1)
def null_class(num_classes: int) -> int:
    """The "no label" class index of a conditional model with ``num_classes`` classes: ``num_classes`` itself (the
    model has num_classes + 1 class embeddings, the last one ∅)."""
    return num_classes


def drop_labels(labels: torch.Tensor, p: float, generator: torch.Generator, null: int) -> torch.Tensor:
    """Classifier-free guidance training: replace each label by the null class with probability ``p``.

    One model learns both ε_θ(x, c) and ε_θ(x, ∅) (Ho & Salimans 2022, "joint training"); ``p`` is
    ``RunConfig.label_dropout``, default 0.1 (the paper's value is unknown, PAPER.md §5; 0.1 is within the
    0.1–0.2 Ho & Salimans found to work). The draws come from the training generator, so a resumed run
    drops exactly the labels it would have dropped.
    """
    if p <= 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null), labels)


def draw_noise(clean: torch.Tensor, num_train_timesteps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's random draws, in this order: ε ~ N(0, I) shaped like ``clean``, then t ~ U{0, …, T−1}."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device)
    t = torch.randint(0, num_train_timesteps, (clean.shape[0],), generator=generator, device=clean.device)
    return noise, t


def epsilon_loss(
    model: torch.nn.Module,
    scheduler: DDPMScheduler,
    clean: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖² for given draws (DDPM, Ho et al. 2020, Eq. 14)."""
    noisy = scheduler.add_noise(clean, noise, t)
    pred = model(noisy, t, class_labels=class_labels).sample
    return F.mse_loss(pred.float(), noise.float())


def diffusion_loss(
    model: torch.nn.Module,
    scheduler: DDPMScheduler,
    clean: torch.Tensor,
    generator: torch.Generator,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Epsilon-prediction loss ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖² (DDPM, Ho et al. 2020, Eq. 14)."""
    noise, t = draw_noise(clean, scheduler.config.num_train_timesteps, generator)
    return epsilon_loss(model, scheduler, clean, noise, t, class_labels)


def lr_at(step: int, settings: object | None = None, *, lr: float | None = None, warmup_steps: int | None = None,
          train_steps: int | None = None) -> float:
    """The cosine-with-warm-up learning rate at ``step`` (for plots and tests): from explicit ``lr``,
    ``warmup_steps`` and ``train_steps``, or those attributes of ``settings`` (a TrainSettings or a run's config)."""
    lr = getattr(settings, "lr") if lr is None else lr
    warmup_steps = getattr(settings, "warmup_steps") if warmup_steps is None else warmup_steps
    train_steps = getattr(settings, "train_steps") if train_steps is None else train_steps
    warm = min(warmup_steps, train_steps)
    if step < warm:
        return lr * step / max(1, warm)
    progress = (step - warm) / max(1, train_steps - warm)
    return lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


# ====================================================================== sampling (Algorithm 2)
def batch_generator(seed: int, batch_index: int, device: torch.device) -> torch.Generator:
    mixed = np.random.SeedSequence([seed, batch_index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(mixed) & ((1 << 63) - 1))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Model space [-1, 1] → uint8 NHWC: (x/2 + 0.5).clamp(0, 1)·255, rounded, as the authors' pipeline."""
    img = (x.float() / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8)
    return img.permute(0, 2, 3, 1).cpu().numpy()


def balanced_labels(num_images: int, num_classes: int) -> np.ndarray:
    """Labels 0, 1, …, C−1, 0, 1, … so every class gets (nearly) the same number of samples."""
    return (np.arange(num_images) % num_classes).astype(np.int64)


def guided_epsilon(
    model: torch.nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    class_labels: torch.Tensor | None,
    guidance_scale: float,
    null_class: int | None,
) -> torch.Tensor:
    """ε for one denoising step; with labels, the CFG combination of conditional and null-class passes.

    Classifier-free guidance (Ho & Salimans 2022) as ε̂ = ε_θ(x, ∅) + w·(ε_θ(x, c) − ε_θ(x, ∅)) with
    w = ``guidance_scale`` (collapse_utils.diffusion.sample explains the convention). ``w = 1`` makes one conditional pass,
    ``w = 0`` one null-class pass, any other ``w`` one pass over the doubled batch [x | x] with labels [c | ∅].
    """
    if class_labels is None:
        return model(x, t).sample
    if guidance_scale == 1.0:
        return model(x, t, class_labels=class_labels).sample
    if null_class is None:
        raise ValueError(f"guidance scale {guidance_scale} needs the null class index (null_class)")
    null = torch.full_like(class_labels, null_class)
    if guidance_scale == 0.0:
        return model(x, t, class_labels=null).sample
    eps = model(torch.cat([x, x]), torch.cat([t, t]) if t.ndim else t, class_labels=torch.cat([class_labels, null])).sample
    eps_cond, eps_uncond = eps.chunk(2)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)
