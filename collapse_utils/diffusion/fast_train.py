"""The fast training path: the reference recipe's maths (DDPM, Ho et al. 2020, Algorithm 1) with less overhead.

:func:`train_fast` takes the same :class:`~collapse_utils.diffusion.ddpm.TrainJob` and returns the same
:class:`~collapse_utils.diffusion.ddpm.TrainResult` as :func:`collapse_utils.diffusion.train.train_reference`:

* the same model initialisation, data order (:class:`~collapse_utils.diffusion.ddpm.EpochStream`), noise and timestep
  draws (the same generator, seeded the same way, drawn in the same order), epsilon-prediction loss (Eq. 14),
  AdamW hyper-parameters, cosine schedule with warm-up and gradient clipping as the reference (PAPER.md §5);
* bf16 autocast instead of fp16 + GradScaler (no loss scaling, no skipped steps; devices.fast_precision), NCHW
  activations (channels_last measured slower inside the graph on an H200: 5,404 vs 5,972 img/s,
  benchmarks/gpu_throughput.md), cuDNN autotuning, fused AdamW with the learning rate held in a device tensor;
* on one CUDA device the whole step (gather of the uint8 batch, scaling, forward, loss, backward, clipping,
  optimizer) is captured once as a CUDA graph and replayed; only the random draws (into static buffers), the
  batch indices and the LR value are written between replays. Losses are read back every
  :data:`FLUSH_EVERY` steps, not every step, so the host never waits for the device in between.
* Several processes (``accelerate launch``): each trains on its slice of the one global batch in a
  ``DistributedDataParallel`` model (no graph), as the reference does.
* On CPU, or with ``COLLAPSE_FAST_GRAPH=0``, the same step runs eagerly (fp32 on CPU: then it reproduces
  the reference's losses).

Checkpoints go to the same ``ckpt_dir`` (``fast_state.pt`` + ``COMPLETE``, written to a temporary folder and
renamed into place): model, optimizer, LR schedule, every rank's generator state, step and losses.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from tqdm.auto import tqdm

from .ddpm import (EpochStream, TrainJob, TrainResult, TrainSettings, epsilon_loss, images_to_tensor,
                   labels_to_tensor, null_class, scale_to_model)
from ..core.devices import OPTIONS, cudnn_benchmark, fast_autocast, fast_precision
from ..core.io import atomic_replace_dir, fresh_tmp_dir, record_hashes
from .models import build_scheduler, build_unet

log = logging.getLogger(__name__)

FLUSH_EVERY = 100  # steps between loss read-backs (and index uploads) on the graph path
CKPT_FILE = "fast_state.pt"
CKPT_FORMAT = "collapse-fast-v1"
WARMUP_ITERS = 3  # eager iterations before capture (cuDNN autotuning, optimizer state, autograd init)


def _world(device: torch.device) -> tuple[int, int]:
    """(number of processes, this process's rank) as accelerate sees them; (1, 0) outside a launch."""
    from accelerate import PartialState

    if not PartialState._shared_state and "WORLD_SIZE" not in os.environ:
        return 1, 0
    state = PartialState(cpu=device.type == "cpu")  # the flag only matters if this is the first PartialState
    return state.num_processes, state.process_index



# ====================================================================== training: one step
@dataclass
class StepBuffers:
    """Inputs of one training step, in static tensors (a captured graph reads them at fixed addresses)."""

    idx: torch.Tensor  # (b,) int64 rows of the data tensor
    noise: torch.Tensor  # (b, C, H, W) float32
    t: torch.Tensor  # (b,) int64
    drop: torch.Tensor | None  # (b,) float32 uniform draws for CFG label dropout (conditional runs)


def make_buffers(local_batch: int, shape: tuple[int, int, int], device: torch.device, conditional: bool) -> StepBuffers:
    return StepBuffers(
        idx=torch.zeros(local_batch, dtype=torch.int64, device=device),
        noise=torch.zeros((local_batch, *shape), dtype=torch.float32, device=device),
        t=torch.zeros(local_batch, dtype=torch.int64, device=device),
        drop=torch.zeros(local_batch, dtype=torch.float32, device=device) if conditional else None,
    )


def draw_into(buf: StepBuffers, num_train_timesteps: int, generator: torch.Generator, label_dropout: float) -> None:
    """The reference step's random draws, in its order, written into ``buf``.

    Reference (collapse_utils.diffusion.train): ``torch.rand`` for label dropout (conditional, p > 0), then
    :func:`~collapse_utils.diffusion.ddpm.draw_noise`: ``torch.randn`` for ε, ``torch.randint`` for t. ``out=`` fills the
    same values a fresh tensor would get from the same generator state.
    """
    if buf.drop is not None and label_dropout > 0:
        torch.rand(buf.drop.shape, generator=generator, device=buf.drop.device, out=buf.drop)
    torch.randn(buf.noise.shape, generator=generator, device=buf.noise.device, out=buf.noise)
    torch.randint(0, num_train_timesteps, buf.t.shape, generator=generator, device=buf.t.device, out=buf.t)


@dataclass
class TrainParts:
    """What one fast training run holds: model (maybe DDP-wrapped), optimizer, schedule, data, buffers."""

    model: torch.nn.Module
    raw: UNet2DModel
    optimizer: torch.optim.Optimizer
    lr_schedule: torch.optim.lr_scheduler.LRScheduler
    scheduler: DDPMScheduler
    generator: torch.Generator
    data: torch.Tensor
    labels: torch.Tensor | None
    buf: StepBuffers
    cfg: TrainSettings
    device: torch.device
    precision: str
    channels_last: bool
    world: int = 1
    rank: int = 0


def step_loss(p: TrainParts) -> torch.Tensor:
    """Forward + loss of one step from the static buffers (the reference's ``diffusion_loss`` maths)."""
    clean = scale_to_model(p.data[p.buf.idx])
    if p.channels_last:
        clean = clean.contiguous(memory_format=torch.channels_last)
    class_labels = None
    if p.labels is not None:
        class_labels = p.labels[p.buf.idx]
        if p.buf.drop is not None and p.cfg.label_dropout > 0:
            class_labels = torch.where(p.buf.drop < p.cfg.label_dropout,
                                       torch.full_like(class_labels, null_class(p.cfg.num_classes)), class_labels)
    with fast_autocast(p.device, p.precision):
        return epsilon_loss(p.model, p.scheduler, clean, p.buf.noise, p.buf.t, class_labels)


def train_step(p: TrainParts) -> torch.Tensor:
    """Loss, backward, clipping and the optimizer step; returns the detached loss (no host sync)."""
    loss = step_loss(p)
    loss.backward()
    if p.cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(p.model.parameters(), p.cfg.grad_clip)
    p.optimizer.step()
    return loss.detach()


# ====================================================================== training: setup
def _make_optimizer(model: torch.nn.Module, cfg: TrainSettings, device: torch.device, graph: bool) -> torch.optim.Optimizer:
    """AdamW with the reference's hyper-parameters; fused (and capturable for a graph) on CUDA."""
    kwargs: dict[str, Any] = dict(lr=cfg.lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay, eps=cfg.adam_eps)
    if device.type == "cuda":
        kwargs["fused"] = True
        if graph:
            kwargs["capturable"] = True
    return torch.optim.AdamW(model.parameters(), **kwargs)


def _lr_into_tensors(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Hold each group's LR in a device tensor: a captured step reads it, the schedule ``fill_``s it."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)


def _wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Data parallel over the process group that ``accelerate launch`` set up (gradients averaged)."""
    from accelerate import PartialState

    PartialState()  # initialises the process group under accelerate launch
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def build_parts(images: np.ndarray, labels: np.ndarray | None, cfg: TrainSettings, seed: int, device: torch.device,
                graph: bool) -> TrainParts:
    """Model, optimizer, schedule, data and buffers, initialised exactly as the reference does."""
    world, rank = _world(device)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    precision = fast_precision(cfg.mixed_precision, device)
    channels_last = OPTIONS.train_channels_last and device.type == "cuda"
    torch.manual_seed(seed)  # model initialisation, as the reference
    h, w, c = images.shape[1:]
    raw = build_unet(cfg.model, resolution=h, channels=c, num_classes=cfg.num_classes if cfg.conditional else None)
    raw = raw.to(device)
    if channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    raw.train()
    model = _wrap_ddp(raw, device) if world > 1 else raw
    optimizer = _make_optimizer(raw, cfg, device, graph)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, min(cfg.warmup_steps, cfg.train_steps), cfg.train_steps)
    if graph:
        _lr_into_tensors(optimizer, device)
    scheduler = build_scheduler(cfg.num_train_timesteps, cfg.beta_schedule)
    generator = torch.Generator(device=device).manual_seed(seed + 7919 * rank)  # as the reference
    data = images_to_tensor(images, device)
    label_t = labels_to_tensor(labels, cfg.conditional, device)
    buf = make_buffers(cfg.batch_size // world, (c, h, w), device, label_t is not None)
    return TrainParts(model=model, raw=raw, optimizer=optimizer, lr_schedule=lr_schedule, scheduler=scheduler,
                      generator=generator, data=data, labels=label_t, buf=buf, cfg=cfg, device=device,
                      precision=precision, channels_last=channels_last, world=world, rank=rank)


# ====================================================================== training: CUDA graph
def _snapshot(p: TrainParts) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    return {k: v.detach().clone() for k, v in p.raw.state_dict().items()}, p.generator.get_state()


def _restore_fresh(p: TrainParts, snap: tuple[dict[str, torch.Tensor], torch.Tensor]) -> None:
    """Undo the warm-up iterations in place (captured kernels keep their addresses): weights, moments, RNG."""
    weights, gen_state = snap
    with torch.no_grad():
        for k, v in p.raw.state_dict().items():
            v.copy_(weights[k])
        for state in p.optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()
    p.generator.set_state(gen_state)


def capture_step(p: TrainParts) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Warm up on a side stream, capture one whole training step, then restore the fresh state.

    The warm-up runs real steps (cuDNN autotuning, AdamW's lazily created state); their effect on weights,
    moments and generator is undone in place afterwards, so step 1 starts exactly where the reference does.
    """
    snap = _snapshot(p)
    torch.cuda.synchronize(p.device)
    side = torch.cuda.Stream(p.device)
    side.wait_stream(torch.cuda.current_stream(p.device))
    with torch.cuda.stream(side):
        for i in range(WARMUP_ITERS):
            p.buf.idx.copy_(torch.arange(len(p.buf.idx), device=p.device) % len(p.data))
            draw_into(p.buf, p.cfg.num_train_timesteps, p.generator, p.cfg.label_dropout)
            p.optimizer.zero_grad(set_to_none=True)
            train_step(p)
    torch.cuda.current_stream(p.device).wait_stream(side)
    torch.cuda.synchronize(p.device)
    p.optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = train_step(p)
    torch.cuda.synchronize(p.device)
    self_test(p, graph, static_loss)
    _restore_fresh(p, snap)
    return graph, static_loss


SELF_TEST_RTOL = 0.05


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]))


