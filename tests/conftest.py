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


# The smoke runs the claims tests read: F2's size sweep (n = 16, 32) and the accumulate arms of F7/F10 (vanilla,
# Threshold Decay Filter, Greedy), seeds 0 and 1, 2 generations each (seconds apiece). Other figures' runs are
# left out on purpose: their claims must say "not run".
CLAIMS_STORE_SEEDS = (0, 1)


def claims_store_configs() -> list:
    from collapse_utils.paper import figures

    seeds = list(CLAIMS_STORE_SEEDS)
    return (figures.figure_configs("F2", "smoke", seeds=seeds)
            + figures.figure_configs("F10", "smoke", seeds=seeds)
            + figures.figure_configs("F7", "smoke", seeds=seeds, paradigms=["accumulate_subsample"], methods=["none"]))


@pytest.fixture(scope="session")
def claims_store(tmp_path_factory):
    """A run store holding :func:`claims_store_configs`' finished smoke runs."""
    from collapse_utils.loop import store

    root = tmp_path_factory.mktemp("claims_store")
    store.ensure_runs(claims_store_configs(), root)
    return root


def finished_run(tmp_path_factory, cfg, name: str = "run"):
    """A finished run of ``cfg`` in a fresh temporary folder (module fixtures build their reference run with it)."""
    from collapse_utils.loop.run import run_self_consuming

    run_dir = tmp_path_factory.mktemp(name) / "run"
    run_self_consuming(cfg, run_dir)
    return run_dir
