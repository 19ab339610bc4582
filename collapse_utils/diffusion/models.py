"""UNet configurations (the authors' UNet32/48/64/128 plus small CPU variants) and the DDPM scheduler.

The authors' UNets (PAPER.md §5 "Model") are diffusers ``UNet2DModel`` with block_out_channels
(w, w, 2w, 2w, 4w, 4w), layers_per_block 2, norm_num_groups 16, attention in the 5th down block and the
2nd up block. At 3 channels: UNet32 7.13 M, UNet48 16.01 M, UNet64 28.45 M, UNet128 113.67 M parameters.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DModel

_PAPER_DOWN = ("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D")
_PAPER_UP = ("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4


def _paper_unet(width: int) -> dict[str, Any]:
    return dict(
        block_out_channels=(width, width, 2 * width, 2 * width, 4 * width, 4 * width),
        down_block_types=_PAPER_DOWN,
        up_block_types=_PAPER_UP,
        layers_per_block=2,
        norm_num_groups=16,
    )


def _small_unet(width: int, groups: int) -> dict[str, Any]:
    """A CPU-sized UNet: two levels (w, 2w), no attention, one layer per block."""
    return dict(
        block_out_channels=(width, 2 * width),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=groups,
    )


MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "unet32": _paper_unet(32),
    "unet48": _paper_unet(48),
    "unet64": _paper_unet(64),
    "unet128": _paper_unet(128),
    # The CPU demo's UNet (benchmarks/demo_findings.md): 2 levels, no attention, 0.16 M parameters.
    "demo": _small_unet(16, groups=8),
    # For tests: the smallest real UNet that still trains.
    "tiny": _small_unet(8, groups=4),
}


def min_resolution(model: str) -> int:
    """The smallest input side the UNet accepts: one factor of 2 per downsampling block."""
    return 2 ** (len(MODEL_CONFIGS[model]["block_out_channels"]) - 1)


def build_unet(
    model: str,
    *,
    resolution: int,
    channels: int,
    num_classes: int | None = None,
) -> UNet2DModel:
    """A fresh ``UNet2DModel``; ``num_classes`` adds a class embedding with one extra null class for CFG."""
    if model not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODEL_CONFIGS)}")
    if resolution % min_resolution(model):
        raise ValueError(
            f"resolution {resolution} is not divisible by {min_resolution(model)}, "
            f"which model {model!r} needs (one factor of 2 per downsampling block)"
        )
    kwargs = dict(MODEL_CONFIGS[model])
    if num_classes is not None:
        # Index num_classes is the "no label" class used for classifier-free guidance (F11).
        kwargs["num_class_embeds"] = num_classes + 1
    return UNet2DModel(sample_size=resolution, in_channels=channels, out_channels=channels, **kwargs)


def build_scheduler(num_train_timesteps: int = 1000, beta_schedule: str = "linear") -> DDPMScheduler:
    """The authors' ``DDPMScheduler``: linear betas 1e-4 → 0.02, epsilon prediction, clip_sample on."""
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        prediction_type="epsilon",
        clip_sample=True,
    )


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
