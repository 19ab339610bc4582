"""``python -m collapse_utils sweep``: the options of a sweep (plan, submit, watch or cancel every run of the
figures) and of its Slurm submission.

The handler is ``collapse_utils.paper.sweep:_cmd_sweep``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.cli_common import add_preset_option, parse_param
from ..core.vocab import EXECUTORS

SWEEP_DESCRIPTION = """\
Plan, submit and watch every run the chosen figures need (the configurations their notebooks ask
for, each run once however many figures share it).

  --plan      list the runs, their state in the run store and their estimated cost, the total and the
              longest chain: GPU-hours on one H200 at paper scale (fast path, benchmarks/gpu_throughput.md),
              CPU-minutes at smoke and demo scale (≈31 CPU-s per demo generation, benchmarks/demo_findings.md,
              or the recorded time of a run's finished generations)
  --status    the same table while jobs run (done / k of G generations done / running: who holds
              the run's lock / never started / failed: the error from <run store>/_jobs/<run>.error;
              for a Slurm sweep also pending with Slurm's reason, the running task's node, or a task
              that ended without finishing its run, from squeue: no accounting needed)
  --executor  submit the runs not finished through submitit: slurm (one job array), local (processes
              on this machine, one run per visible GPU at a time) or debug (in this process); with
              --wait, killing the sweep stops its local jobs
  --cancel    cancel the jobs sweeps submitted into this store (scancel; SIGINT to local jobs)

Then make the figures from the finished store: python -m collapse_utils figures --preset P --only ...

examples:
  python -m collapse_utils sweep --preset paper --plan
  python -m collapse_utils sweep --preset paper --only F2,F7 --executor slurm --partition gpu \\
      --account myproj --time 2880 --gpus-per-node 1 --cpus-per-task 8 --mem-gb 64 \\
      --slurm-array-parallelism 16
  python -m collapse_utils sweep --preset paper --status
"""


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``python -m collapse_utils sweep``."""
    p = sub.add_parser("sweep", help="plan, submit (Slurm / local / debug) and watch every run of the figures",
                       description=SWEEP_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "paper", "the scale of the runs (run --help describes the presets); smoke and demo plan "
                      "CPU time, paper GPU-hours")
    p.add_argument("--only", help="comma-separated figure ids, e.g. F7,F8 (default: every notebooks/F*.ipynb)")
    p.add_argument("--param", action="append", default=[], type=parse_param, metavar="KEY=VALUE",
                   help="a notebook parameter for every figure, as a python literal (e.g. generations=2)")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--notebook-dir", type=Path, help=argparse.SUPPRESS)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--plan", action="store_true", help="list the runs, their states and cost (GPU-hours at paper "
                      "scale, CPU-minutes at smoke and demo scale); submit nothing")
    what.add_argument("--status", action="store_true", help="the same table, for watching a sweep")
    what.add_argument("--executor", choices=EXECUTORS, help="submit the runs not finished")
    what.add_argument("--cancel", action="store_true", help="cancel the Slurm and local jobs sweeps submitted into "
                      "this run store (their runs resume later from their checkpoints)")
    s = p.add_argument_group("submission (slurm; --time also bounds local tasks)")
    s.add_argument("--partition", help="sbatch --partition")
    s.add_argument("--account", help="sbatch --account")
    s.add_argument("--qos", help="sbatch --qos")
    s.add_argument("--time", type=int, metavar="MINUTES", help="sbatch --time, per task; then it is requeued and "
                   "resumes [default: 1440]")
    s.add_argument("--gpus-per-node", type=int, help="sbatch --gpus-per-node (a run uses one GPU) [default: 1; "
                   "none for the CPU presets smoke and demo]")
    s.add_argument("--cpus-per-task", type=int, help="sbatch --cpus-per-task")
    s.add_argument("--mem-gb", type=float, help="sbatch --mem, in GB")
    s.add_argument("--slurm-array-parallelism", type=int, help="at most this many tasks of the array at once (%%N)")
    s.add_argument("--local-slots", type=int, help="local on a CPU machine: runs at a time (default: CPU count)")
    s.add_argument("--wait", action="store_true", help="wait for every task and report failures, a task that "
                   "died without a result included (debug always waits)")
    p.set_defaults(func="collapse_utils.paper.sweep:_cmd_sweep")
