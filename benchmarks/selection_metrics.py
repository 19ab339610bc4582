"""Time Greedy Selection, the Threshold Decay Filter, KL entropy and the generalization score.

    .venv/bin/python benchmarks/selection_metrics.py                       # CPU defaults, ~2 minutes
    .venv/bin/python benchmarks/selection_metrics.py --sizes 4096,65536 --device cuda

For each pool size N and feature space it times, on synthetic features of the right shape and scale:
  greedy   -- Algorithm 1, select N/2 of N                        (PAPER.md §4.1)
  filter   -- Algorithm 2, select N/2 of N, the space's replace defaults, schedule "every_pass" (§4.2)
  entropy  -- KL entropy (k=1) of N samples                       (§3.2)
  gs       -- generalization score of N generated vs N training   (§3.1)
Spaces: "pixel" = 3072-d uint8-valued rows (32x32x3 images, 0-255), "dinov2" = 384-d float rows with the
spread of DINOv2-small CLS features (no network is run: this times the algorithms, not feature extraction).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere
from collapse_utils.loop import selection
from collapse_utils.measure.metrics import generalization_score, knn_entropy, nearest_neighbors  # noqa: E402
from collapse_utils.loop.selection import (  # noqa: E402
    default_filter_params, greedy_selection, threshold_decay_filter)

SPACE_DIMS = {"pixel": 3072, "dinov2": 384}


def synthetic_features(n: int, space: str, seed: int = 0) -> np.ndarray:
    """Rows with low intrinsic dimension (like images), so 1-NN distances vary as in real data."""
    rng = np.random.default_rng(seed)
    d = SPACE_DIMS[space]
    latent = rng.normal(size=(n, 32)).astype(np.float32)
    basis = rng.normal(size=(32, d)).astype(np.float32) / np.sqrt(32)
    x = latent @ basis
    if space == "pixel":  # uint8 images: mean 120, s.d. ~60 per pixel, plus pixel noise
        x = 120 + 55 * x + rng.normal(0, 8, size=x.shape).astype(np.float32)
        return np.clip(np.round(x), 0, 255).astype(np.float32)
    return 2.0 * x + rng.normal(0, 0.5, size=x.shape).astype(np.float32)  # 1-NN ~ 20-40 like DINOv2 CLS


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def without(switch: str, fn):
    """Run fn with one of selection's speed switches (USE_FP16_EXACT_MATMUL, USE_CUDA_GRAPHS) off."""
    setattr(selection, switch, False)
    try:
        return fn()
    finally:
        setattr(selection, switch, True)


def greedy_fp32(x: torch.Tensor, n: int, device: torch.device) -> np.ndarray:
    return without("USE_FP16_EXACT_MATMUL", lambda: greedy_selection(x, n, device=device))


def check_against_cpu(n: int, device: torch.device) -> None:
    """Same selections and neighbours on ``device`` as on the CPU (exactness of the fast paths)."""
    for space in SPACE_DIMS:
        x = synthetic_features(n, space, seed=2)
        p = default_filter_params(space, "replace")
        pairs = {
            "greedy": lambda dev: greedy_selection(x, n // 4, seed=1, device=dev),
            "greedy-fp32": lambda dev: greedy_fp32(torch.from_numpy(x), n // 4, torch.device(dev)),
            "greedy-eager": lambda dev: without("USE_CUDA_GRAPHS",
                                                lambda: greedy_selection(x, n // 4, seed=1, device=dev)),
            "filter": lambda dev: threshold_decay_filter(x, n // 4, seed=1, device=dev, **p),
            "knn": lambda dev: nearest_neighbors(x[: n // 4], x, k=2, exclude_self=False, device=dev)[1],
        }
        for name, fn in pairs.items():
            a, b = fn(device), fn("cpu")
            same = np.mean(a == b)
            first_diff = int(np.argmax(a != b)) if same < 1 else -1
            print(f"# check {space}/{SPACE_DIMS[space]} {name}: {device.type} == cpu on {same:.4%} "
                  f"(first difference at position {first_diff})", flush=True)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = f"{names[0]} x {len(names)} logical cores" if names else cpu
    except OSError:
        pass
    desc = f"{cpu}; torch {torch.__version__}; {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        desc += f"; GPU {torch.cuda.get_device_name()}"
    return desc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,4096", help="comma-separated pool sizes N (default 1024,4096)")
    ap.add_argument("--spaces", default="pixel,dinov2", help="comma-separated: pixel (3072-d), dinov2 (384-d)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tasks", default="greedy,filter,entropy,gs",
                    help="comma-separated; variants: greedy-fp32 (no float16 path), greedy-eager and "
                         "filter-eager (no CUDA graphs)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="first compare --device against the CPU on N-row pools (selections, kNN)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    tasks = args.tasks.split(",")
    if args.check:
        check_against_cpu(args.check, device)
    print(f"# {machine()}")
    print(f"| {'N':>6} | {'space/dim':<12} | {'device':<6} | {'task':<34} | {'seconds':>8} |")
    print(f"|{'-' * 8}|{'-' * 14}|{'-' * 8}|{'-' * 36}|{'-' * 10}|")
    for size in [int(s) for s in args.sizes.split(",")]:
        for space in args.spaces.split(","):
            x = synthetic_features(size, space)
            xt = torch.from_numpy(x).to(device)  # features already on the device, as in the loop
            label = f"{space}/{SPACE_DIMS[space]}"
            half = size // 2
            params = default_filter_params(space, "replace")
            other = torch.from_numpy(synthetic_features(size, space, 1)).to(device)
            jobs = {
                "greedy": (f"greedy {half} of {size}", lambda: greedy_selection(xt, half, device=device)),
                "greedy-fp32": (f"greedy {half} of {size}, fp32", lambda: greedy_fp32(xt, half, device)),
                "greedy-eager": (f"greedy {half} of {size}, no graphs", lambda: without(
                    "USE_CUDA_GRAPHS", lambda: greedy_selection(xt, half, device=device))),
                "filter-eager": (f"filter {half} of {size}, no graphs", lambda: without(
                    "USE_CUDA_GRAPHS", lambda: threshold_decay_filter(xt, half, device=device, **params))),
                "filter": (f"filter {half} of {size} (tau {params['threshold']:g})",
                           lambda: threshold_decay_filter(xt, half, device=device, **params)),
                "entropy": (f"entropy of {size}", lambda: knn_entropy(xt, device=device)),
                "gs": (f"gs {size} vs {size}", lambda: generalization_score(xt, other, device=device)),
            }
            for task in tasks:
                name, fn = jobs[task]
                secs = timed(fn, device)
                print(f"| {size:>6} | {label:<12} | {device.type:<6} | {name:<34} | {secs:>8.2f} |", flush=True)


if __name__ == "__main__":
    main()
