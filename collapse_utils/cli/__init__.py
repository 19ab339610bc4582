"""The command line's parsers, apart from the code the commands drive: one small module per command (run, demo,
figures, sweep, claims, bundle), each defining ``add_cli(subparsers)`` with the command's options, help texts and
defaults; :data:`COMMANDS` lists them in ``--help``'s order.

These modules import only torch-free modules of :mod:`collapse_utils.core` (vocab, presets, config, methods,
cli_common), so ``python -m collapse_utils --help``, ``--version`` and every command's ``--help`` load neither
torch nor diffusers and answer in a fraction of a second.

A command's handler lives in the library module it drives (``collapse_utils.paper.demo:_cmd_demo``, ...); its
parser names it by that dotted path, and :class:`collapse_utils.core.cli_common.CommandParser` imports it once,
when a command line has been parsed, just before the command is dispatched. That one import by name per command is
the package's single deliberate lazy import of its own code: everything else imports at module top level.
"""

from __future__ import annotations

from . import bundle, claims, demo, figures, run, sweep

COMMANDS = (run, demo, figures, sweep, claims, bundle)
