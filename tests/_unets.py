"""The tests' small real UNets: diffusers' ``UNet2DModel`` at the "tiny" size, 8×8, one channel, seeded."""

from __future__ import annotations

import torch

from collapse_utils.diffusion.models import build_unet


def tiny_unet(seed: int = 0, num_classes: int | None = None):
    """A freshly initialised tiny UNet (``num_classes``: class-conditional, with the null class for CFG)."""
    torch.manual_seed(seed)
    return build_unet("tiny", resolution=8, channels=1, num_classes=num_classes)
