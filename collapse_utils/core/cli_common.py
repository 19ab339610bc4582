"""What every command of ``python -m collapse_utils`` shares: its ``--preset`` option and its first line.

Every command runs at one preset (smoke, demo or paper: seconds, minutes or days). Its ``--help`` states the
command's default preset, and its first line (on stderr, so a command's stdout stays its own) names the preset
and what that scale means, adding when the preset was not given but taken as the command's default.

The commands' parsers (:mod:`collapse_utils.cli`) name each command's handler by its path (``module:function``);
:class:`CommandParser` imports it once the command line is parsed. This module imports nothing heavy, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import textwrap
from typing import Any, Callable, Sequence

from .presets import PRESET_SUMMARIES, preset_overrides
from .vocab import MODEL_FAMILY_LABELS, PRESETS


def preset_list(indent: int = 2) -> str:
    """One wrapped line per preset with what it is for (the presets' own summaries)."""
    return "\n".join(textwrap.fill(PRESET_SUMMARIES[name], 100, initial_indent=" " * indent + f"{name:<7}",
                                    subsequent_indent=" " * (indent + 7)) for name in PRESETS)


class PresetAction(argparse.Action):
    """``--preset``: stores the preset and notes that it was given (the first line then says so)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.preset_given = True


def add_preset_option(p: argparse.ArgumentParser, default: str | None, what: str,
                      choices: tuple[str, ...] = PRESETS) -> None:
    """The ``--preset`` option of a command, its default stated in its help (``None``: the option is needed)."""
    tail = f"[default: {default}]" if default else "[no default: give one]"
    p.add_argument("--preset", choices=choices, default=default, action=PresetAction, help=f"{what} {tail}")
    p.set_defaults(preset_given=False)


def headline(command: str, preset: str, given: bool = True, model_family: str | None = None) -> str:
    """A command's first line: the command, its preset and what that preset's scale means; with a model family
    other than the preset's UNet (``run --model-family dit``), that the model trained is of that family instead."""
    summary = PRESET_SUMMARIES[preset]
    if model_family and model_family != preset_overrides(preset).get("model_family", "unet"):
        name = MODEL_FAMILY_LABELS.get(model_family, model_family)
        summary += (f"; the model: {name} (--model-family {model_family}) in place of the preset's UNet, with the same "
                    "data and steps")
    line = f"collapse_utils {command} · preset {preset} ({summary})"
    return line if given else line + f" · the default preset of {command}; --preset {'|'.join(PRESETS)} chooses"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (their line breaks kept); option help wrapped as usual."""


def load_handler(path: str) -> Callable[[argparse.Namespace], int]:
    """The function ``module:name`` names, its module imported now (the command's library, torch and all)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


class CommandParser(argparse.ArgumentParser):
    """A parser whose commands name their handlers by path: once a command line is parsed, the chosen command's
    handler is imported and stored as ``func`` (``--help`` exits before that, having imported nothing heavy).
    ``load_handlers = False`` leaves ``func`` the path, for a caller that imports it later itself."""

    load_handlers = True

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        if self.load_handlers and isinstance(getattr(parsed, "func", None), str):
            parsed.func = load_handler(parsed.func)
        return parsed, rest


def parse_param(text: str) -> tuple[str, Any]:
    """``--param KEY=VALUE`` of the figure commands: the value as a python literal (else the text as it is)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value
    return key.strip(), _tuples_to_lists(parsed)


def _tuples_to_lists(value: Any) -> Any:
    """``sizes=64,256`` parses as a tuple, which papermill would pass on as the string "(64, 256)"."""
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    return value
