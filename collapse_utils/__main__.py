"""Command line: ``python -m collapse_utils {run,demo,figures,…} …``.

Each command lives beside the code it drives: a module that defines ``add_cli(subparsers)`` registers its
sub-command (``run`` here; ``demo`` in demo.py; ``figures`` in batch.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from .core.config import RunConfig, make_config
from .core.cli_common import add_preset_option, headline, preset_list
from .core.presets import preset_overrides
from .core.vocab import PRESETS

# the sub-commands after `run`, in --help's order: (module, the function that adds the command's parser)
COMMANDS = (("collapse_utils.paper.demo", "add_cli"), ("collapse_utils.paper.batch", "add_cli"),
            ("collapse_utils.paper.sweep", "add_cli"), ("collapse_utils.paper.claims", "add_cli"),
            ("collapse_utils.paper.batch", "add_bundle_cli"))

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

RUN_DESCRIPTION = """\
Run (or resume) one self-consuming loop in the folder --out: generation 1 trains on real
data, each later one on images its paradigm builds from earlier generations. One JSON row of
metrics is printed per generation as it finishes (timings and the time left go to stderr).
Rerunning into the same --out skips finished generations.

--preset is required (a run's scale is seconds, minutes or days; there is no silent default).
Every option left out takes the preset's value, shown in [brackets] after its help.
Presets:
{presets}

example: python -m collapse_utils run --preset demo --n 256 --selection greedy --out runs/greedy
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (their line breaks kept); option help wrapped as usual."""


def _parse_tuple(kind: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from exc
    parse.__name__ = f"comma-separated {kind.__name__}s"
    return parse


def _option(f: dataclasses.Field) -> tuple[str, dict[str, Any]]:
    """The ``run`` option of one RunConfig field: its flag, type and help come from the field."""
    meta, kind = f.metadata, str(f.type)
    flag = meta.get("flag", "--" + f.name.replace("_", "-"))
    listing = f" {meta['listing']()}" if "listing" in meta else ""
    help_text = f"{meta['help']}{listing} {preset_defaults(f)}".replace("%", "%%")  # argparse formats help with %
    kw: dict[str, Any] = dict(dest=f.name, help=help_text)
    if kind == "bool":
        kw.update(action="store_true", default=None)
        return flag, kw
    if kind.startswith("tuple["):
        kw["type"] = _parse_tuple(float if "float" in kind else str)
    elif kind.startswith("dict"):
        kw["type"] = _parse_mapping
    else:
        kw["type"] = int if kind.startswith("int") else float if kind.startswith("float") else str
    if "choices" in meta:
        kw["choices"] = meta["choices"]
    kw["metavar"] = None if "choices" in meta else meta.get("metavar", f.name.upper())
    return flag, kw


def _parse_mapping(text: str) -> dict[str, Any]:
    """A JSON object given on the command line (``--selection-params '{"k": 3}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({exc})") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


_parse_mapping.__name__ = "JSON object"


def _shown(value: Any) -> str:
    """A default as a user would type it on the command line."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def preset_defaults(f: dataclasses.Field) -> str:
    """What a RunConfig field is when its option is left out, per preset: ``[smoke 4 · demo 1200 · paper 128256]``,
    or ``[every preset: 1000]`` when all agree (the preset's value, else the field's default)."""
    values = {p: _shown(preset_overrides(p).get(f.name, _field_default(f))) for p in PRESETS}
    if len(set(values.values())) == 1:
        return f"[every preset: {next(iter(values.values()))}]"
    return "[" + " · ".join(f"{p} {v}" for p, v in values.items()) + "]"


def config_fields() -> list[dataclasses.Field]:
    """The RunConfig fields that are ``run`` options (all but those marked ``skip``)."""
    return [f for f in dataclasses.fields(RunConfig) if not f.metadata.get("skip")]


def add_run_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) one self-consuming loop", formatter_class=_HelpFormatter,
                       description=RUN_DESCRIPTION.format(presets=preset_list()))
    add_preset_option(p, None, "the scale whose settings the options below override (see Presets above)")
    for f in config_fields():
        flag, kw = _option(f)
        p.add_argument(flag, **kw)
    p.add_argument("--reference-recipe", action="store_true", help="train and sample with the authors' recipe even on CUDA")
    p.add_argument("--allow-config-change", action="store_true", help="resume a run directory whose configuration differs: "
                   "only --generations may change once generations were computed (any key before that)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="the run directory (created, or resumed)")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the loop; each generation's metrics row goes to stdout (one JSON line) as soon as it finishes, its time
    and the time left to stderr, so stdout stays one JSON row per generation."""
    from .loop import rundir
    from .loop.run import GenerationClock, run_self_consuming
    from .loop.rundir import RunResult

    if args.preset is None:  # a run's scale is never chosen silently
        raise ValueError("run needs --preset, the scale of the run:\n" + preset_list(4)
                         + "\n  e.g. python -m collapse_utils run --preset demo --out runs/try")
    overrides = {f.name: getattr(args, f.name) for f in config_fields()}
    if args.reference_recipe:
        overrides["recipe"] = "reference"
    if args.no_progress:
        overrides["progress"] = False
    cfg = make_config(args.preset, **overrides)
    out = Path(args.out)
    clock = GenerationClock(cfg.generations, [g for g in range(1, cfg.generations + 1) if rundir.is_done(out, g)])

    def report(gen: Any) -> None:
        if not gen.computed:  # found finished (by another process this one waited for, say): not timed as computed
            clock.reused.add(gen.generation)
        row = RunResult(cfg, out, [gen]).metrics_table()[0]
        row.pop("timings", None)
        print(json.dumps(row, default=str), flush=True)
        print(clock.finished(gen.generation), file=sys.stderr, flush=True)

    run_self_consuming(cfg, out, allow_config_change=args.allow_config_change, on_generation=report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from importlib import metadata

    try:
        version = metadata.version("model-collapse-repro")
    except metadata.PackageNotFoundError:
        version = "unknown (the package is not installed: pip install -e .)"
    verbose_help = "log progress (INFO) and show the traceback of an error"
    parser = argparse.ArgumentParser(prog="python -m collapse_utils", description=DESCRIPTION.format(presets=preset_list()),
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"model-collapse-repro {version}")
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_cli(sub)
    for module, adder in COMMANDS:
        getattr(importlib.import_module(module), adder)(sub)
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "preset", None):
        print(headline(args.command, args.preset, args.preset_given), file=sys.stderr, flush=True)
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
