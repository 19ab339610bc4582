"""Where and how a run executes: the torch device, the recipe (reference or fast path) and the precision.

Resolved here once for training, sampling, features and metrics alike:

* device: ``None`` → CUDA when available, else CPU; an asked-for CUDA device must exist (checked before any work).
* recipe: ``auto`` → the fast path on CUDA (collapse_utils.fast_train / fast_sample), the authors' reference
  recipe elsewhere; ``reference`` / ``fast`` force one (RunConfig.recipe).
* precision: the reference recipe autocasts fp16/bf16 on a GPU only (fp32 on a CPU, recorded in train_log.json).
"""

from __future__ import annotations

import torch

from .vocab import RECIPES


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
