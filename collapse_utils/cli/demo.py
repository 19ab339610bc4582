"""``python -m collapse_utils demo``: the options of the CPU demo (its preset, seed, generations and sizes).

The handler is ``collapse_utils.paper.demo:_cmd_demo``.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from ..core.cli_common import add_preset_option
from ..core.presets import scale

DEMO_DESCRIPTION = """\
Show the paper's findings, with numbers, in about 10 minutes on a 2-core CPU: train diffusion models
on the bundled MNIST (8x8) again and again on their own samples, at three dataset sizes and with
data selection, then judge each finding by a rule fixed in advance, print the verdicts and draw
the figures. A finding that does not appear at this scale is printed as "does not hold".

Runs go to the run store (--out) and are reused by later demos and by the figures command; the
summary (summary.txt, summary.json) and figures go to --fig-dir.

examples:
  python -m collapse_utils demo                                  the demo (6 runs x 5 generations)
  python -m collapse_utils demo --preset smoke                   the code path in seconds
  python -m collapse_utils demo --seed 1 --generations 8         another seed, longer runs
  python -m collapse_utils demo --sizes 64,256,1024 --selection-n 256
"""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 32,128,1024; got {text!r}") from exc
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive dataset sizes, got {text!r}")
    return sizes


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``python -m collapse_utils demo``."""
    def shown(get: Callable[[Any], Any]) -> str:
        return " · ".join(f"{p} {get(scale(p))}" for p in ("demo", "smoke"))

    p = sub.add_parser("demo", help="the paper's findings on bundled MNIST in minutes on a CPU",
                       description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "demo", "demo: the findings in minutes; smoke: the code path in seconds, numbers "
                                 "meaningless", choices=("demo", "smoke"))
    p.add_argument("--seed", type=int, metavar="SEED",
                   help="the seed of every run (an integer >= 0; another seed gives other runs) [default: 0]")
    p.add_argument("--generations", type=int, metavar="G",
                   help="generations per run, at least 2 for the findings to mean something "
                        f"[{shown(lambda s: s.sweep_generations)}]")
    p.add_argument("--sizes", type=_sizes, metavar="N1,N2,...",
                   help="comma-separated training-set sizes in images for the size sweep "
                        f"[{shown(lambda s: ','.join(map(str, s.sweep_sizes)))}]")
    p.add_argument("--selection-n", type=int, metavar="N",
                   help="training-set size in images of the selection comparison, one of --sizes "
                        f"[{shown(lambda s: s.selection_n[s.selection_datasets[0]])}; with --sizes that "
                        "lack it: the middle size]")
    p.add_argument("--out", help="the run store, shared with the figure notebooks (default: runs/ in the repository, "
                                 "or $COLLAPSE_RUNS)")
    p.add_argument("--fig-dir", help="where the figures and summary.txt/json go (default: figures/demo in the "
                                     "repository; figures/smoke/demo for --preset smoke; a folder of its own, e.g. "
                                     "figures/demo-seed1-gen8, when --seed, --generations, --sizes or "
                                     "--selection-n is given)")
    p.add_argument("--workers", type=int, default=2,
                   help="parallel single-thread worker processes (2 on 2 cores) [default: 2]")
    p.set_defaults(func="collapse_utils.paper.demo:_cmd_demo")
