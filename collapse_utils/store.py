"""The run store: runs are keyed by their configuration, so identical configurations are trained once.

``ensure_runs([...], root)`` returns finished runs, training only what is missing, optionally in several
worker processes (on a CPU, two single-threaded processes beat one two-threaded process by 1.4–1.6×,
benchmarks/demo_findings.md). F2, F3, F4 and F14 share the same replace runs; F7–F10 the same selection runs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable

from .config import RunConfig
from .loop import RunResult, load_run, run_self_consuming

log = logging.getLogger(__name__)



def repo_root() -> Path:
    """The repository checkout holding this package (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_run_root() -> Path:
    """The run store every command and notebook shares by default: ``$COLLAPSE_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("COLLAPSE_RUNS")
    return Path(env) if env else repo_root() / "runs"


def run_name(cfg: RunConfig) -> str:
    """A readable directory name that still carries the configuration key."""
    preset = cfg.extra.get("preset", "custom")
    sel = cfg.selection if cfg.selection == "none" else f"{cfg.selection}-{cfg.feature_space}"
    cond = "-cfg" if cfg.conditional else ""
    return f"{preset}-{cfg.dataset.replace(':', '_').replace('/', '_')}-{cfg.paradigm}-{sel}{cond}-n{cfg.n}-s{cfg.seed}-{cfg.run_key()}"


def run_dir_for(cfg: RunConfig, root: str | os.PathLike | None = None) -> Path:
    return Path(root if root is not None else default_run_root()) / run_name(cfg)


def is_finished(cfg: RunConfig, root: str | os.PathLike | None = None) -> bool:
    d = run_dir_for(cfg, root)
    return (d / f"gen_{cfg.generations:02d}" / "DONE").exists()


def _worker(cfg_dict: dict, run_dir: str, threads: int | None) -> str:
    import torch

    if threads:
        torch.set_num_threads(threads)
    run_self_consuming(RunConfig.from_dict(cfg_dict), run_dir)
    return run_dir


def _unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for c in configs:
        seen.setdefault(c.run_key(), c)
    return list(seen.values())


def ensure_runs(
    configs: Iterable[RunConfig],
    root: str | os.PathLike | None = None,
    *,
    workers: int = 1,
    threads_per_worker: int | None = None,
) -> list[RunResult]:
    """Finished runs for ``configs`` (same order), running only those not already in the store.

    With ``workers > 1`` missing runs train in parallel processes, each with ``threads_per_worker`` torch
    threads (default: cores // workers). Longest runs are started first.
    """
    configs = list(configs)
    root = Path(root if root is not None else default_run_root())
    todo = [c for c in _unique(configs) if not is_finished(c, root)]
    todo.sort(key=lambda c: -(c.generations * c.train_steps * max(1, c.n // 1024)))
    if todo:
        log.info("run store %s: %d run(s) to compute, %d reused", root, len(todo), len(_unique(configs)) - len(todo))
    if workers <= 1 or len(todo) <= 1:
        for c in todo:
            run_self_consuming(c, run_dir_for(c, root))
    else:
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_worker, c.to_dict(), str(run_dir_for(c, root)), threads) for c in todo]
            for f in futures:
                f.result()
    return [load_run(run_dir_for(c, root)) for c in configs]
