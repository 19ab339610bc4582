"""The paper on a cluster: plan, submit and watch every run the figures need (``python -m collapse_utils sweep``).

* ``sweep --preset paper --plan`` lists every run the chosen figures need (the configurations the notebooks ask
  for, deduplicated by run key), its state in the run store, and an estimate of its GPU-hours on one H200 from the
  measured throughput (:data:`THROUGHPUT`), with the total and the longest chain (generations are sequential, so
  the longest run bounds the wall time however many GPUs there are). The CPU presets (smoke, demo) are planned in
  CPU time instead (:data:`CPU_COST`, or the recorded time of a run's finished generations).
* ``sweep --preset paper --executor slurm --partition gpu ...`` submits the runs that are not finished as one
  submitit job array (one task per run, :class:`RunTask`); ``local`` runs them as processes on this machine (one
  run per visible GPU at a time), ``debug`` in this process. Job logs go to ``<run store>/_jobs/``; a task that
  fails records its error in ``_jobs/<run>.error``, which the plan shows.
* ``sweep ... --status`` prints the same table for the store while the jobs run; for a Slurm sweep each run's task
  (recorded in ``_jobs/<run>.job``) is looked up with ``squeue``, so pending, running and ended tasks show without
  an accounting database. Submitting again skips runs whose task is still queued.

A task only calls :func:`collapse_utils.loop.run.run_self_consuming`: it resumes a run from its last checkpoint, and
waits when another process holds the run's lock. When Slurm preempts a task or its time runs out, submitit calls
:meth:`RunTask.checkpoint`, which requeues the same call; the run then resumes (at most one checkpoint interval,
``checkpoint_every`` steps, is redone).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from ..core import io as cio
from ..core.config import RunConfig
from ..core.paths import default_run_root, error_path, jobs_dir, run_dir_for, run_name
from ..core.vocab import EXECUTORS
from ..loop.run import run_self_consuming
from ..loop.store import as_stored, run_state
from .batch import check_parameters, discover_notebooks, notebook_configs



# ---------------------------------------------------------------------------------------------- throughput
@dataclass(frozen=True)
class Throughput:
    train_img_s: float  # training images per second
    sample_img_s: float  # sampled images per second at 1000 DDPM steps


# Measured on one NVIDIA H200 (benchmarks/gpu_throughput.md): UNet48 on 32×32×3 images, training at batch 128,
# sampling at batch 1024. "fast" is the default CUDA path (bf16, CUDA graphs, compiled sampler), "reference" the
# authors' recipe (fp16 + GradScaler, eager; recipe="reference"). The one place these numbers live.
DEVICE = "one NVIDIA H200"
THROUGHPUT = {
    "fast": Throughput(train_img_s=5972.0, sample_img_s=71.91),
    "reference": Throughput(train_img_s=1229.0, sample_img_s=21.36),
}
MEASURED_MODEL = ("unet48", 32)  # model and resolution the numbers were measured with


def recipe_path(cfg: RunConfig) -> str:
    return "reference" if cfg.recipe == "reference" else "fast"


def generation_seconds(cfg: RunConfig) -> float:
    """Estimated GPU-seconds of one generation: training plus sampling (no metrics, no compile time)."""
    rate = THROUGHPUT[recipe_path(cfg)]
    train = cfg.train_steps * cfg.batch_size / rate.train_img_s
    sample = cfg.samples_per_generation * (cfg.num_inference_steps / 1000) / rate.sample_img_s
    return train + sample


def is_measured_shape(cfg: RunConfig) -> bool:
    return (cfg.model, cfg.resolution) == MEASURED_MODEL


@dataclass(frozen=True)
class CpuCost:
    """What a run of a CPU preset costs on one CPU thread (a run computes single-threaded on a CPU)."""

    per_run_s: float  # start-up: the process, its imports, the data
    per_generation_s: float
    source: str


# The CPU presets run on a laptop, not an H200: their plan is in CPU time. The one place these numbers live.
CPU_COST = {
    "demo": CpuCost(0.0, 31.0, "≈31 CPU-s per generation, benchmarks/demo_findings.md: 943 CPU-s for the demo's 30 "
                               "generations, start-up included"),
    "smoke": CpuCost(6.0, 0.5, "≈6 s start-up + ≈0.5 s per generation, a smoke run timed on a 2-core CPU"),
}


def on_cpu(cfg: RunConfig) -> bool:
    """Whether the plan gives this run in CPU time (the CPU presets) rather than GPU-hours (paper)."""
    return cfg.preset in CPU_COST


def recorded_generation_seconds(run_dir: Path, done: int) -> float | None:
    """The mean time of a run's finished generations as the loop recorded it (``timings`` in each
    generation's metrics.json: training set, training, sampling, metrics), or None when it has none."""
    times = []
    for g in range(1, done + 1):
        try:
            timings = json.loads((run_dir / f"gen_{g:02d}" / "metrics.json").read_text()).get("timings") or {}
        except (OSError, ValueError):
            continue
        if timings:
            times.append(sum(float(v) for v in timings.values()))
    return sum(times) / len(times) if times else None


