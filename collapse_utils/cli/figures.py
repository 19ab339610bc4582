"""``python -m collapse_utils figures``: the options of the figure batch (which figures, the run store, notebook
parameters, or a results bundle to redraw from).

The handler is ``collapse_utils.paper.batch:_cmd_figures``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.cli_common import add_preset_option, parse_param

FIGURES_DESCRIPTION = """\
Make the paper's figures: first train every run the chosen figures need that is not in the run
store yet (in parallel, --workers at a time), then execute the figure notebooks notebooks/F*.ipynb
and check that each wrote its PNG, PDF and data file.

The executed notebooks and batch_summary.json are kept in <fig-dir>/executed/. A notebook that
fails is reported with its failing cell; the others still run, finished runs stay in the store,
and the command exits with status 1 at the end. Rerunning reuses every finished run.

examples:
  every figure at demo scale, into figures/:
    python -m collapse_utils figures --preset demo
  some of them:
    python -m collapse_utils figures --preset demo --only F2,F4
  a notebook parameter (a python literal) for every notebook:
    python -m collapse_utils figures --preset smoke --only F2 --param "sizes=[16,32]"
"""


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``python -m collapse_utils figures``."""
    p = sub.add_parser("figures", help="execute the figure notebooks with papermill and write the figures",
                       description=FIGURES_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "demo", "the scale of the runs and figures (run --help describes the presets)")
    p.add_argument("--only", help="comma-separated figure ids, e.g. F2,F4 (default: every notebooks/F*.ipynb)")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--fig-dir", help="where figures go (default: figures/ for demo, figures/<preset> otherwise)")
    p.add_argument("--workers", type=int, help="parallel training processes (default: 2 on CPU presets, 1 for paper)")
    p.add_argument("--device", help="torch device for training and metrics (default: CUDA if available)")
    p.add_argument("--param", action="append", default=[], type=parse_param, metavar="KEY=VALUE",
                   help="a notebook parameter for every notebook, as a python literal (e.g. sizes=[64,256])")
    p.add_argument("--no-prefetch", action="store_true", help="let each notebook train its own runs")
    p.add_argument("--timeout", type=int, help="per-cell timeout in seconds")
    p.add_argument("--notebook-dir", type=Path, help="run the F*.ipynb of another folder (default: <repo>/notebooks)")
    p.add_argument("--from-results", metavar="DIR", help="redraw the figures from a results bundle (e.g. "
                   "results/demo, committed) with the notebooks' own calls: no training, no notebooks, seconds")
    p.set_defaults(func="collapse_utils.paper.batch:_cmd_figures")
