"""Training one generation's DDPM (the reference recipe), with resumable checkpoints.

The recipe is the authors' (PAPER.md §5): epsilon-prediction MSE loss (Ho et al. 2020, Eq. 14),
AdamW(lr, betas, weight decay, eps), cosine LR schedule with linear warm-up, gradient clipping, mixed
precision through accelerate. Data stay on the device as uint8 and are scaled to [-1, 1] per batch
(equal to the authors' ToTensor + Normalize(0.5, 0.5)); no augmentation (the authors' flip flag is off).

Batches are taken from a stream of seeded per-epoch permutations, so the batch of step ``s`` is a pure
function of (seed, s): a run resumed from a checkpoint sees exactly the data it would have seen.
The noise/timestep generator's state is checkpointed with the model, optimizer, LR schedule and scaler
through ``accelerate``'s ``save_state``/``load_state``.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.utils import gather_object
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from tqdm.auto import tqdm

from .config import RunConfig
from .io import atomic_replace_dir, fresh_tmp_dir
from .models import build_scheduler, build_unet

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- data order
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


@dataclass
class TrainProgress:
    """Checkpointed training state beyond what accelerate tracks: step, losses, the noise generator.

    Under several processes every rank has its own generator: ``state_dict`` (called on every rank by
    ``save_state``) gathers all of them, and ``load_state_dict`` restores this rank's own.
    """

    generator: torch.Generator
    step: int = 0
    losses: list[float] = field(default_factory=list)

    def state_dict(self) -> dict:
        state = {"step": self.step, "losses": list(self.losses), "generator": self.generator.get_state()}
        if PartialState().num_processes > 1:
            state["generators"] = gather_object([state["generator"]])
        return state

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.losses = [float(x) for x in state["losses"]]
        own = state["generator"]
        world, rank = PartialState().num_processes, PartialState().process_index
        if world > 1 and len(state.get("generators", ())) == world:
            own = state["generators"][rank]
        self.generator.set_state(own.to("cpu") if torch.is_tensor(own) else own)


@dataclass
class TrainResult:
    model: UNet2DModel
    losses: list[float]
    steps: int
    mixed_precision: str
    recipe: str
    info: dict = field(default_factory=dict)  # how the recipe ran (e.g. the fast path's mode); not part of the maths


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    """fp16/bf16 autocast need a GPU here; on CPU the reference run falls back to fp32 (recorded)."""
    if device.type != "cuda" and requested != "no":
        return "no"
    return requested


def images_to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 N×H×W×C → uint8 N×C×H×W on ``device`` (scaled later, per batch)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)


def scale_to_model(batch_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], as ToTensor then Normalize(0.5, 0.5)."""
    return batch_u8.float().div_(127.5).sub_(1.0)


def null_class(cfg: RunConfig) -> int:
    """The "no label" class index of a conditional model: ``num_classes`` (the UNet has num_classes + 1 embeddings)."""
    return cfg.num_classes


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


def _load_checkpoint(accelerator: Accelerator, ckpt_dir: Path, progress: TrainProgress) -> bool:
    if not (ckpt_dir / "COMPLETE").exists():
        return False
    try:
        accelerator.load_state(str(ckpt_dir))
    except Exception as exc:  # a damaged checkpoint costs at most K steps, never the run
        log.warning("checkpoint %s unreadable (%s); training this generation from step 0", ckpt_dir, exc)
        return False
    log.info("resumed training from %s at step %d", ckpt_dir, progress.step)
    return True


def _save_checkpoint(accelerator: Accelerator, ckpt_dir: Path) -> None:
    """Every rank writes its part (RNG states) into one temporary folder; the main process moves it into place."""
    tmp = ckpt_dir.parent / f".{ckpt_dir.name}.tmp"
    if accelerator.is_main_process:
        tmp = fresh_tmp_dir(ckpt_dir.parent, ckpt_dir.name)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "COMPLETE").write_text("ok\n")
        atomic_replace_dir(tmp, ckpt_dir)
    accelerator.wait_for_everyone()


