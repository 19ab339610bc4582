"""The run store: runs are keyed by their configuration, so identical configurations are trained once.

``ensure_runs([...], root)`` returns finished runs, training only what is missing, optionally in several
worker processes (on a CPU, two single-threaded processes beat one two-threaded process by 1.4–1.6×,
benchmarks/demo_findings.md). F2, F3, F4 and F14 share the same replace runs; F7–F10 the same selection runs.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any, Callable, Iterable

from ..core.config import RunConfig, EXECUTION_FIELDS
from ..core.devices import die_with_parent
from ..core.methods import check_selection
from . import rundir
from .run import run_self_consuming
from ..core.paths import default_run_root, error_path, jobs_dir, repo_root, run_dir_for, run_name  # noqa: F401  (re-exported)
from .rundir import GenerationResult, RunResult, load_run
from ..core import io as cio
from ..core.io import CorruptArtifactError

log = logging.getLogger(__name__)


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run's lock (it is being written), or None; creates nothing when no lock file exists."""
    import fcntl

    lock = rundir.RunLock(run_dir)
    try:
        fh = open(lock.path, "rb")  # read-only: works on read-only media, writes nothing
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.holder()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None


def verified(cfg: RunConfig, run_dir: Path) -> tuple[int, str | None]:
    """``(whole generations, why the next is not)`` of ``cfg``'s run in ``run_dir``, checked like
    :func:`~collapse_utils.loop.rundir.load_run` (config, real images, every artifact against its hash); reads only.
    ``why`` is None when every generation is whole, ``"not finished"`` when the next one was never marked done."""
    try:
        rundir.read_config(run_dir)
    except (cio.CorruptArtifactError, FileNotFoundError, ValueError, TypeError) as exc:
        if not any(rundir.is_done(run_dir, g) for g in range(1, cfg.generations + 1)):
            return 0, "not finished"
        return 0, str(exc) if (run_dir / "config.json").exists() else f"{run_dir / 'config.json'} is missing"
    try:
        if not rundir.is_legacy_real(run_dir):
            rundir.verify_real(cfg, run_dir)
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        if any(rundir.is_done(run_dir, g) for g in range(1, cfg.generations + 1)):
            return 0, f"real images damaged: {exc}"
        return 0, "not finished"
    for g in range(1, cfg.generations + 1):
        done, why = rundir.verify_generation(run_dir, g, cfg.metrics, cfg)
        if done is None:
            return g - 1, why
    return cfg.generations, None


def run_state(cfg: RunConfig, root: Path) -> tuple[int, str, str | None]:
    """``(generations done, state, error)`` of ``cfg``'s run in the store ``root``; reads only. Done means
    verified (every artifact against its recorded hash): a damaged run is reported as such, to be redone."""
    d = run_dir_for(cfg, root)
    done, why = verified(as_stored(cfg, d), d)
    if why is None:
        return cfg.generations, "done", None
    damaged = None if why == "not finished" else why
    holder = lock_holder(d)
    progress = f"{done} of {cfg.generations} generations done"
    if damaged is not None and holder is None:
        return done, f"damaged ({progress}; {damaged}); it will be redone", None
    if holder is not None:
        return done, f"running ({holder}; {progress})", None
    err = error_path(root, cfg)
    if err.exists():
        first = (err.read_text(errors="replace").strip().splitlines() or ["unknown error"])[0]
        return done, f"failed ({progress})", first
    if done or d.exists():
        return done, progress, None
    return 0, "never started", None