# ---------------------------------------------------------------------------------------------- the plan
@dataclass
class PlannedRun:
    config: RunConfig
    run_dir: Path
    figures: list[str] = field(default_factory=list)
    done: int = 0
    state: str = "never started"
    error: str | None = None
    recorded_s: float | None = None  # mean recorded time of its finished generations (CPU presets)
    job: str | None = None  # the Slurm task recorded for it (sweep --executor slurm), when --status asked squeue

    @property
    def finished(self) -> bool:
        return self.done >= self.config.generations

    @property
    def cpu(self) -> bool:
        return on_cpu(self.config)

    @property
    def generation_hours(self) -> float:
        """One generation: GPU-hours on one H200 (paper), CPU-hours on one thread (CPU presets: the recorded time of
        its finished generations where it has some, else :data:`CPU_COST`)."""
        if not self.cpu:
            return generation_seconds(self.config) / 3600
        cost = CPU_COST[self.config.preset]
        return (self.recorded_s if self.recorded_s is not None else cost.per_generation_s) / 3600

    def _hours(self, generations: int) -> float:
        start = CPU_COST[self.config.preset].per_run_s / 3600 if self.cpu and generations > 0 else 0.0
        return start + generations * self.generation_hours

    @property
    def hours(self) -> float:
        return self._hours(self.config.generations)

    @property
    def hours_left(self) -> float:
        return self._hours(max(0, self.config.generations - self.done))


def plan_runs(preset: str, only: Iterable[str] | None = None, params: dict[str, Any] | None = None,
              root: str | os.PathLike | None = None, notebook_dir: Path | None = None,
              skipped: dict[str, str] | None = None) -> list[PlannedRun]:
    """Every run the chosen figures' notebooks need, deduplicated by run key, with its state in the store."""
    params = dict(params or {})
    root = Path(root if root is not None else default_run_root())
    notebooks = discover_notebooks(only, notebook_dir)
    check_parameters(params, notebooks)
    by_key: dict[str, PlannedRun] = {}
    for fig, configs in notebook_configs(notebooks, {**params, "preset": preset}, skipped).items():
        for c in configs:
            run = by_key.setdefault(c.run_key(), PlannedRun(c, run_dir_for(c, root)))
            if fig not in run.figures:
                run.figures.append(fig)
    for run in by_key.values():
        run.done, run.state, run.error = run_state(run.config, root)
        if run.cpu and run.done:
            run.recorded_s = recorded_generation_seconds(run.run_dir, run.done)
    return list(by_key.values())


def _hours(h: float) -> str:
    if 0 < h < 0.005:
        return "<0.01"
    return f"{h:.2f}" if h < 10 else f"{h:.1f}"


def _minutes(h: float) -> str:
    m = h * 60
    if 0 < m < 0.05:
        return "<0.1"
    return f"{m:.1f}" if m < 10 else f"{m:.0f}"


