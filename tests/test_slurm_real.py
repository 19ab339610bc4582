"""`sweep --executor slurm` through a real Slurm scheduler (sbatch, squeue, scontrol, scancel), at smoke scale.

Needs a running cluster whose default partition takes CPU jobs: ``sudo bash ci/slurm-up.sh`` starts a one-node one
in a container or VM (CI does so when it runs as root with apt). Without one every test here is skipped, with the
reason. Each test polls the scheduler and the store (no fixed sleeps) and submits tasks of a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from collapse_utils.__main__ import main  # noqa: E402
from collapse_utils.loop import rundir, store  # noqa: E402
from collapse_utils.loop.run import run_self_consuming  # noqa: E402
from collapse_utils.paper import figures, sweep  # noqa: E402
from test_sweep import F2, F2_PARAMS, _artifacts, _configs  # noqa: E402,F401  (the same F2 at smoke scale)

ROOT = Path(__file__).resolve().parents[1]


def _no_cluster() -> str | None:
    """Why no Slurm cluster can run these tests here, or None."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "no Slurm client (sbatch) on PATH; start a one-node cluster with `sudo bash ci/slurm-up.sh`"
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed ({exc})"
    if out.returncode != 0:
        return f"no running slurmctld answers ({out.stderr.strip() or out.stdout.strip()}); see ci/slurm-up.sh"
    if not any(s.strip().rstrip("*~#") in ("idle", "mixed", "allocated") for s in out.stdout.split()):
        return f"no Slurm node takes jobs (sinfo: {' '.join(out.stdout.split()) or 'no nodes'})"
    return None


REASON = _no_cluster()
pytestmark = [pytest.mark.slurm, pytest.mark.skipif(REASON is not None, reason=f"Slurm: {REASON}")]

# F2 at smoke scale: two runs (n = 16, 32), 2 generations each, seconds apiece.
TIMEOUT_S = 240  # for any one wait below; a task here takes seconds


@pytest.fixture(autouse=True)
def _cancel_leftover_jobs(tmp_path):
    """A failed test leaves no task of its own in the queue (e.g. one requeued after its run finished)."""
    yield
    jobs = {p.read_text().strip().split("_")[0] for p in tmp_path.glob("**/_jobs/*.job")}
    if jobs:
        subprocess.run(["scancel", *sorted(jobs)], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def serial_store(tmp_path_factory) -> Path:
    """The same runs made in this process by run_self_consuming, one after another."""
    root = tmp_path_factory.mktemp("serial")
    for c in _configs():
        run_self_consuming(c, store.run_dir_for(c, root))
    return root


def _same_as_serial(root: Path, serial: Path) -> None:
    for c in _configs():
        ours, ref = store.run_dir_for(c, root), store.run_dir_for(c, serial)
        assert store.is_finished(c, root), f"{ours.name} is not finished"
        a, b = _artifacts(ours, c.generations), _artifacts(ref, c.generations)
        assert a.keys() == b.keys() and len(a) == 3 * c.generations
        for name in a:
            assert a[name] == b[name], f"{ours.name}/{name} differs from the serial run"


def _until(what: str, cond, timeout: float = TIMEOUT_S, every: float = 0.2):
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; queue: {sweep.slurm_queue()}")
        time.sleep(every)


def _state(job_id: str) -> str | None:
    return (sweep.slurm_queue() or {}).get(job_id, (None, ""))[0]


def _sessions(run_dir: Path) -> int:
    return len(json.loads((run_dir / "manifest.json").read_text())["sessions"])


def _scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, text=True, timeout=30)


def _clean_jobs_dir(root: Path) -> None:
    """submitit's staging files are gone and no folder is named by an unexpanded pattern (%j, %A)."""
    jdir = root / "_jobs"
    assert not [p.name for p in jdir.iterdir() if "%" in p.name or p.suffix == ".pkl" or p.is_symlink()
                or p.name.startswith(".submission_file_")]


def _two_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A run store in ``tmp_path`` and the folders of the sweep's two runs in it."""
    root = tmp_path / "runs"
    first, second = (store.run_dir_for(c, root) for c in _configs())
    return root, first, second


def _submit_one_at_a_time(root: Path) -> None:
    """The F2 smoke sweep submitted through sbatch as one array running one task at a time."""
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm", "--slurm-array-parallelism", "1"]) == 0


