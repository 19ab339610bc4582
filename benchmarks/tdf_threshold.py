"""How the Threshold Decay Filter's starting threshold tau_0 shapes its selection on the demo's real pools.

    .venv/bin/python benchmarks/tdf_threshold.py                 # the committed bundle's pools, ~10 s
    .venv/bin/python benchmarks/tdf_threshold.py --store DIR     # another run store

A pool is the 2N = 256 samples a demo model draws at one generation (`gen_XX/samples.npy` of the replace + TDF
runs: what a selection run picks N = 128 from, replace paradigm, 8x8 MNIST pixels). For each pool it prints the
pool's median 1-NN distance, and for the authors' tau_0 = 2000 (PAPER.md §4.2) and for tau_0 matched to the pool
(`threshold_quantile` q: the q-quantile of the pool's 1-NN distances; ours) the share of the filter's picks that
Greedy Selection (Algorithm 1, farthest point) also picks, and the selection's smallest pairwise distance (how
far apart its two closest picks are: larger = fewer near-duplicates kept). Decay 0.95, seed 0, as the demo.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere
from collapse_utils.loop.selection import (  # noqa: E402
    greedy_selection, matched_threshold, nearest_neighbour_distances, select)

QUANTILES = (0.5, 0.9)


def closest_pair(x: np.ndarray) -> float:
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(Path(__file__).resolve().parent.parent / "results/demo/store"))
    ap.add_argument("--n", type=int, default=128)
    args = ap.parse_args()
    runs = sorted(Path(args.store).glob("demo-mnist-replace-threshold-pixel-n128-s*"))
    if not runs:
        sys.exit(f"no replace + TDF n=128 demo runs in {args.store}")
    head = ["pool", "median 1-NN", "Greedy: closest pair", "tau_0=2000: ∩Greedy", "closest pair"]
    for q in QUANTILES:
        head += [f"q={q}: tau_0", "∩Greedy", "closest pair"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    totals: dict[str, list[float]] = {}
    for run in runs:
        for gen in sorted(run.glob("gen_0[1-4]")):
            x = np.load(gen / "samples.npy").reshape(-1, 64).astype(np.float32)
            g = greedy_selection(x, args.n, device="cpu")
            row = [f"{run.name.split('-')[-2]} {gen.name}", f"{np.median(nearest_neighbour_distances(x, 'cpu')):.0f}",
                   f"{closest_pair(x[g]):.0f}"]
            arms = [("authors", None)] + [(f"q={q}", q) for q in QUANTILES]
            for name, q in arms:
                kw = {} if q is None else {"threshold_quantile": q}
                idx = select("threshold", x, args.n, seed=0, threshold=2000.0, decay=0.95, device="cpu", **kw)
                share = len(set(idx.tolist()) & set(g.tolist())) / args.n
                totals.setdefault(name, []).append(share)
                if q is not None:
                    row.append(f"{matched_threshold(x, q, 'cpu'):.0f}")
                row += [f"{share:.2f}", f"{closest_pair(x[idx]):.0f}"]
            print("| " + " | ".join(row) + " |")
    print()
    print("mean share of the filter's picks that Greedy also picks: "
          + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in totals.items())
          + f" (chance: {args.n / len(x):.2f})")


if __name__ == "__main__":
    main()
