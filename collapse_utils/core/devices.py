"""Where and how a run executes: the torch device, the recipe (reference or fast path) and the precision.

Resolved here once for training, sampling, features and metrics alike:

* device: ``None`` → CUDA when available, else CPU; an asked-for CUDA device must exist (checked before any work).
* recipe: ``auto`` → the fast path on CUDA (collapse_utils.diffusion.fast_train / fast_sample), the authors' reference
  recipe elsewhere; ``reference`` / ``fast`` force one (RunConfig.recipe).
* precision: the reference recipe autocasts fp16/bf16 on a GPU only (fp32 on a CPU, recorded in train_log.json);
  the fast path autocasts bf16 on CUDA for any mixed precision (:func:`fast_precision`).
* the CPU thread count of recorded computations (:func:`fixed_cpu_threads`) and worker processes that exit
  with the process that started them (:func:`die_with_parent`).
* the fast path's switches (:class:`FastOptions`), read once from the environment (``COLLAPSE_FAST_*``) into
  :data:`OPTIONS`, which both fast modules (and the GPU benchmark, to try variants) read.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from .vocab import RECIPES


# Torch threads of every CPU computation whose bytes are recorded (training, sampling): conv kernels reduce in an
# order that depends on the thread count, so a fixed count makes the same run key give the same bytes anywhere.
CPU_THREADS = 1


@contextmanager
def fixed_cpu_threads(device: torch.device) -> Iterator[None]:
    """Run the block with :data:`CPU_THREADS` torch threads when ``device`` is a CPU (nothing changes on CUDA)."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def die_with_parent(parent: int) -> None:
    """Worker-process initializer: exit as soon as the process that started us is gone (a SIGKILLed ``figures``
    or notebook leaves no worker training into the store)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; an asked-for CUDA device must exist."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(torch.device(device))


def check_device(device: torch.device) -> torch.device:
    """Refuse a CUDA device this machine does not have, before any work starts (not deep inside torch)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} was asked for, but torch {torch.__version__} sees no CUDA "
                               "device here; use --device cpu, or leave --device out to pick CUDA when present")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {str(device)!r} was asked for, but this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def resolve_recipe(recipe: str, device: torch.device) -> str:
    """``auto``: the fast path on CUDA, the reference recipe elsewhere; ``reference`` / ``fast`` as forced."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if recipe == "auto":
        return "fast" if torch.device(device).type == "cuda" else "reference"
    return recipe


def resolve_mixed_precision(requested: str, device: torch.device) -> str:
    """The reference recipe's precision: fp16/bf16 autocast need a GPU; on a CPU it trains in fp32."""
    if device.type != "cuda" and requested != "no":
        return "no"
    return requested


# ---------------------------------------------------------------------- the fast path
@dataclass
class FastOptions:
    """Switches of the fast path (environment: COLLAPSE_FAST_GRAPH / _CHANNELS_LAST / _TRAIN_CHANNELS_LAST / _COMPILE /
    _INDUCTOR)."""

    graph: bool = True  # capture the train step as one CUDA graph (single process, CUDA)
    channels_last: bool = True  # sampler: NHWC activations and weights on CUDA
    train_channels_last: bool = False  # train step: NCHW was faster in the graph (H200, one run each)
    compile: str = "probe"  # sampler: "probe" (compile after a child process survived it), "1" (no probe), "0"
    precision: str = "bf16"  # autocast dtype on CUDA when mixed precision is asked for: bf16 (or "no")
    # sampler: Inductor options for torch.compile(options=...), e.g. {"freezing": true}; empty = the defaults
    inductor: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "FastOptions":
        env = os.environ
        return cls(
            graph=env.get("COLLAPSE_FAST_GRAPH", "1") != "0",
            channels_last=env.get("COLLAPSE_FAST_CHANNELS_LAST", "1") != "0",
            train_channels_last=env.get("COLLAPSE_FAST_TRAIN_CHANNELS_LAST", "0") == "1",
            compile=env.get("COLLAPSE_FAST_COMPILE", "probe"),
            inductor=parse_inductor_options(env.get("COLLAPSE_FAST_INDUCTOR", "")),
        )


def parse_inductor_options(text: str) -> dict[str, Any]:
    """``COLLAPSE_FAST_INDUCTOR``: a JSON object of Inductor options (``torch._inductor.config`` names)."""
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"COLLAPSE_FAST_INDUCTOR must be a JSON object such as '{{\"freezing\": true}}': {exc}") from None
    if not isinstance(options, dict):
        raise ValueError(f"COLLAPSE_FAST_INDUCTOR must be a JSON object, not {type(options).__name__}")
    return options


OPTIONS = FastOptions.from_env()


@contextmanager
def cudnn_benchmark(enabled: bool = True) -> Iterator[None]:
    """cuDNN autotuning for fixed shapes, restored afterwards (it is a process-wide flag)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def fast_precision(requested: str, device: torch.device) -> str:
    """The fast path's precision: bf16 autocast on CUDA for any mixed precision ('fp16' included), else fp32."""
    if device.type != "cuda" or requested == "no" or OPTIONS.precision == "no":
        return "no"
    if not torch.cuda.is_bf16_supported():
        warnings.warn("this GPU has no bf16: the fast path runs in fp32", RuntimeWarning, stacklevel=2)
        return "no"
    return "bf16"


def fast_autocast(device: torch.device, precision: str):
    """bf16 autocast when ``precision`` (from :func:`fast_precision`) is "bf16"; a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)
