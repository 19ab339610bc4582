"""What checking a run store against its content hashes costs, against what its generations cost to compute.

    python benchmarks/integrity_cost.py RUN_STORE        (e.g. the demo's store: runs/ after `python -m collapse_utils demo`)

Prints one table row per run: generations, bytes on disk, the time `load_run` takes with every artifact hashed
afresh (sha256 of training sets, samples, model weights, train logs, real images), and the generations' own
compute time (train + sample + metrics, from their metrics.json timings).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from collapse_utils.core import io as cio
from collapse_utils.loop.rundir import load_run


def main(root: Path) -> None:
    runs = [d for d in sorted(root.iterdir()) if (d / "config.json").exists()]
    print(f"{'run':<70} {'gens':>4} {'MiB':>7} {'verify s':>9} {'compute s':>10} {'share':>8}")
    total_v = total_c = 0.0
    for d in runs:
        cio._HASH_MEMO.clear()  # hash every file afresh
        t0 = time.perf_counter()
        r = load_run(d)
        verify = time.perf_counter() - t0
        compute = sum(sum(g.metrics.get("timings", {}).values()) for g in r.generations)
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / 2**20
        total_v, total_c = total_v + verify, total_c + compute
        print(f"{d.name[:70]:<70} {len(r.generations):>4} {size:>7.1f} {verify:>9.3f} {compute:>10.1f} "
              f"{verify / max(compute, 1e-9):>8.2%}")
    print(f"{'all':<70} {'':>4} {'':>7} {total_v:>9.3f} {total_c:>10.1f} {total_v / max(total_c, 1e-9):>8.2%}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
