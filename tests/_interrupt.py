"""Training stopped part-way, as a kill would stop it: the checkpoint written before the stop is left on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from collapse_utils.diffusion.train import train_model


class Interrupted(Exception):
    """Raised from the training loop's step callback in place of a kill."""


def train_until(images, labels, cfg, ckpt_dir: Path, step: int, *, seed: int = 0) -> None:
    """Train ``cfg`` with checkpoints into ``ckpt_dir`` and stop right after optimizer step ``step``."""
    def stop(s, _loss):
        if s == step:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_model(images, labels, cfg, seed=seed, device="cpu", ckpt_dir=ckpt_dir, on_step=stop)
