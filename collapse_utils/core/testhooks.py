"""Test hook: a run kills itself at a named point, so tests can check what survives a SIGKILL.

Off unless the environment variable ``COLLAPSE_KILL_AT`` is set (README "Reliability"); leave it unset.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "COLLAPSE_KILL_AT"


def kill_point(point: str) -> None:
    """Test hook: SIGKILL this process at ``point`` when the environment variable ``COLLAPSE_KILL_AT`` names it.

    Points are the paths of artifacts just renamed into place (``COLLAPSE_KILL_AT=gen_01/train.npy`` matches
    ``…/gen_01/train.npy``; directories such as ``gen_01/model`` too) and ``train_step:G:S``, after optimizer step S
    of generation G (from the loop's ``on_step``; a checkpoint due at S is written after it). Used by
    tests/test_reliability.py to kill real runs at chosen points; unset, it costs one dictionary lookup per write.
    """
    target = os.environ.get(KILL_ENV)
    if target and (point == target or point.endswith("/" + target)):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
