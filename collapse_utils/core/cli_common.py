"""What every command of ``python -m collapse_utils`` shares: its ``--preset`` option and its first line.

Every command runs at one preset (smoke, demo or paper: seconds, minutes or days). Its ``--help`` states the
command's default preset, and its first line (on stderr, so a command's stdout stays its own) names the preset
and what that scale means, adding when the preset was not given but taken as the command's default. This module
imports nothing heavy, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from .presets import PRESET_SUMMARIES
from .vocab import PRESETS


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


def headline(command: str, preset: str, given: bool = True) -> str:
    """A command's first line: the command, its preset and what that preset's scale means."""
    line = f"collapse_utils {command} · preset {preset} ({PRESET_SUMMARIES[preset]})"
    return line if given else line + f" · the default preset of {command}; --preset {'|'.join(PRESETS)} chooses"
