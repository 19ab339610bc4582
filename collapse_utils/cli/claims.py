"""``python -m collapse_utils claims``: the options of the claims table (the run store or results bundle it reads,
the seeds, which figures' claims, where the table goes).

The handler is ``collapse_utils.paper.claims:_cmd_claims``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.cli_common import add_preset_option

CLAIMS_DESCRIPTION = """\
Check the paper's claims (docs/PAPER.md §6) against the finished runs of the run store and write one
markdown table: per claim the paper's value, ours (mean ± sd over seeds), the verdict by a rule fixed in
advance (printed above the table) and the figure command that makes its runs. Nothing is trained:
claims whose runs are missing say "not run" and name that command. Metrics the runs lack are computed
from their stored samples (added to each generation's metrics.json).

The table goes beside the run store as CLAIMS-<preset>.md (runs/CLAIMS-demo.md by default); the table
committed in the repository, docs/CLAIMS.md, is rewritten only when --out names it.

examples:
  python -m collapse_utils claims --preset demo --seeds 0,1,2        -> runs/CLAIMS-demo.md
  python -m collapse_utils claims --preset demo --out docs/CLAIMS.md  (rewrite the committed table)
"""


def add_cli(sub: Any) -> None:
    """Register ``python -m collapse_utils claims``."""
    p = sub.add_parser("claims", help="check the paper's claims against the run store and write the claims table",
                       description=CLAIMS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "demo", "the scale of the runs (run --help describes the presets)")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds [default: 0,1,2]")
    p.add_argument("--out", help="the markdown file to write; docs/CLAIMS.md rewrites the committed table "
                                 "[default: <run store>/CLAIMS-<preset>.md]")
    p.add_argument("--only", help="comma-separated figure ids: only their claims (default: every claim)")
    p.add_argument("--device", help="torch device for post-hoc metrics (default: CUDA if available)")
    p.add_argument("--from-results", metavar="DIR", help="read a results bundle (e.g. results/demo) instead of a "
                   "run store: its preset and seeds; trains and computes nothing (docs/CLAIMS.md: "
                   "--from-results results/demo --out docs/CLAIMS.md)")
    p.set_defaults(func="collapse_utils.paper.claims:_cmd_claims")