def format_plan(runs: list[PlannedRun], root: Path) -> str:
    """The table of runs, their states and time estimates (GPU-hours at paper scale, CPU-minutes for the CPU
    presets), the total and the longest chain."""
    cpu = bool(runs) and all(r.cpu for r in runs)
    shown = _minutes if cpu else _hours
    rows = [("run", "figures", "gens", "state", "CPU-min" if cpu else "GPU-h", "left")]
    for r in runs:
        mark = "" if cpu or is_measured_shape(r.config) else "*"
        state = r.state + (f": {r.error}" if r.error else "")
        rows.append((r.run_dir.name, ",".join(r.figures), str(r.config.generations), state,
                     shown(r.hours) + mark, shown(r.hours_left)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    total, left = sum(r.hours for r in runs), sum(r.hours_left for r in runs)
    counts: dict[str, int] = {}
    for r in runs:
        kind = r.state.split(" (")[0] if not r.state[0].isdigit() else "partial"
        counts[kind] = counts.get(kind, 0) + 1
    lines.append("")
    lines.append(f"run store: {root}")
    lines.append(f"{len(runs)} run(s): " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if cpu:
        preset = runs[0].config.preset
        recorded = sum(r.recorded_s is not None for r in runs)
        lines.append(f"CPU time at {preset} scale, one thread per run ({CPU_COST[preset].source}"
                     + (f"; {recorded} run(s) from the recorded time of their finished generations" if recorded else "")
                     + f"): {_minutes(total)} CPU-min in all, {_minutes(left)} left; two worker processes on an "
                     f"idle 2-core machine take about that ÷ 1.5–2 in wall time ({_minutes(left / 2)}–"
                     f"{_minutes(left / 1.5)} min)")
    else:
        lines.append(f"GPU-hours on {DEVICE} (fast path, benchmarks/gpu_throughput.md; training + sampling, no "
                     f"metrics or compile time): {_hours(total)} in all, {_hours(left)} left")
    if runs:
        longest = max(runs, key=lambda r: r.hours_left)
        unit, per = ("min", _minutes(longest.generation_hours) + " CPU-min") if cpu else \
            ("h", _hours(longest.generation_hours) + " h")
        lines.append(f"longest chain (generations run one after another): {shown(longest.hours_left)} {unit} left, "
                     f"{longest.run_dir.name} ({longest.config.generations} generations × {per})")
    if not cpu and any(not is_measured_shape(r.config) for r in runs):
        lines.append("* not the measured UNet48 at 32×32: the same rates are used, so the estimate says little "
                     "(smaller models run faster)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the task
@contextlib.contextmanager
def _slot(path: str | None):
    """Hold the flock of a local executor's GPU (or CPU) slot, so one run at a time uses it."""
    if path is None:
        yield
        return

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes (or the process dies)
        yield


try:
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover - submitit is a dependency; plan/status still work without it
    _Checkpointable = object  # type: ignore[assignment,misc]


def _this_job() -> str:
    """The id of the job running this process as squeue shows it (``<array>_<index>`` for an array task)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID") or "-"


class RunTask(_Checkpointable):  # type: ignore[misc,valid-type]
    """One array task: run (or resume) one self-consuming run in its run directory.

    A failure is recorded in ``<store>/_jobs/<run>.error`` (first line: the error; then the traceback, host and
    job) and raised again, so submitit reports it too; success removes the record. ``checkpoint()`` (called by
    submitit on preemption or timeout) requeues the same call: the run resumes from its last checkpoint.
    """

    def __call__(self, cfg_dict: dict, run_dir: str, slot: str | None = None) -> str:
        err = jobs_dir(Path(run_dir).parent) / f"{Path(run_dir).name}.error"
        try:
            cfg = as_stored(RunConfig.from_dict(cfg_dict), Path(run_dir))
            with _slot(slot):
                run_self_consuming(cfg, run_dir, wait=True)
        except Exception as exc:
            err.parent.mkdir(parents=True, exist_ok=True)
            job = _this_job()
            err.write_text(f"{type(exc).__name__}: {exc}".replace("\n", " ") + "\n\n"
                           f"host {socket.gethostname()}, pid {os.getpid()}, job {job}, "
                           f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n{traceback.format_exc()}")
            raise
        err.unlink(missing_ok=True)
        return run_dir

    def checkpoint(self, cfg_dict: dict, run_dir: str, slot: str | None = None) -> Any:
        """The same call, requeued (the run resumes from its checkpoint)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, cfg_dict, run_dir, slot)


# ---------------------------------------------------------------------------------------------- submission
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # submitit's local default (2 min) would interrupt every run
MAX_REQUEUES = 100  # timeouts a task may be requeued after (submitit's default, 3, ends a long run early)


def slurm_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The ``update_parameters`` of the Slurm options given (AutoExecutor names; see README)."""
    p: dict[str, Any] = {}
    for opt, key in (("partition", "slurm_partition"), ("account", "slurm_account"), ("qos", "slurm_qos"),
                     ("slurm_array_parallelism", "slurm_array_parallelism"), ("time", "timeout_min"),
                     ("gpus_per_node", "gpus_per_node"), ("cpus_per_task", "cpus_per_task"), ("mem_gb", "mem_gb")):
        value = getattr(args, opt, None)
        if value is not None:
            p[key] = value
    return p


def visible_gpus() -> list[int]:
    """The GPUs a local sweep spreads its runs over: those CUDA_VISIBLE_DEVICES names (as indices), else every GPU
    torch sees; none on a CPU machine."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and all(x.strip().isdigit() for x in env.split(",") if x.strip()):
        return [int(x) for x in env.split(",") if x.strip()]
    try:
        return list(range(torch.cuda.device_count()))
    except Exception:  # pragma: no cover
        return []


class RunChain(_Checkpointable):  # type: ignore[misc,valid-type]
    """A local slot's runs, one after another in one process (a waiting run costs no process and no memory).

    Each run goes through :class:`RunTask` (its error recorded, the chain going on); the result lists each run's
    directory, or ``"ERROR <message>"``. ``checkpoint()`` requeues the whole chain: finished runs are skipped.
    ``watch``: the process id of a sweep that waits for the chain (``--wait``); when that process is gone (killed,
    SIGKILL included), the chain stops too (its runs resume later from their checkpoints).
    """

    def __init__(self, watch: int | None = None) -> None:
        self.watch = watch

    def __call__(self, cfg_dicts: list[dict], run_dirs: list[str], slot: str | None = None) -> list[str]:
        if self.watch is not None:
            stop_with(self.watch)
        out = []
        for cfg_dict, run_dir in zip(cfg_dicts, run_dirs):
            try:
                out.append(RunTask()(cfg_dict, run_dir, slot))
            except Exception as exc:
                out.append(f"ERROR {type(exc).__name__}: {exc}")
        return out

    def checkpoint(self, cfg_dicts: list[dict], run_dirs: list[str], slot: str | None = None) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, cfg_dicts, run_dirs, slot)


def stop_with(pid: int, every_s: float = 0.5) -> None:
    """Exit this process as soon as process ``pid`` is gone (a killed ``sweep --wait`` leaves no job running)."""
    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(every_s)

    threading.Thread(target=watch, daemon=True, name="stop-with-sweep").start()


@dataclass
class ChainedRun:
    """One run of a :class:`RunChain` job, with the job interface the CLI uses (``job_id``, ``done``, ``result``)."""

    job: Any
    index: int

    @property
    def job_id(self) -> str:
        return f"{self.job.job_id}[{self.index}]"

    def done(self) -> bool:
        return self.job.done()

    def cancel(self) -> None:
        self.job.cancel()

    def result(self) -> str:
        value = self.job.result()[self.index]
        if value.startswith("ERROR "):
            raise RuntimeError(value[len("ERROR "):])
        return value


# ---------------------------------------------------------------------------------------------- Slurm
JOB_NAME = "collapse-sweep"  # sbatch --job-name of every sweep array (squeue --name finds them)
JOB_RECORD_SUFFIX = ".job"  # _jobs/<run>.job: the Slurm task id of the run's latest submission
# Queue states in which a task will still run (or runs): a run with such a task is not submitted again.
QUEUED = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
          "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "SPECIAL_EXIT")


class SubmissionError(RuntimeError):
    """sbatch refused the submission (its message, and what to change)."""


def job_record(root: Path, run_dir: Path | str) -> Path:
    """Where a Slurm sweep records the task id that runs ``run_dir`` (read by ``--status`` and by the next
    submission, which leaves a run whose task is still queued alone)."""
    return jobs_dir(root) / f"{Path(run_dir).name}{JOB_RECORD_SUFFIX}"


def recorded_job(root: Path, run_dir: Path | str) -> str | None:
    try:
        return job_record(root, run_dir).read_text().split()[0]
    except (OSError, IndexError):
        return None


def _scheduler(args: list[str], timeout: float = 60) -> str | None:
    """The output of a Slurm client command, or None where it is missing or fails."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def slurm_queue() -> dict[str, tuple[str, str]] | None:
    """This user's sweep tasks in Slurm's queue: task id (``<array>_<index>``) → (state, reason or node), one call
    to ``squeue`` (which needs no accounting database, unlike ``sacct``); a task that has ended is not listed.
    None where squeue is missing or fails (no cluster)."""
    out = _scheduler(["squeue", "--noheader", "--array", "--name", JOB_NAME, "--user", getpass.getuser(),
                      "--format", "%i|%T|%R"])
    if out is None:
        return None
    queue = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            queue[parts[0]] = (parts[1], parts[2])
    return queue


def slurm_final_state(job_id: str) -> str | None:
    """The final state of an ended task from accounting (``sacct``), or None without accounting."""
    out = _scheduler(["sacct", "--noheader", "--parsable2", "--allocations", "--format", "JobID,State",
                      "--jobs", job_id])
    for line in (out or "").splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id and state:
            return state.split()[0]
    return None


def attach_scheduler(runs: list[PlannedRun], root: Path) -> None:
    """Add Slurm's view to the store's: a run whose recorded task is queued reads ``pending (job …: reason)``, a
    running one names its job, and an unfinished run whose task has ended without an error record says so (with
    sacct's final state where accounting answers). Nothing changes where no task was recorded or squeue is missing."""
    recorded = {id(r): recorded_job(root, r.run_dir) for r in runs if not r.finished}
    if not any(recorded.values()):
        return
    queue = slurm_queue()
    if queue is None:
        return
    for r in runs:
        job = recorded.get(id(r))
        if not job:
            continue
        r.job = job
        progress = f"{r.done} of {r.config.generations} generations done"
        state, where = queue.get(job, (None, ""))
        if r.state.startswith("failed") and _recorded_by(root, r, job):
            r.state = r.state.replace("failed (", f"failed (job {job}; ", 1)  # it may still be leaving the queue
        elif state is not None and state not in ("RUNNING", "COMPLETING"):
            r.state = f"{state.lower()} (job {job}: {where}; {progress})"
        elif state is not None:
            r.state = (r.state.replace("running (", f"running (job {job} on {where}, ", 1)
                       if r.state.startswith("running (") else f"running (job {job} on {where}, starting; {progress})")
        elif not r.state.startswith(("running", "failed")):
            final = slurm_final_state(job)
            r.state = f"{progress} (job {job} ended{': ' + final if final else ''}; not finished)"


def _recorded_by(root: Path, run: PlannedRun, job: str) -> bool:
    """Whether the run's error record was written by task ``job`` (not by an earlier submission)."""
    try:
        return f", job {job}, " in error_path(root, run.config).read_text(errors="replace")
    except OSError:
        return False


def slurm_defaults(runs: list[PlannedRun]) -> dict[str, Any]:
    """A day per task; one GPU per task unless every run is of a CPU preset (smoke, demo), which asks for none (a
    cluster without GPUs refuses a GPU request)."""
    p: dict[str, Any] = {"timeout_min": 24 * 60}
    if not all(r.cpu for r in runs):
        p["gpus_per_node"] = 1
    return p


def slurm_max_array_size() -> int:
    """The cluster's MaxArraySize (``scontrol show config``): an array holds at most this many tasks (indices
    0 … MaxArraySize - 1); Slurm's default, 1001, where it cannot be read."""
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", _scheduler(["scontrol", "show", "config"]) or "", re.M)
    return int(found.group(1)) if found else 1001


def package_parent() -> Path:
    """The folder holding this ``collapse_utils`` package: a Slurm task imports the package from here, so it runs
    the code that submitted it even where the job's environment names another copy (or none)."""
    return Path(__file__).resolve().parents[2]


def _submit_slurm(task: "RunTask", runs: list[PlannedRun], root: Path, parameters: dict[str, Any]) -> list[Any]:
    """One job array per MaxArraySize runs; each run's task id recorded in ``_jobs/<run>.job``."""
    import submitit  # loaded only when a sweep submits: plan and status work without it
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    jdir = jobs_dir(root)
    parameters = {**slurm_defaults(runs), **parameters}
    setup = list(parameters.pop("slurm_setup", []))
    setup.insert(0, f"export PYTHONPATH={shlex.quote(str(package_parent()))}${{PYTHONPATH:+:$PYTHONPATH}}")
    chunk = max(1, slurm_max_array_size())
    before = set(jdir.glob("*.pkl")) | set(jdir.glob(".submission_file_*"))
    jobs: list[Any] = []
    try:
        for start in range(0, len(runs), chunk):
            part = runs[start:start + chunk]
            ex = submitit.AutoExecutor(folder=jdir / "%j", cluster="slurm", slurm_max_num_timeout=MAX_REQUEUES)
            ex.update_parameters(name=JOB_NAME, slurm_setup=setup, **parameters)
            new = ex.map_array(task, [r.config.to_dict() for r in part], [str(r.run_dir) for r in part],
                               [None] * len(part))
            for r, j in zip(part, new):
                job_record(root, r.run_dir).write_text(f"{j.job_id}\n")
            jobs += new
    except (FailedJobError, FailedSubmissionError) as exc:
        msg = str(exc).strip().splitlines()
        hint = ""
        if any("gres" in line.lower() for line in msg):
            hint = (" (the cluster has no GPUs as generic resources where the job would run: choose a GPU "
                    "--partition, or --gpus-per-node 0)")
        raise SubmissionError(f"sbatch refused the sweep after {len(jobs)} of {len(runs)} run(s): "
                              f"{msg[-1] if msg else exc}{hint}") from exc
    finally:
        # submitit's staging files: the pickles of a refused array, and a link per submitted script (the script
        # itself is in _jobs/<job id>/).
        for leftover in (set(jdir.glob("*.pkl")) | set(jdir.glob(".submission_file_*"))) - before:
            leftover.unlink(missing_ok=True)
    return jobs


def wait_slurm(jobs: list[Any], poll_s: float = 1.0, max_poll_s: float = 30.0) -> dict[str, str]:
    """Wait until every task has ended: it wrote its result, or it left Slurm's queue without one (cancelled,
    killed, out of memory, node failure). Polls ``squeue`` (no accounting needed; submitit's own wait asks
    ``sacct`` and, without accounting, never learns that a task ended without a result), more slowly as time
    passes. Returns the task ids that ended without a result, with what is known of why."""
    start = time.time()
    waiting = {j.job_id: j for j in jobs}
    gone: dict[str, int] = {}
    lost: dict[str, str] = {}
    while waiting:
        queue = slurm_queue()
        for jid, j in list(waiting.items()):
            if j.paths.result_pickle.exists():
                del waiting[jid]
            elif queue is not None and jid not in queue:
                gone[jid] = gone.get(jid, 0) + 1
                if gone[jid] >= 2:  # seen twice out of the queue with no result: it will not write one
                    if j.paths.result_pickle.exists():
                        del waiting[jid]
                        continue
                    final = slurm_final_state(jid)
                    lost[jid] = (f"job {jid} ended without a result ({final or 'left the queue; no accounting'}); "
                                 f"its log: {j.paths.stderr}")
                    del waiting[jid]
            else:
                gone.pop(jid, None)
        if waiting:
            time.sleep(min(max_poll_s, poll_s + (time.time() - start) / 20))
    return lost


def submit(runs: list[PlannedRun], root: Path, executor: str, parameters: dict[str, Any] | None = None,
           local_slots: int | None = None, gpus: list[int] | None = None, watch: int | None = None) -> list[Any]:
    """Submit the runs as submitit jobs (one task per run); returns the jobs, in the order of ``runs``.

    ``slurm``: one job array. ``local``: on a machine with GPUs, one executor per visible GPU
    (``visible_gpus=(k,)``, so each task sees only its GPU), on a CPU machine ``local_slots`` slots (default: the
    CPU count); each slot is one process running its share of the runs in turn (:class:`RunChain`; a slot lock in
    ``_jobs/`` keeps two sweeps from sharing it). ``debug``: in this process, each run when its result is asked for.
    """
    import submitit  # loaded only when a sweep submits: plan and status work without it

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    parameters = dict(parameters or {})
    folder = jobs_dir(root) / "%j"
    jobs_dir(root).mkdir(parents=True, exist_ok=True)
    given = list(runs)
    runs = sorted(given, key=lambda r: -r.hours_left)  # longest first
    cfgs = [r.config.to_dict() for r in runs]
    dirs = [str(r.run_dir) for r in runs]
    task = RunTask()
    if executor == "slurm":
        jobs = _submit_slurm(task, runs, root, parameters)
    elif executor == "debug":
        ex = submitit.AutoExecutor(folder=folder, cluster=executor)
        ex.update_parameters(name=JOB_NAME, **parameters)
        jobs = ex.map_array(task, cfgs, dirs, [None] * len(runs))
    else:
        gpus = visible_gpus() if gpus is None else gpus
        slots = [f"gpu{k}" for k in gpus] or [f"cpu{k}" for k in range(local_slots or os.cpu_count() or 1)]
        timeout = parameters.pop("timeout_min", LOCAL_TIMEOUT_MIN)
        jobs_by_index: dict[int, Any] = {}
        for s, name in enumerate(slots):
            idx = list(range(s, len(runs), len(slots)))
            if not idx:
                continue
            # LocalExecutor itself: AutoExecutor does not pass visible_gpus on. Without GPUs asked for, submitit
            # sets CUDA_VISIBLE_DEVICES="" (a CPU machine loses nothing).
            ex = submitit.LocalExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
            gpu_params = dict(visible_gpus=(gpus[s],), gpus_per_node=1) if gpus else {}
            ex.update_parameters(timeout_min=timeout, **gpu_params)
            slot = str(jobs_dir(root) / f".slot-{name}.lock")
            chain = ex.submit(RunChain(watch), [cfgs[i] for i in idx], [dirs[i] for i in idx], slot)
            for k, i in enumerate(idx):
                jobs_by_index[i] = ChainedRun(chain, k)
        jobs = [jobs_by_index[i] for i in range(len(runs))]
    if executor in ("slurm", "local"):
        record_submitted(root, executor, [getattr(j, "job", j).job_id for j in jobs])
    order = {id(r): i for i, r in enumerate(runs)}
    return [jobs[order[id(r)]] for r in given]


# ---------------------------------------------------------------------------------------------- cancel
SUBMITTED = "submitted.json"  # in <run store>/_jobs/: the jobs sweeps submitted, for --cancel


def record_submitted(root: Path, executor: str, job_ids: Iterable[str]) -> None:
    """Add the jobs just submitted to ``_jobs/submitted.json`` (the executor, the host, the job ids)."""
    path = jobs_dir(root) / SUBMITTED
    try:
        entries = json.loads(path.read_text()) if path.exists() else []
    except ValueError:
        entries = []
    entries.append(dict(executor=executor, host=socket.gethostname(), jobs=sorted(set(map(str, job_ids))),
                        submitted=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
    cio.atomic_write_json(path, entries)


def cancel_submitted(root: Path) -> list[str]:
    """Cancel every job recorded in ``_jobs/submitted.json`` that is still running: ``scancel`` for Slurm jobs,
    SIGINT (submitit's own cancel) for local ones on this host; their runs resume later from their checkpoints.
    Returns a line per job; the record is removed."""
    path = jobs_dir(root) / SUBMITTED
    if not path.exists():
        return []
    lines = []
    for entry in json.loads(path.read_text()):
        for job in entry["jobs"]:
            if entry["executor"] == "slurm":
                rc = subprocess.call(["scancel", job])
                lines.append(f"slurm job {job}: {'cancelled' if rc == 0 else f'scancel exited {rc}'}")
            elif entry["host"] != socket.gethostname():
                lines.append(f"local job {job}: on {entry['host']}; cancel it there")
            else:
                try:
                    os.kill(int(job), signal.SIGINT)
                except ProcessLookupError:
                    lines.append(f"local job {job}: already ended")
                    continue
                if _alive(int(job), grace=5.0):  # started from a background shell, it ignores SIGINT
                    os.kill(int(job), signal.SIGTERM)
                    lines.append(f"local job {job}: cancelled (SIGTERM: it ignored SIGINT)")
                else:
                    lines.append(f"local job {job}: cancelled")
    path.unlink()
    return lines


def _alive(pid: int, grace: float = 0.0) -> bool:
    """Whether process ``pid`` still runs after up to ``grace`` seconds (a zombie, ended but not yet reaped by its
    parent, counts as ended)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except ProcessLookupError:
            return False
        except OSError:  # no /proc (not Linux): the signal test alone
            state = "R"
        if state == "Z":
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------- CLI
def failure_line(exc: BaseException, root: Path, run_dir: Path) -> str:
    """One line for a failed task: the error the task recorded (``_jobs/<run>.error``), else the first line of
    the exception (submitit appends the job's stderr tail, a progress bar fragment, after it)."""
    err = jobs_dir(root) / f"{run_dir.name}.error"
    if err.exists():
        return (err.read_text(errors="replace").strip().splitlines() or ["unknown error"])[0]
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first} (killed, or ended without a result: see {jobs_dir(root)})"


def _status_command(args: argparse.Namespace, root: Path) -> str:
    parts = ["python -m collapse_utils sweep", f"--preset {args.preset}"]
    if args.only:
        parts.append(f"--only {args.only}")
    parts += [f"--param '{k}={v!r}'" for k, v in args.param]
    parts += [f"--run-root {root}", "--status"]
    return " ".join(parts)


def check_sweep_args(args: argparse.Namespace) -> None:
    """Refuse, before anything is planned or submitted, options that cannot mean what they say, naming each."""
    for name in ("time", "gpus_per_node", "cpus_per_task", "mem_gb", "slurm_array_parallelism", "local_slots"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if "preset" in dict(args.param):
        raise ValueError("--param preset=...: the preset is chosen with --preset")
    if args.run_root and Path(args.run_root).exists() and not Path(args.run_root).is_dir():
        raise ValueError(f"--run-root {args.run_root}: a file, not a run store folder")


@contextlib.contextmanager
def submission_lock(root: Path):
    """One submission to a store at a time (``_jobs/.submit.lock``, an flock the kernel releases when the process
    ends): a second sweep started at once sees the first one's job records and leaves its queued runs alone."""
    jobs_dir(root).mkdir(parents=True, exist_ok=True)
    with open(jobs_dir(root) / ".submit.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _cmd_sweep(args: argparse.Namespace) -> int:
    check_sweep_args(args)
    root = Path(args.run_root or default_run_root()).resolve()
    if args.cancel:
        lines = cancel_submitted(root)
        print("\n".join(lines) if lines else f"no submitted jobs recorded in {jobs_dir(root)}")
        return 0
    skipped: dict[str, str] = {}
    only = args.only.split(",") if args.only else None
    if args.plan or args.status:
        runs = plan_runs(args.preset, only, dict(args.param), root, args.notebook_dir, skipped)
        for fig, why in skipped.items():
            print(f"{fig}: skipped ({why})", flush=True)
        if args.status:
            attach_scheduler(runs, root)
        print(format_plan(runs, root))
        if args.plan:
            todo = [r for r in runs if not r.finished]
            print(f"to submit: {len(todo)} run(s) (--executor slurm|local|debug)")
        return 0
    with submission_lock(root) if args.executor == "slurm" else contextlib.nullcontext():
        runs = plan_runs(args.preset, only, dict(args.param), root, args.notebook_dir, skipped)
        for fig, why in skipped.items():
            print(f"{fig}: skipped ({why})", flush=True)
        todo = [r for r in runs if not r.finished]
        if args.executor == "slurm" and todo:
            queue = slurm_queue() or {}
            queued = {id(r): recorded_job(root, r.run_dir) for r in todo}
            queued = {k: j for k, j in queued.items() if j in queue and queue[j][0] in QUEUED}
            if queued:
                print(f"{len(queued)} run(s) already queued, not submitted again: "
                      + ", ".join(f"job {j}" for j in queued.values()))
            todo = [r for r in todo if id(r) not in queued]
        if not todo:
            print(f"every one of the {len(runs)} run(s) is finished or queued in {root}"
                  if any(not r.finished for r in runs) else f"every one of the {len(runs)} run(s) is finished in {root}")
            return 0
        # local jobs of a sweep that waits for them stop with it (killed or interrupted); without --wait they go on
        watch = os.getpid() if args.executor == "local" and args.wait else None
        try:
            jobs = submit(todo, root, args.executor, slurm_parameters(args), local_slots=args.local_slots,
                          watch=watch)
        except SubmissionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"submitted {len(jobs)} run(s) with the {args.executor} executor; logs in {jobs_dir(root)}")
    for r, j in zip(todo, jobs):
        print(f"  job {j.job_id}: {r.run_dir.name}")
    print(f"watch: {_status_command(args, root)}")
    if args.executor == "debug" or args.wait:
        lost = wait_slurm(jobs) if args.executor == "slurm" else {}
        failed = 0
        for r, j in zip(todo, jobs):
            try:
                if j.job_id in lost:
                    raise RuntimeError(lost[j.job_id])
                j.result()
            except Exception as exc:
                failed += 1
                print(f"  FAILED {r.run_dir.name}: {failure_line(exc, root, r.run_dir)}", file=sys.stderr)
        print(f"{len(jobs) - failed}/{len(jobs)} run(s) finished")
        return 1 if failed else 0
    return 0