def test_sweep_runs_through_sbatch_with_status_and_serial_bytes(tmp_path, serial_store, capsys):
    """The CLI submits one array; --status shows the scheduler's pending and running beside the store's progress;
    --wait returns when every task has; the artifacts are the serial run's bytes."""
    root, first, second = _two_runs(tmp_path)
    # The first run's lock held here: its task starts and waits for it (running), the second task waits for a
    # slot of the array (one at a time): both states are then stable while --status looks.
    lock = rundir.RunLock(first).acquire(wait=False)
    try:
        _submit_one_at_a_time(root)
        out = capsys.readouterr().out
        assert "submitted 2 run(s) with the slurm executor" in out
        jobs = {p.name[:-len(".job")]: p.read_text().strip() for p in (root / "_jobs").glob("*.job")}
        assert set(jobs) == {first.name, second.name}
        array = jobs[first.name].split("_")[0]
        assert sorted(jobs.values()) == [f"{array}_0", f"{array}_1"] and f"job {array}_0" in out
        running, waiting = jobs[first.name], jobs[second.name]
        _until(f"task {running} to run", lambda: _state(running) == "RUNNING")
        assert _state(waiting) == "PENDING"
        assert main(["sweep", *F2, "--run-root", str(root), "--status"]) == 0
        status = capsys.readouterr().out
        row = {line.split()[0]: line for line in status.splitlines() if line.startswith("smoke-")}
        assert f"running (job {running} on " in row[first.name] and f"pid {os.getpid()}" in row[first.name]
        assert f"pending (job {waiting}: " in row[second.name] and "0 of 2 generations done" in row[second.name]
        assert "1 running, 1 pending" in status
    finally:
        lock.release()
    # resubmitting now submits nothing: both runs have a task in the queue
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm"]) == 0
    assert "2 run(s) already queued, not submitted again" in capsys.readouterr().out
    _until("both runs to finish", lambda: all(store.is_finished(c, root) for c in _configs()))
    _until("both tasks to leave the queue", lambda: not {running, waiting} & set(sweep.slurm_queue() or {}))
    _same_as_serial(root, serial_store)
    assert main(["sweep", *F2, "--run-root", str(root), "--status"]) == 0
    assert "2 run(s): 2 done" in capsys.readouterr().out
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm", "--wait"]) == 0
    assert "is finished" in capsys.readouterr().out
    _clean_jobs_dir(root)
    for run in (first, second):  # each generation trained once: one session per run
        assert _sessions(run) == 1


@pytest.mark.parametrize("how", ["scontrol-requeue", "time-limit-signal"])
def test_requeued_task_resumes_from_its_checkpoint(tmp_path, how):
    """A running task requeued: by ``scontrol requeue`` (the scheduler kills it and runs it again), or by the signal
    Slurm sends before a time limit (USR2, ``--signal=USR2@90`` in submitit's script: the task's ``checkpoint()``
    requeues the same call). Either way the run resumes from its last training checkpoint and ends with an
    uninterrupted run's bytes."""
    # Slurm takes ≈5 s to kill a requeued task (submitit's task ignores the SIGTERM; then KillWait), while submitit
    # requeues at once on USR2: the training must outlast the kill to be interrupted (≈16 steps/s on 2 cores)
    steps = 320 if how == "scontrol-requeue" else 160
    cfg = _configs()[0].replace(generations=1, train_steps=steps, checkpoint_every=20)
    serial = tmp_path / "serial" / "run"
    run_self_consuming(cfg, serial)
    root = tmp_path / "runs"
    run = sweep.PlannedRun(cfg, store.run_dir_for(cfg, root))
    [job] = sweep.submit([run], root, "slurm")
    ckpt = rundir.gen_dir(run.run_dir, 1) / "ckpt" / "COMPLETE"
    _until("the task's first training checkpoint", lambda: ckpt.exists() or job.paths.result_pickle.exists())
    assert not job.paths.result_pickle.exists(), "the run finished before it could be requeued"
    if how == "scontrol-requeue":
        _scontrol("requeue", job.job_id)
    else:
        subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True, timeout=30)
    # Slurm holds a requeued job for about two minutes (BeginTime); the test lets it go now
    _until(f"{job.job_id} requeued", lambda: _state(job.job_id) in ("PENDING", "REQUEUED", "REQUEUE_HOLD"))
    assert not rundir.is_finished(run.run_dir, 1)
    _scontrol("update", f"JobId={job.job_id}", "StartTime=now")
    assert sweep.wait_slurm([job]) == {}
    assert job.result() == str(run.run_dir)
    assert _artifacts(run.run_dir, 1) == _artifacts(serial, 1)
    assert _sessions(run.run_dir) == 2  # started twice: the first task was killed mid-training
    assert not ckpt.parent.exists()  # the training checkpoint is removed once the generation is done


