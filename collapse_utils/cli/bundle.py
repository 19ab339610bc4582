"""``python -m collapse_utils bundle``: the options of a results bundle (the figure set's runs without models).

The handler is ``collapse_utils.paper.batch:_cmd_bundle``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.cli_common import add_preset_option

BUNDLE_DESCRIPTION = """\
Write a results bundle: the runs of a figure set without their models (every metric of every run and
generation, the training sets and samples the figures draw; no weights, no held-out samples), from a run store
whose runs are finished. Metrics the figures plot and the runs lack are computed first (held-out metrics draw
samples from the saved models), as the figure notebooks would; nothing is trained.
Then anyone redraws the figures and the claims table from it in seconds:
  python -m collapse_utils figures --from-results DIR
  python -m collapse_utils claims --from-results DIR --out FILE

example (the committed demo bundle: every figure at the preset's 3 seeds but F8 and F12 at 6):
  python -m collapse_utils bundle --preset demo --out results/demo --seeds 'F8=0,1,2,3,4,5;F12=0,1,2,3,4,5'
"""


def add_cli(sub: Any) -> None:
    """Register ``python -m collapse_utils bundle``: a results bundle of the figure set
    (collapse_utils.paper.results) with the metrics of the claims table computed first."""
    p = sub.add_parser("bundle", help="write a results bundle (runs without models) that redraws figures and claims",
                       description=BUNDLE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "demo", "the scale of the runs")
    p.add_argument("--out", required=True, help="the bundle folder (replaced whole), e.g. results/demo")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--only", help="comma-separated figure ids (default: every figure)")
    p.add_argument("--seeds", help="0,1,2 for every figure, or F11=0;F12=0 per figure (default: the preset's)")
    p.add_argument("--device", help="torch device for metrics the runs lack (default: CUDA if available)")
    p.set_defaults(func="collapse_utils.paper.batch:_cmd_bundle")