def self_test(p: TrainParts, graph, static_loss: torch.Tensor) -> None:
    """One replay on fixed inputs against the same step computed eagerly (loss and clipped gradients).

    Catches a graph that reads stale inputs (batch, noise, timesteps) or computes other gradients, before any
    real step; raises RuntimeError then. Uses its own generator; the caller restores weights and moments.
    """
    check_gen = torch.Generator(device=p.device).manual_seed(12345)
    p.buf.idx.copy_(torch.arange(len(p.buf.idx), device=p.device) * 7 % len(p.data))
    draw_into(p.buf, p.cfg.num_train_timesteps, check_gen, p.cfg.label_dropout)
    params = [q for q in p.raw.parameters() if q.requires_grad]
    loss = step_loss(p)
    eager = torch.autograd.grad(loss, params, allow_unused=True)  # leaves the graph's .grad tensors alone
    pairs = [(q, g) for q, g in zip(params, eager) if g is not None]
    coef = 1.0
    if p.cfg.grad_clip > 0:
        coef = float(torch.clamp(p.cfg.grad_clip / (_norm([g for _, g in pairs]) + 1e-6), max=1.0))
    expected = float(loss.detach())
    graph.replay()
    got = float(static_loss)
    if any(q.grad is None for q, _ in pairs):
        raise RuntimeError("captured step left parameters without gradients")
    err = float(_norm([q.grad - coef * g for q, g in pairs]) / _norm([coef * g for _, g in pairs]))
    if not (np.isfinite(got) and abs(got - expected) <= SELF_TEST_RTOL * abs(expected)):
        raise RuntimeError(f"captured step's loss {got:.6g} differs from the eager loss {expected:.6g}")
    if not (np.isfinite(err) and err <= SELF_TEST_RTOL):
        raise RuntimeError(f"captured step's gradients differ from the eager ones (relative error {err:.3g})")


