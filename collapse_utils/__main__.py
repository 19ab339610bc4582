"""Command line: ``python -m collapse_utils {run,demo,figures,…} …``.

Each command lives beside the code it drives: a module that defines ``add_cli(subparsers)`` registers its
sub-command (``run`` here; ``demo`` in demo.py; ``figures`` in figures.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

from .config import PARADIGMS, PRESETS, make_config

COMMAND_MODULES = ("collapse_utils.demo", "collapse_utils.batch", "collapse_utils.benchmark_cli")


def add_run_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) one self-consuming loop")
    p.add_argument("--preset", choices=PRESETS, default="smoke")
    p.add_argument("--dataset")
    p.add_argument("--paradigm", choices=PARADIGMS)
    p.add_argument("--selection", choices=("none", "random", "greedy", "threshold"))
    p.add_argument("--feature-space", choices=("pixel", "dinov2", "inception"))
    p.add_argument("--n", type=int)
    p.add_argument("--generations", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--pool-factor", type=int)
    p.add_argument("--fresh-fraction", type=float)
    p.add_argument("--threshold", type=float)
    p.add_argument("--decay", type=float)
    p.add_argument("--filter-schedule", choices=("every_pass", "when_stalled"))
    p.add_argument("--model")
    p.add_argument("--resolution", type=int)
    p.add_argument("--train-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--sample-steps", type=int, dest="num_inference_steps")
    p.add_argument("--sample-batch-size", type=int)
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"))
    p.add_argument("--metrics", help="comma-separated metric names (see collapse_utils.metrics.METRIC_NAMES)")
    p.add_argument("--conditional", action="store_true", default=None, help="class-conditional model with CFG")
    p.add_argument("--guidance-scale", type=float, help="CFG scale w: eps_u + w (eps_c - eps_u); default 2")
    p.add_argument("--label-dropout", type=float, help="share of training labels replaced by the null class; default 0.1")
    p.add_argument("--class-selection", choices=("per_class", "global"),
                   help="conditional runs: select within each class (default, keeps class balance) or over the pool")
    p.add_argument("--data-root")
    p.add_argument("--device")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--reference-recipe", action="store_true", help="train and sample with the authors' recipe even on CUDA")
    p.add_argument("--allow-config-change", action="store_true", help="resume a run directory made with another config")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", required=True, help="the run directory (created, or resumed)")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from .loop import run_self_consuming

    overrides = {k: getattr(args, k) for k in (
        "dataset", "paradigm", "selection", "feature_space", "n", "generations", "seed", "pool_factor",
        "fresh_fraction", "threshold", "decay", "filter_schedule", "model", "resolution", "train_steps",
        "batch_size", "num_inference_steps", "sample_batch_size", "mixed_precision", "conditional",
        "guidance_scale", "label_dropout", "class_selection", "data_root", "device", "checkpoint_every",
    )}
    if args.metrics:
        overrides["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if args.reference_recipe:
        overrides["recipe"] = "reference"
    if args.no_progress:
        overrides["progress"] = False
    cfg = make_config(args.preset, **overrides)
    result = run_self_consuming(cfg, Path(args.out), allow_config_change=args.allow_config_change)
    for row in result.metrics_table():
        row.pop("timings", None)
        print(json.dumps(row, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collapse_utils", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_cli(sub)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
