"""Command line: ``python -m collapse_utils {run,demo,figures,…} …``.

The top-level parser, its description and ``main`` live here; each command's parser is a small module of
:mod:`collapse_utils.cli` (torch-free), and each command's handler lives in the library module it drives, imported
once the command line is parsed (see :mod:`collapse_utils.cli`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from .cli import COMMANDS
from .cli.run import _shown, preset_defaults  # noqa: F401  (the run options' helpers, importable from here)
from .core.cli_common import CommandParser, HelpFormatter, headline, load_handler, preset_list
from .core.config import config_fields  # noqa: F401  (the fields that are run options, importable from here)

DESCRIPTION = """\
A reproduction of "A Closer Look at Model Collapse" (NeurIPS 2025): diffusion models trained
again and again on their own samples, how their samples lose diversity and start to copy the
training set, and how selecting the next training set (Greedy Selection, the Threshold Decay
Filter) or keeping real data slows this down.

Commands (each has its own --help; each prints its preset and scale as its first line, on stderr):
  demo     the paper's findings, with numbers and figures, on the bundled MNIST in about
           10 minutes on a 2-core CPU
             python -m collapse_utils demo
  run      one self-consuming run: train, sample, measure, build the next training set, repeat;
           rerunning into the same --out resumes it
             python -m collapse_utils run --preset demo --selection greedy --out runs/greedy
  figures  every missing run of the figure notebooks, then the notebooks themselves, into figures/
             python -m collapse_utils figures --preset demo --only F2,F4
  sweep    every run of the figures on a cluster: plan (GPU-hours, or CPU time for smoke and demo),
           submit (Slurm, local, debug), watch
             python -m collapse_utils sweep --preset paper --plan
  claims   the paper's claims checked against the finished runs (mean ± sd over seeds, a verdict
           by a rule fixed in advance), written beside the run store as CLAIMS-<preset>.md (the
           committed table only with --out docs/CLAIMS.md); trains nothing
             python -m collapse_utils claims --preset demo --seeds 0,1,2
  bundle   a results bundle: a figure set's runs without models, from which figures and claims are
           redrawn in seconds (figures --from-results DIR, claims --from-results DIR)
             python -m collapse_utils figures --from-results results/demo

Presets (the scale of every run; run --help lists each one's settings). The default --preset is
demo for demo, figures, claims and bundle, and paper for sweep; run has none (give --preset).
{presets}

Documentation: README.md (start here), docs/PAPER.md (the paper's methods and numbers).
"""

def build_parser() -> argparse.ArgumentParser:
    try:
        version = metadata.version("model-collapse-repro")
    except metadata.PackageNotFoundError:
        version = "unknown (the package is not installed: pip install -e .)"
    verbose_help = "log progress (INFO) and show the traceback of an error"
    parser = CommandParser(prog="python -m collapse_utils", description=DESCRIPTION.format(presets=preset_list()),
                           formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"model-collapse-repro {version}")
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)
    for command in COMMANDS:
        command.add_cli(sub)
    # -v also after the sub-command; SUPPRESS leaves a -v given before it in place when it is absent here.
    for command in {id(p): p for p in sub.choices.values()}.values():
        if "--verbose" not in command._option_string_actions:
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    return parser


PACKAGE_DIR = Path(__file__).resolve().parent


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None, *, default: Any = warnings.showwarning) -> None:
    """The package's own warnings (a paper-size run on a CPU, …) as one clean line, ``notice: …``, on stderr;
    other libraries' warnings as Python shows them, with their source line."""
    try:
        ours = Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        ours = False
    if not ours:
        default(message, category, filename, lineno, file, line)
        return
    print(f"notice: {' '.join(str(message).split())}", file=sys.stderr if file is None else file, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.load_handlers = False  # the first line comes before the command's library is imported (seconds, for torch)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "preset", None):
        print(headline(args.command, args.preset, args.preset_given, getattr(args, "model_family", None)),
              file=sys.stderr, flush=True)
    if isinstance(args.func, str):
        args.func = load_handler(args.func)
    try:
        with warnings.catch_warnings():  # restores the display in place before when the command returns
            warnings.showwarning = functools.partial(_show_warning, default=warnings.showwarning)
            return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
