"""The self-consuming loop (PAPER.md §4.4, F1): train → sample → measure → build the next training set → repeat.

:func:`run_self_consuming` runs (or resumes) one run in its directory: generation 1 trains on the real data,
each later one on the set its paradigm builds (collapse_utils.loop.paradigms). Every step of a generation reuses
what an earlier, interrupted attempt finished; the directory's layout and checks belong to collapse_utils.loop.rundir.
Under ``accelerate launch`` training and sampling are shared by the processes; selection, writing and
metrics run on the main process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..core import io as cio
from . import rundir, tracking
from ..core.cli_common import preset_list
from ..core.config import RunConfig, config_fields, derive_seed, make_config
from ..diffusion.ddpm import SampleSettings, balanced_labels
from ..core.devices import resolve_device as checked_device
from ..core.devices import fixed_cpu_threads
from ..diffusion.family import get_family
from .paradigms import Pool, build_training_set
from ..core.methods import check_selection
from .preflight import check_model_choice, paper_scale_on_cpu, preflight
from .rundir import GenerationResult, RunResult
from .run_metrics import measure_generation
from ..diffusion.sample import assemble_parts
from ..core.testhooks import KILL_ENV, kill_point
from ..diffusion.train import remove_checkpoint, train_model

log = logging.getLogger(__name__)


def run_device(cfg: RunConfig) -> torch.device:
    """The run's device: ``cfg.device`` (checked), else the one accelerate assigns this process."""
    if cfg.device:
        return checked_device(cfg.device)
    from accelerate import PartialState

    return PartialState().device


def _check_finite(model: torch.nn.Module, g: int) -> None:
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise FloatingPointError(
            f"training generation {g} diverged: non-finite weights in {bad[:3]}{'…' if len(bad) > 3 else ''}; "
            "nothing was saved. Lower lr, or check the training set."
        )


def _parts_meta(cfg: RunConfig, g: int, device: torch.device) -> dict[str, Any]:
    """What the sample part files depend on: parts from another batch size or sampler are not mixed in."""
    return dict(generation=g, num=cfg.samples_per_generation, batch_size=cfg.sample_batch_size,
                seed=derive_seed(cfg.seed, g, "sample"), num_inference_steps=cfg.num_inference_steps,
                guidance_scale=cfg.guidance_scale,
                sampler=get_family(cfg.model_family).resolve_recipe(cfg.recipe, torch.device(device)),
                device_type=torch.device(device).type)


