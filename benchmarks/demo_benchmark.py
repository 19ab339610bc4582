"""Re-run the CPU demo from scratch and print a table: finding, number, holds or not, wall time.

    python benchmarks/demo_benchmark.py [--preset demo] [--workers 2] [--keep DIR]

The demo runs as a new user would run it (``python -m collapse_utils demo`` in a subprocess, so interpreter start-up
and imports count) in a fresh, empty run root, so nothing is reused. Besides wall time it reports the CPU time of
the demo and its worker processes and the load average before and after: on a shared machine wall time is inflated
by other work, CPU time much less so. Not a test: it takes the demo's full time (minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 15 * 60


def run_demo_subprocess(preset: str, workers: int, root: Path) -> tuple[float, float, int]:
    """Run the demo command in ``root``; returns (wall seconds, CPU seconds of it and its children, exit code)."""
    cmd = [sys.executable, "-m", "collapse_utils", "demo", "--preset", preset, "--workers", str(workers),
           "--out", str(root / "runs"), "--fig-dir", str(root / "figures")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(root / "demo_output.txt", "w") as log:
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def table(summary: dict, wall: float, cpu: float) -> str:
    """The markdown table: one row per finding, then the end-to-end timing."""
    rows = ["| finding | number | holds | wall time |", "|---|---|---|---|"]
    for f in summary["findings"]:
        label = f"{f['number']}. {f['title']}"
        rows.append(f"| {label} | {f['headline']} | {f['verdict']} | |")
    t = summary["timing"]
    rows.append(f"| whole demo, end to end | CPU {cpu:.0f} s on {os.cpu_count()} cores; runs {t['runs_wall_s']:.0f} s, "
                f"figures {t['figures_wall_s']:.0f} s | {'within' if wall <= BUDGET_S else 'OVER'} the 15-min budget "
                f"| {wall / 60:.1f} min ({wall:.0f} s) |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=("demo", "smoke"), default="demo")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keep", help="write runs, figures and the demo's output here instead of a temporary directory")
    args = p.parse_args(argv)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="demo_benchmark_"))
    if (root / "runs").exists():
        raise SystemExit(f"{root / 'runs'} exists; the benchmark needs a fresh run root")
    root.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    wall, cpu, rc = run_demo_subprocess(args.preset, args.workers, root)
    load1 = os.getloadavg()
    print(f"demo --preset {args.preset} --workers {args.workers}: exit code {rc}; output in {root / 'demo_output.txt'}")
    print(f"load average (1 min) before {load0[0]:.2f}, after {load1[0]:.2f}; {os.cpu_count()} CPUs")
    if rc != 0:
        print((root / "demo_output.txt").read_text()[-3000:])
        return rc
    summary = json.loads((root / "figures" / "summary.json").read_text())
    print(table(summary, wall, cpu))
    if not args.keep:
        shutil.rmtree(root / "runs", ignore_errors=True)
        print(f"(runs removed; figures and summary kept in {root / 'figures'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
