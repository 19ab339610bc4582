"""Where things live: the repository checkout and the run store, and a run's folder in the store.

This module imports nothing heavy (no torch, no diffusers), so the command line can name paths in its help and
its first line before any model code is loaded; :mod:`collapse_utils.store` re-exports these helpers beside
the functions that train runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig


def repo_root() -> Path:
    """The repository checkout holding this package (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_run_root() -> Path:
    """The run store every command and notebook shares by default: ``$COLLAPSE_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("COLLAPSE_RUNS")
    return Path(env) if env else repo_root() / "runs"


def run_name(cfg: "RunConfig") -> str:
    """A readable directory name that still carries the configuration key."""
    sel = cfg.selection if cfg.selection == "none" else f"{cfg.selection}-{cfg.feature_space}"
    cond = "-cfg" if cfg.conditional else ""
    return f"{cfg.preset}-{cfg.dataset.replace(':', '_').replace('/', '_')}-{cfg.paradigm}-{sel}{cond}-n{cfg.n}-s{cfg.seed}-{cfg.run_key()}"


def run_dir_for(cfg: "RunConfig", root: str | os.PathLike | None = None) -> Path:
    """The folder of ``cfg``'s run in the run store ``root`` (default: :func:`default_run_root`)."""
    return Path(root if root is not None else default_run_root()) / run_name(cfg)
