"""Run by tests/test_distributed.py under ``accelerate launch --num_processes 2 --cpu``: data-parallel training.

For each recipe: an uninterrupted run, and a run stopped after step 5 and resumed from its step-4 checkpoint.
Each rank writes what it saw (losses, final LR, a fingerprint of its weights) to ``<out>/rank<r>.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState

from collapse_utils.core.config import make_config
from collapse_utils.diffusion.train import train_model


class Stop(Exception):
    pass


def fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def main(out: Path) -> None:
    state = PartialState(cpu=True)
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    report = {"rank": state.process_index, "world": state.num_processes}
    for recipe in ("reference", "fast"):
        cfg = make_config("smoke", train_steps=6, batch_size=8, warmup_steps=2, checkpoint_every=2, recipe=recipe,
                          progress=False)
        full = train_model(images, None, cfg, seed=0, device="cpu")
        ckpt = out / f"ckpt_{recipe}"

        def stop_after_5(step: int, loss: float) -> None:
            if step == 5:
                raise Stop

        try:
            train_model(images, None, cfg, seed=0, device="cpu", ckpt_dir=ckpt, on_step=stop_after_5)
        except Stop:
            pass
        state.wait_for_everyone()
        resumed = train_model(images, None, cfg, seed=0, device="cpu", ckpt_dir=ckpt)
        report[recipe] = dict(losses=full.losses, resumed_losses=resumed.losses, weights=fingerprint(full.model),
                              resumed_weights=fingerprint(resumed.model), info=full.info)
    (out / f"rank{state.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