# ====================================================================== training: checkpoints
def _gather_generator_states(p: TrainParts) -> list[torch.Tensor]:
    state = p.generator.get_state()
    if p.world == 1:
        return [state]
    from accelerate.utils import gather_object

    return gather_object([state])


def _barrier(p: TrainParts) -> None:
    if p.world > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def save_checkpoint(p: TrainParts, ckpt_dir: Path, step: int, losses: list[float]) -> None:
    """Everything to resume exactly, written to a temporary folder and renamed into place by the main process."""
    generators = _gather_generator_states(p)  # a collective: every rank calls it
    if p.rank == 0:
        tmp = fresh_tmp_dir(ckpt_dir.parent, ckpt_dir.name)
        state = {
            "format": CKPT_FORMAT, "step": step, "losses": list(losses), "world": p.world,
            "batch_size": p.cfg.batch_size, "model": p.raw.state_dict(), "optimizer": p.optimizer.state_dict(),
            "lr_schedule": p.lr_schedule.state_dict(), "generators": generators,
        }
        torch.save(state, tmp / CKPT_FILE)
        record_hashes(tmp, CKPT_FILE)
        (tmp / "COMPLETE").write_text("ok\n")
        atomic_replace_dir(tmp, ckpt_dir)
    _barrier(p)