def as_stored(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """``cfg`` as ``run_dir`` was started with it: one run may be spelt in several ways (``decay=None`` or the
    decay it implies, one run key), and resuming compares the configuration as given (rundir.check_config), so a
    folder holding another spelling of ``cfg``'s run is continued with that spelling (and ``cfg``'s execution
    fields). Any other folder, or a configuration that cannot be read, gives ``cfg``."""
    try:
        stored = rundir.read_config(run_dir) if (Path(run_dir) / "config.json").exists() else None
    except (CorruptArtifactError, ValueError):
        return cfg
    if stored is None or stored.run_key() != cfg.run_key() or stored.key_dict() == cfg.key_dict():
        return cfg
    return stored.replace(**{name: getattr(cfg, name) for name in EXECUTION_FIELDS})


def as_requested(run: RunResult, cfg: RunConfig) -> RunResult:
    """``run`` showing ``cfg``, the configuration asked for, where the store holds it under another spelling of
    the same run (F13's arm at the default decay reads as ``decay=0.95``, not as the ``decay=None`` of F8's run)."""
    if run.config.key_dict() == cfg.key_dict():
        return run
    return RunResult(cfg, run.run_dir, run.generations)


def is_finished(cfg: RunConfig, root: str | os.PathLike | None = None) -> bool:
    """The store holds this configuration's run with every generation done and whole (verified against the
    recorded hashes, as :func:`run_state` checks): a damaged run is not finished, and is redone."""
    d = run_dir_for(cfg, root)
    return rundir.is_finished(d, cfg.generations) and verified(as_stored(cfg, d), d)[1] is None


# A progress callback: ``on_generation(config, generation)`` after each generation computed by this call.
OnGeneration = Callable[[RunConfig, GenerationResult], None]


def _new_generations(cfg: RunConfig, run_dir: Path, report: Callable[[GenerationResult], None]
                     ) -> Callable[[GenerationResult], None]:
    """The loop's per-generation callback, passing on only generations not already done when the run started."""
    done_before = {g for g in range(1, cfg.generations + 1) if rundir.is_done(run_dir, g)}
    return lambda gen: None if gen.generation in done_before else report(gen)


def _worker(cfg_dict: dict, run_dir: str, threads: int | None, events: Any = None) -> str:
    import torch

    if threads:
        torch.set_num_threads(threads)
    cfg = RunConfig.from_dict(cfg_dict)
    report = None if events is None else _new_generations(cfg, Path(run_dir),
                                                          lambda gen: events.put((cfg.run_key(), gen)))
    run_self_consuming(cfg, run_dir, on_generation=report)
    return run_dir


def _unique(configs: Iterable[RunConfig]) -> list[RunConfig]:
    seen: dict[str, RunConfig] = {}
    for c in configs:
        seen.setdefault(c.run_key(), c)
    return list(seen.values())


def _relay(events: Any, by_key: dict[str, RunConfig], on_generation: OnGeneration, stop: threading.Event) -> None:
    """Pass the workers' generation events to ``on_generation`` in this process until ``stop`` and drained."""
    while True:
        try:
            key, gen = events.get(timeout=0.2)
        except queue.Empty:
            if stop.is_set():
                return
            continue
        on_generation(by_key[key], gen)


def ensure_runs(
    configs: Iterable[RunConfig],
    root: str | os.PathLike | None = None,
    *,
    workers: int = 1,
    threads_per_worker: int | None = None,
    on_generation: OnGeneration | None = None,
) -> list[RunResult]:
    """Finished runs for ``configs`` (same order), running only those not already in the store.

    With ``workers > 1`` missing runs train in parallel processes, each with ``threads_per_worker`` torch
    threads (default: cores // workers). Longest runs are started first. ``on_generation(config, generation)``
    is called in this process after every generation computed here (reused ones are not reported).
    """
    configs = list(configs)
    for c in configs:  # every run's method and feature space fit, before any run trains
        check_selection(c)
    root = Path(root if root is not None else default_run_root())
    todo = [c for c in _unique(configs) if not is_finished(c, root)]
    todo.sort(key=lambda c: -(c.generations * c.train_steps * max(1, c.n // 1024)))
    if todo:
        log.info("run store %s: %d run(s) to compute, %d reused", root, len(todo), len(_unique(configs)) - len(todo))
    if workers <= 1 or len(todo) <= 1:
        for c in todo:
            d = run_dir_for(c, root)
            report = None if on_generation is None else _new_generations(c, d, lambda gen, c=c: on_generation(c, gen))
            run_self_consuming(as_stored(c, d), d, on_generation=report)
    else:
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")
        with contextlib.ExitStack() as stack:
            events, relay, stop = None, None, threading.Event()
            if on_generation is not None:
                manager = SyncManager(ctx=ctx)
                manager.start(die_with_parent, (os.getpid(),))
                stack.callback(manager.shutdown)
                events = manager.Queue()
                relay = threading.Thread(target=_relay, args=(events, {c.run_key(): c for c in todo}, on_generation,
                                                              stop), daemon=True)
                relay.start()
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                                         initargs=(os.getpid(),)) as pool:
                    futures = [pool.submit(_worker, as_stored(c, run_dir_for(c, root)).to_dict(),
                                           str(run_dir_for(c, root)), threads, events) for c in todo]
                    for f in futures:
                        f.result()
            finally:
                stop.set()
                if relay is not None:
                    relay.join()
    return [as_requested(load_run(run_dir_for(c, root)), c) for c in configs]
