"""The statistics of the demo scale: FD_LeNet's noise floor by sample size, and what held-out metrics cost.

    python benchmarks/demo_statistics.py                       # noise floors only (bundled data, ~1 min)
    python benchmarks/demo_statistics.py --run-root RUNS       # + held-out sampling and metric timings on a demo run

Prints a markdown table (record it in benchmarks/demo_statistics.md with the machine it ran on). The noise floor is
``run_metrics.fd_noise_floor``: FD_LeNet between two disjoint sets of MNIST test images at the demo's 8×8
(area-downsampled), the value every FD figure prints; the signal row adds Gaussian noise (σ = 32) to the second set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def floors(sizes: list[int]) -> list[tuple[str, str]]:
    from collapse_utils.core.config import make_config
    from collapse_utils.loop.heldout import real_reference
    from collapse_utils.measure.metrics import fd_lenet
    from collapse_utils.loop.run_metrics import fd_noise_floor, fd_noise_floor_spread

    cfg = make_config("demo")
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        floor = fd_noise_floor(cfg, "fd_lenet", n, "cpu")
        sd, _ = fd_noise_floor_spread(cfg, "fd_lenet", n, "cpu")
        dt = time.perf_counter() - t0
        a, b = real_reference(cfg, n, 0), real_reference(cfg, n, 1)
        noisy = np.clip(b.astype(np.float64) + np.random.default_rng(0).normal(0, 32, b.shape), 0, 255).astype(np.uint8)
        signal = fd_lenet(noisy, a, device="cpu", method="eigh")
        rows.append((f"FD_LeNet noise floor, {n:,} per side (8×8), mean of 5 splits", f"{floor:.2f} ± {sd:.2f} (noise σ=32: {signal:.1f}; {dt:.1f} s)"))
    return rows


def heldout_costs(run_root: Path) -> list[tuple[str, str]]:
    from collapse_utils.core.config import make_config
    from collapse_utils.loop.heldout import heldout_samples
    from collapse_utils.loop.rundir import load_run
    from collapse_utils.loop.run_metrics import ensure_figure_metrics
    from collapse_utils.loop.store import run_dir_for

    cfg = make_config("demo")  # vanilla replace, n = 128, seed 0
    run = load_run(run_dir_for(cfg, run_root))
    if not run.generations:
        return [("held-out samples", f"no finished demo run in {run_root}")]
    import shutil
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # time a fresh draw on a copy, leaving the store as it is
        copy = Path(tmp) / run.run_dir.name
        shutil.copytree(run.run_dir, copy, ignore=shutil.ignore_patterns("heldout"))
        run_copy = load_run(copy)
        t0 = time.perf_counter()
        heldout_samples(run_copy, 1, 1000, "cpu")
        rows.append(("held-out samples, 1,000 of one demo model (1 thread, 50 steps)", f"{time.perf_counter() - t0:.1f} s"))
        t0 = time.perf_counter()
        ensure_figure_metrics([run_copy], ["mem_index_pixel", "copy_rate_pixel"], device="cpu")
        rows.append((f"memorization index, {len(run_copy.generations)} generations (draws included)",
                     f"{time.perf_counter() - t0:.1f} s"))
        t0 = time.perf_counter()
        ensure_figure_metrics([run_copy], ["fd_lenet"], device="cpu")
        rows.append((f"fd_lenet on 2,000 held-out samples, {len(run_copy.generations)} generations (draws included)",
                     f"{time.perf_counter() - t0:.1f} s"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-root", type=Path, help="a run store holding the demo's vanilla replace run (n = 128, seed 0)")
    ap.add_argument("--sizes", default="500,1000,2000,5000", help="images per side of the noise floors")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = floors([int(s) for s in args.sizes.split(",")])
    if args.run_root is not None:
        rows += heldout_costs(args.run_root)
    print("| quantity | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
