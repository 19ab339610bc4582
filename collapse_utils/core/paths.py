"""Where things live: the repository checkout and the run store, and a run's folder in the store.

This module imports nothing heavy (no torch, no diffusers), so the command line can name paths in its help and
its first line before any model code is loaded; :mod:`collapse_utils.loop.store` re-exports these helpers beside
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
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_run_root() -> Path:
    """The run store every command and notebook shares by default: ``$COLLAPSE_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("COLLAPSE_RUNS")
    return Path(env) if env else repo_root() / "runs"


def run_name(cfg: "RunConfig", key: str | None = None) -> str:
    """A readable directory name that still carries the configuration key (``key``: one of its former keys)."""
    sel = cfg.selection if cfg.selection == "none" else f"{cfg.selection}-{cfg.feature_space}"
    sel = sel.replace(":", "_")  # a plug-in method's module:function
    cond = "-cfg" if cfg.conditional else ""
    return (f"{cfg.preset}-{cfg.dataset.replace(':', '_').replace('/', '_')}-{cfg.paradigm}-{sel}{cond}-n{cfg.n}"
            f"-s{cfg.seed}-{key or cfg.run_key()}")


def run_dir_for(cfg: "RunConfig", root: str | os.PathLike | None = None) -> Path:
    """The store's folder of ``cfg``: the one named by its run key, else one named by a former key of the same
    run (:meth:`RunConfig.run_key_aliases`) that exists, made before written-out implied values were keyed as
    ``None`` (e.g. F13's ``decay=0.95`` arm); no folder is renamed or moved."""
    root = Path(root if root is not None else default_run_root())
    here = root / run_name(cfg)
    if not here.exists():
        for key in cfg.run_key_aliases():
            if (root / run_name(cfg, key)).exists():
                return root / run_name(cfg, key)
    return here


JOBS_DIR = "_jobs"


def jobs_dir(root: Path) -> Path:
    """The store's folder of sweep job logs and error records (``<root>/_jobs``)."""
    return Path(root) / JOBS_DIR


def error_path(root: Path, cfg: "RunConfig") -> Path:
    """Where a sweep task records the error that stopped ``cfg``'s run (read by ``sweep --status``)."""
    return jobs_dir(root) / f"{run_name(cfg)}.error"