def test_scancelled_sweep_leaves_no_lock_and_resubmits_only_what_is_unfinished(tmp_path, serial_store, capsys):
    """scancel of a sweep with one run finished and the other one's task running: no lock is left held, the store
    says which task ended, and the same command submits only the run not finished, which ends with the serial bytes.
    (A task killed while training, its lock then taken by the requeued task, is the requeue test's case.)"""
    root, first, second = _two_runs(tmp_path)
    # the second run's lock held here, so its task is still running (waiting for it) when the array is cancelled:
    # a smoke run would otherwise finish within scancel's KillWait (submitit's task ignores the SIGTERM)
    lock = rundir.RunLock(second).acquire(wait=False)
    try:
        _submit_one_at_a_time(root)
        capsys.readouterr()
        task = (root / "_jobs" / f"{second.name}.job").read_text().strip()
        array = task.split("_")[0]
        _until("the first run to finish and the second one's task to run",
               lambda: store.is_finished(_configs()[0], root) and _state(task) == "RUNNING")
        subprocess.run(["scancel", array], check=True, timeout=30)
        _until("the array to leave the queue",
               lambda: not any(j.split("_")[0] == array for j in sweep.slurm_queue() or {}))
    finally:
        lock.release()
    assert not store.is_finished(_configs()[1], root)
    for run in (first, second):
        assert store.lock_holder(run) is None
    assert main(["sweep", *F2, "--run-root", str(root), "--status"]) == 0
    assert f"(job {task} ended; not finished)" in capsys.readouterr().out
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm", "--wait"]) == 0
    out = capsys.readouterr().out
    assert "submitted 1 run(s)" in out and f": {second.name}" in out and "1/1 run(s) finished" in out
    _same_as_serial(root, serial_store)
    _clean_jobs_dir(root)


def test_two_sweeps_at_once_train_each_generation_once(tmp_path, serial_store):
    """Two `sweep --executor slurm` processes started together on one store: one array is submitted (the other
    finds the runs queued), and every run is started once."""
    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "collapse_utils", "sweep", *F2, "--run-root", str(root), "--executor", "slurm",
           "--wait"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    submitted = sum(int(n) for o in outs for n in re.findall(r"^submitted (\d+) run", o, re.M))
    assert submitted == 2, outs
    assert any("already queued" in o or "is finished" in o for o in outs), outs
    _until("both runs to finish", lambda: all(store.is_finished(c, root) for c in _configs()))
    _same_as_serial(root, serial_store)
    for c in _configs():
        assert _sessions(store.run_dir_for(c, root)) == 1


def test_failed_task_shows_its_error_in_status(tmp_path, capsys):
    """A task whose run raises: its error record in _jobs/<run>.error, shown by --status; --wait reports it."""
    root = tmp_path / "runs"
    cfg = _configs()[0]
    bad = cfg.replace(dataset="npy:/nonexistent/images.npy")
    run = sweep.PlannedRun(bad, store.run_dir_for(bad, root))
    [job] = sweep.submit([run], root, "slurm")
    assert sweep.wait_slurm([job]) == {}  # it ended with a result: the exception
    with pytest.raises(Exception):
        job.result()
    err = store.error_path(root, bad)
    first_line = err.read_text().splitlines()[0]
    assert "nonexistent" in first_line and f"job {job.job_id}" in err.read_text()
    runs = [sweep.PlannedRun(bad, run.run_dir)]
    runs[0].done, runs[0].state, runs[0].error = store.run_state(bad, root)
    sweep.attach_scheduler(runs, root)
    table = sweep.format_plan(runs, root)
    assert f"failed (job {job.job_id}; 0 of 2 generations done): {first_line}" in table, table


def test_task_killed_without_a_result_is_reported_not_waited_for(tmp_path, capsys, monkeypatch):
    """A task that dies without writing a result (SIGKILL, as the out-of-memory killer does): --wait reports it
    instead of waiting forever (submitit alone asks sacct, which a cluster without accounting cannot answer), and
    --status says its job ended with the run unfinished."""
    monkeypatch.setenv("COLLAPSE_KILL_AT", "gen_01/train.npy")  # sbatch passes the environment on to the task
    root = tmp_path / "runs"
    assert main(["sweep", "--preset", "smoke", "--only", "F2", "--param", "sizes=[16]", "--param", "generations=2",
                 "--run-root", str(root), "--executor", "slurm", "--wait"]) == 1
    captured = capsys.readouterr()
    assert "0/1 run(s) finished" in captured.out and "ended without a result" in captured.err
    monkeypatch.delenv("COLLAPSE_KILL_AT")
    assert main(["sweep", "--preset", "smoke", "--only", "F2", "--param", "sizes=[16]", "--param", "generations=2",
                 "--run-root", str(root), "--status"]) == 0
    assert "ended" in capsys.readouterr().out


def test_one_array_per_max_array_size(tmp_path, serial_store, monkeypatch):
    """More runs than the cluster's MaxArraySize: several arrays, each run submitted once."""
    monkeypatch.setattr(sweep, "slurm_max_array_size", lambda: 1)
    root = tmp_path / "runs"
    runs = sweep.plan_runs("smoke", ["F2"], F2_PARAMS, root)
    jobs = sweep.submit(runs, root, "slurm")
    assert len({j.job_id.split("_")[0] for j in jobs}) == 2  # (an array of one is a plain job)
    assert sweep.wait_slurm(jobs) == {}
    _same_as_serial(root, serial_store)