def _load_optimizer_inplace(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Copy saved AdamW state into the existing tensors (a captured graph holds their addresses)."""
    params = [q for g in optimizer.param_groups for q in g["params"]]
    if not optimizer.state:
        lrs = [g["lr"] for g in optimizer.param_groups]
        optimizer.load_state_dict(saved)
        for g, lr in zip(optimizer.param_groups, lrs):  # keep the LR's type (a device tensor on the graph path)
            g["lr"] = lr
        return
    for i, q in enumerate(params):
        for key, value in saved["state"].get(i, {}).items():
            target = optimizer.state[q][key]
            if torch.is_tensor(target):
                target.copy_(value)
            else:
                optimizer.state[q][key] = value


def _set_lr(optimizer: torch.optim.Optimizer, lrs: list[float]) -> None:
    for group, lr in zip(optimizer.param_groups, lrs):
        lr = float(lr)
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def _validate_checkpoint(p: TrainParts, state: dict) -> None:
    """Raise ValueError unless ``state`` fits this run exactly (checked before anything is overwritten)."""
    if state.get("format") != CKPT_FORMAT or state.get("world") != p.world or state.get("batch_size") != p.cfg.batch_size:
        raise ValueError(f"made with {state.get('world')} processes at batch {state.get('batch_size')}, "
                         f"format {state.get('format')!r}")
    own = p.raw.state_dict()
    saved = state["model"]
    if set(saved) != set(own) or any(tuple(saved[k].shape) != tuple(v.shape) for k, v in own.items()):
        raise ValueError("its model has other parameters")
    params = [q for g in p.optimizer.param_groups for q in g["params"]]
    for i, entry in state["optimizer"]["state"].items():
        if not 0 <= int(i) < len(params):
            raise ValueError("its optimizer has other parameters")
        for key, value in entry.items():
            if torch.is_tensor(value) and value.ndim and tuple(value.shape) != tuple(params[int(i)].shape):
                raise ValueError(f"its optimizer state {key!r} has another shape")
    if len(state["generators"]) != p.world:
        raise ValueError("it holds another number of generator states")
    torch.Generator(device=p.device).set_state(state["generators"][p.rank])  # raises for another device type


def load_checkpoint(p: TrainParts, ckpt_dir: Path) -> tuple[int, list[float]] | None:
    """Restore a fast checkpoint in place; None (train from step 0) when there is none or it does not fit."""
    if not (ckpt_dir / "COMPLETE").exists():
        return None
    path = ckpt_dir / CKPT_FILE
    if not path.exists():
        log.warning("checkpoint %s was not written by the fast path (reference recipe?); fast training starts at step 0",
                    ckpt_dir)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        _validate_checkpoint(p, state)
    except Exception as exc:  # a damaged checkpoint costs at most K steps, never the run
        log.warning("checkpoint %s unusable (%s); training this generation from step 0", ckpt_dir, exc)
        return None
    # validated: nothing below fails half-way, so the state is either all loaded or untouched
    with torch.no_grad():
        p.raw.load_state_dict(state["model"])
    _load_optimizer_inplace(p.optimizer, state["optimizer"])
    p.lr_schedule.load_state_dict(state["lr_schedule"])
    _set_lr(p.optimizer, p.lr_schedule.get_last_lr())
    p.generator.set_state(state["generators"][p.rank])
    log.info("resumed fast training from %s at step %d", ckpt_dir, state["step"])
    return int(state["step"]), [float(x) for x in state["losses"]]


# ====================================================================== training: the loop
def _host_indices(stream: EpochStream, start: int, stop: int, local: slice) -> np.ndarray:
    return np.stack([stream.batch(s)[local] for s in range(start, stop)])


def _check_finite(losses: list[float], step: int) -> None:
    if losses and not np.isfinite(losses[-1]):
        raise FloatingPointError(f"fast training diverged: loss {losses[-1]} at step {step}")


def train_fast(job: TrainJob) -> TrainResult:
    """Train a fresh UNet on ``job.images`` for ``cfg.train_steps`` steps: the reference's maths, faster.

    ``job.on_step(step, loss)`` is called for every step in order; on the graph path in bursts of up to
    :data:`FLUSH_EVERY` steps (losses are read back from the device only then).
    """
    images, labels, cfg, seed, ckpt_dir, on_step = job.images, job.labels, job.cfg, job.seed, job.ckpt_dir, job.on_step
    device = torch.device(job.device)
    world, _ = _world(device)
    graph = OPTIONS.graph and device.type == "cuda" and world == 1
    with cudnn_benchmark(device.type == "cuda"):
        p = build_parts(images, labels, cfg, seed, device, graph)
        mode = "eager"
        if graph:
            try:
                cuda_graph, static_loss = capture_step(p)
                mode = "graph"
            except Exception as exc:  # capture unsupported here: same maths, eagerly
                warnings.warn(f"CUDA graph capture of the train step failed ({exc!r}); training eagerly",
                              RuntimeWarning, stacklevel=2)
                p = build_parts(images, labels, cfg, seed, device, graph=False)
        resumed = load_checkpoint(p, ckpt_dir) if ckpt_dir is not None else None
        step, losses = resumed if resumed is not None else (0, [])
        one_step = _graph_step(cuda_graph, static_loss) if mode == "graph" else _eager_step(p)
        losses = _run_steps(p, one_step, step, losses, seed, ckpt_dir, on_step, desc=f"{job.desc} (fast)")
    model = p.raw
    if p.channels_last:
        model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    info = {"mode": mode, "channels_last": p.channels_last, "world": p.world}
    return TrainResult(model=model, losses=losses, steps=len(losses), mixed_precision=p.precision, recipe="fast",
                       info=info)


def _progress_bar(p: TrainParts, initial: int, desc: str = "train (fast)"):
    return tqdm(total=p.cfg.train_steps, initial=initial, desc=desc, dynamic_ncols=True, leave=True,
                disable=not (p.cfg.progress and p.rank == 0))


def _report(bar, losses: list[float], start: int, on_step: Callable[[int, float], None] | None) -> None:
    for s in range(start, len(losses)):
        if on_step is not None:
            on_step(s + 1, losses[s])
    bar.update(len(losses) - start)
    bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")


def _checkpoint_due(p: TrainParts, step: int) -> bool:
    return step % p.cfg.checkpoint_every == 0 and step < p.cfg.train_steps


def _chunk_end(p: TrainParts, step: int, chunk: int, checkpointing: bool) -> int:
    """The end of the next run of steps between host read-backs: a chunk, cut at the next checkpoint."""
    stop = min(p.cfg.train_steps, step + chunk)
    if checkpointing:
        stop = min(stop, (step // p.cfg.checkpoint_every + 1) * p.cfg.checkpoint_every)
    return stop


def _step_schedule(p: TrainParts) -> None:
    """Advance the LR schedule; keep the LR in its device tensor (older schedulers assign a float)."""
    tensors = [g["lr"] if torch.is_tensor(g["lr"]) else None for g in p.optimizer.param_groups]
    p.lr_schedule.step()
    for group, tensor in zip(p.optimizer.param_groups, tensors):
        if tensor is not None and group["lr"] is not tensor:
            tensor.fill_(float(group["lr"]))
            group["lr"] = tensor


def _eager_step(p: TrainParts) -> Callable[[], torch.Tensor]:
    def one() -> torch.Tensor:
        loss = train_step(p)
        p.optimizer.zero_grad(set_to_none=True)
        return loss

    return one


def _graph_step(cuda_graph: torch.cuda.CUDAGraph, static_loss: torch.Tensor) -> Callable[[], torch.Tensor]:
    def one() -> torch.Tensor:
        cuda_graph.replay()
        return static_loss.clone()

    return one


def _run_steps(p: TrainParts, one_step: Callable[[], torch.Tensor], step: int, losses: list[float], seed: int,
               ckpt_dir: Path | None, on_step: Callable[[int, float], None] | None,
               desc: str = "train (fast)") -> list[float]:
    """Steps ``step`` … train_steps−1: indices uploaded and losses read back once per chunk of steps."""
    cfg = p.cfg
    stream = EpochStream(len(p.data), cfg.batch_size, seed)
    local = slice(p.rank * cfg.batch_size // p.world, (p.rank + 1) * cfg.batch_size // p.world)
    chunk = 1 if p.device.type == "cpu" else FLUSH_EVERY
    bar = _progress_bar(p, step, desc)
    while step < cfg.train_steps:
        stop = _chunk_end(p, step, chunk, ckpt_dir is not None)
        idx = torch.from_numpy(_host_indices(stream, step, stop, local)).to(p.device)
        pending = []
        for j in range(stop - step):
            p.buf.idx.copy_(idx[j])
            draw_into(p.buf, cfg.num_train_timesteps, p.generator, cfg.label_dropout)
            pending.append(one_step())
            _step_schedule(p)
        start = len(losses)
        losses.extend(torch.stack(pending).float().cpu().tolist())
        step = stop
        _check_finite(losses, step)
        _report(bar, losses, start, on_step)
        if ckpt_dir is not None and _checkpoint_due(p, step):
            save_checkpoint(p, ckpt_dir, step, losses)
    bar.close()
    return losses


