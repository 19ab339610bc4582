"""``python -m collapse_utils run``: the options of one self-consuming run, one per field of the run configuration.

Each option's flag, type, choices and help come from its :class:`~collapse_utils.core.config.RunConfig` field;
its help ends with the value every preset gives it when it is left out. The handler is
``collapse_utils.loop.run:_cmd_run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from ..core.cli_common import HelpFormatter, add_preset_option, preset_list
from ..core.config import config_fields
from ..core.presets import preset_overrides
from ..core.vocab import PRESETS

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


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``python -m collapse_utils run``."""
    p = sub.add_parser("run", help="run (or resume) one self-consuming loop", formatter_class=HelpFormatter,
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
    p.set_defaults(func="collapse_utils.loop.run:_cmd_run")