def run_generation(cfg: RunConfig, g: int, run_dir: Path, real: Pool, samples_of: Callable[[int], Pool],
                   device: torch.device, state: Any) -> GenerationResult:
    """Train, sample and measure generation ``g``; every step reuses what a previous attempt finished."""
    gen = rundir.gen_dir(run_dir, g)
    gen.mkdir(parents=True, exist_ok=True)
    label = progress_label(run_dir, g, cfg.generations)
    timings: dict[str, float] = {}
    if state.is_main_process:
        rundir.clean_interrupted(gen)
    state.wait_for_everyone()

    # 1. training set (selection runs on the main process only)
    t0 = time.perf_counter()
    if state.is_main_process:
        try:
            train = rundir.load_training_set(gen)
        except (cio.CorruptArtifactError, FileNotFoundError):
            train = build_training_set(cfg, g, real, samples_of)
            rundir.save_training_set(gen, train)
    state.wait_for_everyone()
    if not state.is_main_process:
        train = rundir.load_training_set(gen)
    timings["build_training_set"] = time.perf_counter() - t0

    # 2. model
    t0 = time.perf_counter()
    family = get_family(cfg.model_family)
    scheduler = family.scheduler(cfg.num_train_timesteps, cfg.beta_schedule)
    model = rundir.load_model(rundir.model_path(gen), family=family.name)
    train_info: dict[str, Any] = {}
    if model is None:
        on_step = None
        if os.environ.get(KILL_ENV, "").startswith("train_step:"):  # test hook, off by default
            on_step = lambda step, _loss: kill_point(f"train_step:{g}:{step}")  # noqa: E731
        result = train_model(train.images, train.labels, cfg, seed=derive_seed(cfg.seed, g, "train"), device=device,
                             ckpt_dir=rundir.ckpt_path(gen), on_step=on_step, desc=f"{label} train")
        model = result.model
        _check_finite(model, g)
        if state.is_main_process:
            # The log first: the model directory counts only with a whole log beside it.
            rundir.write_train_log(gen, result.losses, result.mixed_precision, result.recipe, result.steps)
            rundir.save_model(model, scheduler, rundir.model_path(gen), cfg, g)  # records every model file's hash
        state.wait_for_everyone()
        if state.is_main_process:
            remove_checkpoint(rundir.ckpt_path(gen))
    timings["train"] = time.perf_counter() - t0
    log_data = rundir.read_train_log(gen)
    if log_data is not None:
        losses = log_data["losses"] or [float("nan")]
        k = max(1, len(losses) // 20)
        train_info = {"loss_first": float(np.mean(losses[:k])), "loss_last": float(np.mean(losses[-k:])),
                      "mixed_precision": log_data["mixed_precision"], "recipe": log_data["recipe"]}

    # 3. samples (sharded over processes; batches already on disk are kept)
    t0 = time.perf_counter()
    num = cfg.samples_per_generation
    sample_labels = balanced_labels(num, cfg.num_classes) if cfg.conditional else None
    try:
        samples = rundir.load_samples(gen, g)
        if len(samples) != num:
            raise cio.CorruptArtifactError("wrong number of samples")
    except (cio.CorruptArtifactError, FileNotFoundError):
        parts = rundir.parts_path(gen)
        if state.is_main_process:
            rundir.prepare_parts_dir(parts, _parts_meta(cfg, g, device))
        state.wait_for_everyone()
        images = family.sample(model, scheduler, num, seed=derive_seed(cfg.seed, g, "sample"),
                               settings=SampleSettings.from_config(cfg, device), labels=sample_labels,
                               parts_dir=parts, rank=state.process_index, world_size=state.num_processes,
                               desc=f"{label} sample")
        state.wait_for_everyone()
        if state.is_main_process:
            if images is None:
                images = assemble_parts(parts, num, cfg.sample_batch_size)
            rundir.save_samples(gen, images, sample_labels)
            shutil.rmtree(parts, ignore_errors=True)
        state.wait_for_everyone()
        samples = rundir.load_samples(gen, g)
    if state.is_main_process:  # a picture of the samples (documentation; after a kill, made on resume)
        rundir.ensure_samples_grid(gen, samples, cfg.num_classes if cfg.conditional else None)
    timings["sample"] = time.perf_counter() - t0
    if state.is_main_process:  # left behind when a kill came between saving the next artifact and cleaning up
        remove_checkpoint(rundir.ckpt_path(gen))
        shutil.rmtree(rundir.parts_path(gen), ignore_errors=True)

    # 4. metrics, then the DONE marker
    metrics: dict[str, Any] = {}
    if state.is_main_process:
        t0 = time.perf_counter()
        metrics = measure_generation(cfg, train, samples, real, device)
        timings["metrics"] = time.perf_counter() - t0
        metrics.update(train_info)
        metrics["timings"] = timings
        rundir.write_metrics(gen, metrics)
        # The model card carries these metrics: written now, before DONE, so every finished generation has it.
        rundir.write_model_card(run_dir, cfg, g, metrics)
        rundir.mark_done(gen, cfg)
    state.wait_for_everyone()
    if not state.is_main_process:
        metrics = rundir.read_metrics(gen)
    return GenerationResult(g, gen, metrics, computed=True)


def progress_label(run_dir: Path, g: int, generations: int) -> str:
    """What a generation's progress bars are labelled with: the run's folder and the generation, ``a gen 2/5``."""
    return f"{Path(run_dir).name} gen {g}/{generations}"


def format_duration(seconds: float) -> str:
    """``under 1 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``, ``3 d 04 h``."""
    s = max(0, int(round(seconds)))
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


class GenerationClock:
    """How long each generation of a run took and, from those measured times, about how long the rest will take.

    ``reused``: generations finished before this call (their time is not measured; they take no time now).
    """

    def __init__(self, generations: int, reused: Iterable[int] = (), clock: Callable[[], float] = time.perf_counter):
        self.generations, self.reused, self.clock = generations, set(reused), clock
        self.start = self.last = clock()
        self.durations: list[float] = []

    def finished(self, g: int) -> str:
        """The line for generation ``g`` just finished: ``generation 2/5 done in 1 min 03 s; about 3 min 09 s left``."""
        now = self.clock()
        took, self.last = now - self.last, now
        head = f"generation {g}/{self.generations}"
        if g in self.reused:
            return f"{head} finished earlier (reused)"
        self.durations.append(took)
        left = sum(1 for k in range(g + 1, self.generations + 1) if k not in self.reused)
        if not left:
            computed = len(self.durations)
            return (f"{head} done in {format_duration(took)}; run finished ({format_duration(now - self.start)} for the "
                    f"{computed} generation{'s' if computed > 1 else ''} computed now)")
        eta = float(np.mean(self.durations)) * left
        return f"{head} done in {format_duration(took)}; about {format_duration(eta)} left ({left} to go)"


def _on_main(state: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the main process; if it fails, every process raises (no rank is left waiting)."""
    err: BaseException | None = None
    if state.is_main_process:
        try:
            fn()
        except BaseException as exc:  # re-raised below, after the other ranks were told
            err = exc
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        msg = broadcast_object_list([None if err is None else f"{type(err).__name__}: {err}"])
        if err is None and msg[0] is not None:
            raise RuntimeError(f"the main process failed: {msg[0]}")
    if err is not None:
        raise err


def _finished_run(config: RunConfig, run_dir: Path, allow_config_change: bool) -> RunResult | None:
    """The run, if ``run_dir`` already holds every generation of ``config``, whole (checked, read-only); else None."""
    try:
        rundir.read_config(run_dir)
    except (cio.CorruptArtifactError, FileNotFoundError, ValueError, TypeError):
        return None  # no record, or a damaged one: the full start checks (and may rewrite) it
    rundir.check_config(run_dir, config, allow_config_change)
    try:
        rundir.verify_real(config, run_dir)
    except (cio.CorruptArtifactError, FileNotFoundError):
        return None
    gens = []
    for g in range(1, config.generations + 1):
        done, _why = rundir.verify_generation(run_dir, g, config.metrics, config)
        if done is None:
            return None
        gens.append(done)
    return RunResult(config, run_dir, gens)


# torch threads of a run on a CPU: fixed by the run, not by who launched it (`run`, a `figures` worker, a
# resume), since the thread count changes the bytes a CPU computes; recorded in the manifest's device line.
def run_self_consuming(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    allow_config_change: bool = False,
    on_generation: Callable[[GenerationResult], None] | None = None,
    wait: bool = True,
) -> RunResult:
    """Run (or resume) the self-consuming loop of ``config`` in ``run_dir``; returns every generation's results.

    Finished generations (``DONE`` marker, artifacts whole) are skipped; an interrupted one resumes from
    its last training checkpoint and its finished sample batches. On a CPU the run computes with
    :data:`~collapse_utils.core.devices.CPU_THREADS` torch threads whoever launched it, so the same run key gives the same bytes.

    One process writes a run directory at a time (:class:`~collapse_utils.loop.rundir.RunLock`): another one that
    wants the same run waits for it and then finds it finished, or with ``wait=False`` raises
    :class:`~collapse_utils.loop.rundir.RunBusyError` naming the holder.
    """
    from accelerate import PartialState

    config.validate()
    check_selection(config)  # before the folder, its lock or any training: a method and a space that do not fit
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise ValueError(f"{run_dir} is a file, not a run folder (--out): name a folder")
    tracking.resolve_tracker(config.tracker)  # a chosen tracker that is not installed stops the run here
    # cpu=True lets torchrun/accelerate start several CPU processes (gloo); accelerate ignores the flag otherwise.
    state = PartialState(cpu=config.device == "cpu" or (config.device is None and not torch.cuda.is_available()))
    run_dir = Path(run_dir)
    device = run_device(config)
    check_model_choice(config, device)  # a model or recipe the family lacks: refused before anything is written
    too_big = paper_scale_on_cpu(config, device)
    if too_big and state.is_main_process:
        warnings.warn(too_big, RuntimeWarning, stacklevel=2)
    finished = _finished_run(config, run_dir, allow_config_change)
    lock = rundir.RunLock(run_dir)
    if finished is None and state.is_main_process:
        lock.acquire(wait)
        finished = _finished_run(config, run_dir, allow_config_change)  # another writer may have finished it
    if state.num_processes > 1:  # every rank follows the main process's decision
        from accelerate.utils import broadcast_object_list

        if broadcast_object_list([finished is not None])[0]:
            finished = finished or _finished_run(config, run_dir, allow_config_change)
        else:
            finished = None
    try:
        if finished is not None:  # nothing to compute: report it without writing (read-only media work too)
            if state.is_main_process and not (run_dir / "manifest.json").exists():
                try:  # provenance lost: recorded again (this start's entry), where the medium is writable
                    with rundir.RunLock(run_dir):
                        rundir.write_manifest(run_dir, config, device)
                except OSError as exc:
                    log.warning("%s has no manifest.json and it cannot be written (%s)", run_dir, exc)
            for gen in finished.generations:
                if on_generation is not None and state.is_main_process:
                    on_generation(gen)
            return finished
        with fixed_cpu_threads(device):
            return _run(config, run_dir, state, device, allow_config_change, on_generation)
    finally:
        lock.release()


def _run(config: RunConfig, run_dir: Path, state: Any, device: torch.device, allow_config_change: bool,
         on_generation: Callable[[GenerationResult], None] | None) -> RunResult:
    real: Pool | None = None

    def start() -> None:
        # Every check before anything is recorded: a refused start leaves the directory as it was.
        nonlocal real
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            rundir.check_config(run_dir, config, allow_config_change)
            real = rundir.load_real(config, run_dir, check=lambda images: preflight(config, images, run_dir, device))
        except BaseException:
            if created and not any(run_dir.iterdir()):
                run_dir.rmdir()  # the folder this call made, still empty
            raise
        rundir.write_config(run_dir, config)
        rundir.write_manifest(run_dir, config, device)

    _on_main(state, start)
    if not state.is_main_process:
        real = rundir.load_real(config, run_dir)

    cache: dict[int, Pool] = {}

    def samples_of(g: int) -> Pool:
        if g not in cache:
            cache[g] = rundir.load_samples(rundir.gen_dir(run_dir, g), g)
        return cache[g]

    result = RunResult(config, run_dir)
    with tracking.RunTracker(config, run_dir, state.is_main_process) as tracker:
        for g in range(1, config.generations + 1):
            done, why = rundir.verify_generation(run_dir, g, config.metrics, config)
            if done is None:
                if why != "not finished" and state.is_main_process:
                    log.warning("generation %d in %s is damaged (%s); redoing it", g, run_dir, why)
                    rundir.unmark_done(run_dir, g)
                log.info("generation %d/%d of %s", g, config.generations, run_dir)
                done = run_generation(config, g, run_dir, real, samples_of, device, state)
                tracker.log_generation(g)  # from the files just written; only generations computed now
            result.generations.append(done)
            if on_generation is not None and state.is_main_process:
                on_generation(done)
    return result


def _cmd_run(args: argparse.Namespace) -> int:
    """``python -m collapse_utils run``: run the loop; each generation's metrics row goes to stdout (one JSON line)
    as soon as it finishes, its time and the time left to stderr, so stdout stays one JSON row per generation."""
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