def train_reference(
    images: np.ndarray,
    labels: np.ndarray | None,
    cfg: RunConfig,
    *,
    seed: int,
    device: torch.device,
    ckpt_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train a fresh UNet on ``images`` for ``cfg.train_steps`` steps with the authors' recipe."""
    precision = resolve_mixed_precision(cfg.mixed_precision, device)
    # split_batches: each process trains on its slice of the one global batch (below), so the prepared LR
    # schedule must advance once per optimizer step, not once per process.
    accelerator = Accelerator(mixed_precision=precision, cpu=device.type == "cpu",
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    torch.manual_seed(seed)  # model initialisation
    h, w, c = images.shape[1:]
    model = build_unet(cfg.model, resolution=h, channels=c, num_classes=cfg.num_classes if cfg.conditional else None)
    scheduler = build_scheduler(cfg.num_train_timesteps, cfg.beta_schedule)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay, eps=cfg.adam_eps
    )
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, min(cfg.warmup_steps, cfg.train_steps), cfg.train_steps)
    model, optimizer, lr_schedule = accelerator.prepare(model, optimizer, lr_schedule)
    dev = accelerator.device

    # Data parallel (accelerate launch): every process draws the same global batch and trains on its slice,
    # so the effective batch is the paper's whatever the number of processes.
    world, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    generator = torch.Generator(device=dev).manual_seed(seed + 7919 * rank)
    progress = TrainProgress(generator=generator)
    accelerator.register_for_checkpointing(progress)
    if ckpt_dir is not None:
        _load_checkpoint(accelerator, ckpt_dir, progress)

    data = images_to_tensor(images, dev)
    label_t = torch.from_numpy(labels.astype(np.int64)).to(dev) if (cfg.conditional and labels is not None) else None
    stream = EpochStream(len(images), cfg.batch_size, seed)
    local = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)

    model.train()
    bar = tqdm(total=cfg.train_steps, initial=progress.step, desc="train", disable=not (cfg.progress and accelerator.is_main_process),
               dynamic_ncols=True, leave=False)
    while progress.step < cfg.train_steps:
        idx = torch.from_numpy(stream.batch(progress.step)[local]).to(dev)
        clean = scale_to_model(data[idx])
        class_labels = None
        if label_t is not None:
            class_labels = drop_labels(label_t[idx], cfg.label_dropout, generator, null_class(cfg))
        with accelerator.autocast():
            loss = diffusion_loss(model, scheduler, clean, generator, class_labels)
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        progress.step += 1
        loss_value = float(loss.detach())
        progress.losses.append(loss_value)
        bar.update(1)
        if progress.step % 10 == 0 or progress.step == cfg.train_steps:
            bar.set_postfix(loss=f"{np.mean(progress.losses[-50:]):.4f}")
        if on_step is not None:
            on_step(progress.step, loss_value)
        if ckpt_dir is not None and progress.step % cfg.checkpoint_every == 0 and progress.step < cfg.train_steps:
            _save_checkpoint(accelerator, ckpt_dir)
    bar.close()
    model = accelerator.unwrap_model(model)
    model.eval()
    return TrainResult(model=model, losses=progress.losses, steps=progress.step, mixed_precision=precision, recipe="reference")


def resolve_recipe(cfg: RunConfig, device: torch.device) -> str:
    """``auto`` picks the fast path on CUDA, else the reference recipe; ``reference``/``fast`` force one."""
    if cfg.recipe != "auto":
        return cfg.recipe
    if device.type == "cuda" and "fast" in TRAINERS:
        return "fast"
    return "reference"


def _train_fast(*args, **kwargs) -> TrainResult:
    """The fast path (:func:`collapse_utils.fast.train_fast`: bf16, one CUDA graph per step), imported on first use."""
    from .fast import train_fast

    return train_fast(*args, **kwargs)


TRAINERS: dict[str, Callable[..., TrainResult]] = {"reference": train_reference, "fast": _train_fast}


def train_model(
    images: np.ndarray,
    labels: np.ndarray | None,
    cfg: RunConfig,
    *,
    seed: int,
    device: torch.device | str,
    ckpt_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train one generation's model, dispatching to the reference or the fast recipe."""
    check_labels(labels, len(images), cfg)
    device = torch.device(device)
    recipe = resolve_recipe(cfg, device)
    if recipe not in TRAINERS:
        raise ValueError(f"training recipe {recipe!r} is not available here; available: {sorted(TRAINERS)}")
    return TRAINERS[recipe](images, labels, cfg, seed=seed, device=device, ckpt_dir=ckpt_dir, on_step=on_step)


def check_labels(labels: np.ndarray | None, num_images: int, cfg: RunConfig) -> None:
    """A conditional run needs one label in [0, num_classes) per image; an unconditional one ignores labels."""
    if not cfg.conditional:
        return
    if labels is None:
        raise ValueError("a conditional run (cfg.conditional=True) needs class labels for its training images")
    labels = np.asarray(labels)
    if labels.shape != (num_images,):
        raise ValueError(f"got labels of shape {labels.shape} for {num_images} training images")
    if len(labels) and (labels.min() < 0 or labels.max() >= cfg.num_classes):
        raise ValueError(f"labels must lie in [0, {cfg.num_classes}); got {labels.min()}..{labels.max()} "
                         f"(index {cfg.num_classes} is the null class, used only through label dropout)")


def remove_checkpoint(ckpt_dir: Path) -> None:
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir, ignore_errors=True)


def lr_at(step: int, cfg: RunConfig) -> float:
    """The cosine-with-warm-up learning rate at ``step`` (for plots and tests)."""
    warm = min(cfg.warmup_steps, cfg.train_steps)
    if step < warm:
        return cfg.lr * step / max(1, warm)
    progress = (step - warm) / max(1, cfg.train_steps - warm)
    return cfg.lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
