"""Training one generation's DDPM: the authors' reference recipe, and :func:`train_model`, which picks a recipe.

:func:`train_model` checks the labels and hands one :class:`~collapse_utils.diffusion.ddpm.TrainJob` to the recipe that
the model family picks (collapse_utils.diffusion.family, ``ModelFamily.resolve_recipe``): :func:`train_reference`
(below), which trains any family's network, or collapse_utils.diffusion.fast_train.train_fast (the UNet's alone).

The reference recipe is the authors' (PAPER.md §5), DDPM training (Ho et al. 2020, Algorithm 1) with the
epsilon-prediction MSE loss (Eq. 14, collapse_utils.diffusion.ddpm), AdamW(lr, betas, weight decay, eps), cosine LR
schedule with linear warm-up, gradient clipping, mixed precision through accelerate. Data stay on the device
as uint8 and are scaled to [-1, 1] per batch (equal to the authors' ToTensor + Normalize(0.5, 0.5)); no
augmentation (the authors' flip flag is off).

Batches are taken from a stream of seeded per-epoch permutations, so the batch of step ``s`` is a pure
function of (seed, s): a run resumed from a checkpoint sees exactly the data it would have seen.
The noise/timestep generator's state is checkpointed with the model, optimizer, LR schedule and scaler
through ``accelerate``'s ``save_state``/``load_state``.
"""

from __future__ import annotations

import errno
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.utils import gather_object
from diffusers.optimization import get_cosine_schedule_with_warmup
from tqdm.auto import tqdm

from .ddpm import (EpochStream, TrainJob, TrainResult, TrainSettings, drop_labels, images_to_tensor,
                   labels_to_tensor, null_class, scale_to_model)
from ..core.devices import resolve_mixed_precision
from .family import get_family
from .fast_train import train_fast
from ..core.io import atomic_replace_dir, fresh_tmp_dir, record_hashes

log = logging.getLogger(__name__)


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


def _disk_full(exc: BaseException) -> bool:
    """A write failed for want of space (an OSError, or safetensors' SafetensorError wrapping one)."""
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc) or "StorageFull" in str(exc)


def _save_checkpoint(accelerator: Accelerator, ckpt_dir: Path) -> None:
    """Every rank writes its part (RNG states) into one temporary folder; the main process moves it into place."""
    tmp = ckpt_dir.parent / f".{ckpt_dir.name}.tmp"
    if accelerator.is_main_process:
        tmp = fresh_tmp_dir(ckpt_dir.parent, ckpt_dir.name)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp))
    except Exception as exc:  # safetensors reports a full disk as its own error: name it as one
        if _disk_full(exc):
            raise OSError(errno.ENOSPC, f"no space left on the device while writing the checkpoint {ckpt_dir}; free "
                                        "some disk (the run resumes from its last checkpoint)", str(ckpt_dir)) from exc
        raise
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        record_hashes(tmp, *sorted(f.name for f in tmp.iterdir() if f.is_file()))
        (tmp / "COMPLETE").write_text("ok\n")
        atomic_replace_dir(tmp, ckpt_dir)
    accelerator.wait_for_everyone()


def train_reference(job: TrainJob) -> TrainResult:
    """Train a fresh network of the job's model family on ``job.images`` for ``cfg.train_steps`` steps with the
    authors' recipe."""
    images, labels, cfg, seed, device = job.images, job.labels, job.cfg, job.seed, job.device
    ckpt_dir, on_step = job.ckpt_dir, job.on_step
    precision = resolve_mixed_precision(cfg.mixed_precision, device)
    # split_batches: each process trains on its slice of the one global batch (below), so the prepared LR
    # schedule must advance once per optimizer step, not once per process.
    accelerator = Accelerator(mixed_precision=precision, cpu=device.type == "cpu",
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    torch.manual_seed(seed)  # model initialisation
    h, w, c = images.shape[1:]
    family = get_family(cfg.model_family)
    model = family.build(cfg.model, resolution=h, channels=c, num_classes=cfg.class_count)
    scheduler = family.scheduler(cfg.num_train_timesteps, cfg.beta_schedule)
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
    label_t = labels_to_tensor(labels, cfg.conditional, dev)
    stream = EpochStream(len(images), cfg.batch_size, seed)
    local = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)

    model.train()
    bar = tqdm(total=cfg.train_steps, initial=progress.step, desc=job.desc,
               disable=not (cfg.progress and accelerator.is_main_process), dynamic_ncols=True, leave=True)
    while progress.step < cfg.train_steps:
        idx = torch.from_numpy(stream.batch(progress.step)[local]).to(dev)
        clean = scale_to_model(data[idx])
        class_labels = None
        if label_t is not None:
            class_labels = drop_labels(label_t[idx], cfg.label_dropout, generator, null_class(cfg.num_classes))
        with accelerator.autocast():
            loss = family.loss(model, scheduler, clean, generator, class_labels)
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


# the recipes devices.resolve_recipe can pick
TRAINERS: dict[str, Callable[[TrainJob], TrainResult]] = {"reference": train_reference, "fast": train_fast}


def train_model(
    images: np.ndarray,
    labels: np.ndarray | None,
    cfg: object,
    *,
    seed: int,
    device: torch.device | str,
    ckpt_dir: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train one generation's model, dispatching to the recipe its model family resolves (reference, or the UNet's
    fast path). ``cfg``: a :class:`~collapse_utils.diffusion.ddpm.TrainSettings`, or a run's configuration read
    through ``TrainSettings.from_config``.

    ``on_step(step, loss)`` is called after every step, in order (the fast path's graph calls it in bursts);
    ``desc`` labels the progress bar.
    """
    cfg = TrainSettings.from_config(cfg)
    check_labels(labels, len(images), cfg)
    device = torch.device(device)
    recipe = get_family(cfg.model_family).resolve_recipe(cfg.recipe, device)
    job = TrainJob(images=images, labels=labels, cfg=cfg, seed=seed, device=device, ckpt_dir=ckpt_dir, on_step=on_step,
                   desc=desc)
    return TRAINERS[recipe](job)


def check_labels(labels: np.ndarray | None, num_images: int, cfg: TrainSettings) -> None:
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
