"""Last-generation GS, entropy and FD_LeNet of replace at n = 128 (demo preset): vanilla, TDF with the authors'
tau_0, TDF with tau_0 at the pool's median 1-NN distance (threshold_quantile 0.5, ours), Greedy; seeds 0-2; read
from a run store whose runs are finished (benchmarks/tdf_threshold.md; FD_LeNet is drawn where missing).

    .venv/bin/python benchmarks/tdf_threshold_loop.py --store runs
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere
from collapse_utils.paper.figures import figure_configs
from collapse_utils.loop import store, rundir
from collapse_utils.loop.run_metrics import ensure_figure_metrics

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--store", default=os.environ.get("COLLAPSE_RUNS", "runs"))
root = ap.parse_args().store
base = {c.selection: c for c in figure_configs("F7", "demo", seeds=[0], paradigms=["replace"])}
arms = {"vanilla": ("none", {}), "TDF, authors' tau_0 = 2000": ("threshold", {}),
        "TDF, tau_0 = median 1-NN (q = 0.5)": ("threshold", {"threshold_quantile": 0.5}), "Greedy": ("greedy", {})}
rows = {}
for name, (sel, params) in arms.items():
    runs = []
    for seed in (0, 1, 2):
        c = base[sel].replace(seed=seed, selection_params=params)
        if not store.is_finished(c, root):
            sys.exit(f"{name}, seed {seed}: not finished in {root}; train it with python -m collapse_utils run "
                     f"--preset demo --selection {sel} --n 128 --seed {seed} ... (see the docstring)")
        runs.append(rundir.load_run(store.run_dir_for(c, root)))
    ensure_figure_metrics(runs, ["fd_lenet"])
    rows[name] = {m: [r.generations[-1].metrics[m] for r in runs] for m in ("gs_pixel", "entropy_pixel", "fd_lenet")}
print("| arm (replace, n = 128, generation 5) | GS | entropy | FD_LeNet |")
print("|---|---|---|---|")
for name, v in rows.items():
    cell = lambda xs: f"{np.mean(xs):.1f} ± {np.std(xs, ddof=1):.1f}"
    print(f"| {name} | {cell(v['gs_pixel'])} | {cell(v['entropy_pixel'])} | {cell(v['fd_lenet'])} |")
print()
for m in ("gs_pixel", "entropy_pixel", "fd_lenet"):
    d = np.array(rows["TDF, tau_0 = median 1-NN (q = 0.5)"][m]) - np.array(rows["Greedy"][m])
    print(f"matched TDF - Greedy, {m}: per seed {np.round(d, 1).tolist()}, mean {d.mean():.1f}")
