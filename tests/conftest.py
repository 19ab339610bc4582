"""Shared fixtures: small real images, and CPU-only, quiet, single-threaded torch for stable timings."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

# Tiny UNets spend their time in thread hand-offs, not arithmetic: one thread is many times faster on 2 cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits8() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1,797 real 8×8 handwritten digits as uint8 N×8×8×1 (0–16 scaled to 0–255) with labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[..., None]
    return images, d.target.astype(np.int64)
