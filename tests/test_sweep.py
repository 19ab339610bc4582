"""The sweep command: the plan's run states, submission through submitit's debug and local executors (same bytes
as a serial ensure_runs), the Slurm options' mapping, and the task's checkpoint."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from collapse_utils.paper import figures, sweep
from collapse_utils.loop import rundir, store
from collapse_utils.__main__ import main  # noqa: E402
from collapse_utils.loop.run import run_self_consuming  # noqa: E402

# F2 at smoke scale: two runs (n = 16, 32), 2 generations each, seconds apiece.
F2 = ["--preset", "smoke", "--only", "F2", "--param", "sizes=[16,32]", "--param", "generations=2"]
F2_PARAMS = {"sizes": [16, 32], "generations": 2}


def _configs():
    return figures.figure_configs("F2", "smoke", **F2_PARAMS)


def _artifacts(run_dir: Path, generations: int) -> dict[str, bytes]:
    out = {}
    for g in range(1, generations + 1):
        gen = rundir.gen_dir(run_dir, g)
        for name in ("train.npy", "samples.npy", str(rundir.model_path(gen).relative_to(gen) / rundir.UNET_WEIGHTS)):
            out[f"gen_{g:02d}/{name}"] = (gen / name).read_bytes()
    return out


@pytest.fixture(scope="module")
def serial_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serial")
    store.ensure_runs(_configs(), root)
    return root


def _same_as_serial(root: Path, serial: Path) -> None:
    for c in _configs():
        ours, ref = store.run_dir_for(c, root), store.run_dir_for(c, serial)
        assert store.is_finished(c, root)
        a, b = _artifacts(ours, c.generations), _artifacts(ref, c.generations)
        assert a.keys() == b.keys() and len(a) == 3 * c.generations
        for name in a:
            assert a[name] == b[name], f"{ours.name}/{name} differs from the serial run"


def test_plan_reports_done_partial_missing_failed_running(tmp_path, capsys):
    extra = figures.figure_configs("F2", "smoke", sizes=[48], generations=2)[0]
    done, partial = _configs()
    run_self_consuming(done, store.run_dir_for(done, tmp_path))
    run_self_consuming(partial, store.run_dir_for(partial, tmp_path))
    shutil.rmtree(rundir.gen_dir(store.run_dir_for(partial, tmp_path), 2))

    runs = {r.config.n: r for r in sweep.plan_runs("smoke", ["F2"], {"sizes": [16, 32, 48], "generations": 2},
                                                    tmp_path)}
    assert runs[16].state == "done" and runs[16].finished and runs[16].hours_left == 0
    assert runs[32].state == "1 of 2 generations done" and runs[32].done == 1
    # CPU time at smoke scale: a run's start-up plus its generations, at the recorded time of its finished ones
    import json

    gen1 = json.loads((rundir.gen_dir(store.run_dir_for(partial, tmp_path), 1) / "metrics.json").read_text())
    assert runs[32].cpu and runs[32].recorded_s == pytest.approx(sum(gen1["timings"].values()))
    assert runs[32].hours_left == pytest.approx(runs[32].hours - runs[32].recorded_s / 3600)
    assert runs[48].recorded_s is None and runs[48].hours == pytest.approx(
        (sweep.CPU_COST["smoke"].per_run_s + 2 * sweep.CPU_COST["smoke"].per_generation_s) / 3600)
    assert runs[48].state == "never started" and not store.run_dir_for(extra, tmp_path).exists()
    assert runs[16].figures == ["F2"]

    # a failure recorded by a task, and a run whose lock another writer holds
    err = store.error_path(tmp_path, partial)
    err.parent.mkdir(parents=True, exist_ok=True)
    err.write_text("RuntimeError: out of memory\n\ntraceback …\n")
    lock = rundir.RunLock(store.run_dir_for(extra, tmp_path)).acquire(wait=False)
    try:
        runs = {r.config.n: r for r in sweep.plan_runs("smoke", ["F2"], {"sizes": [16, 32, 48], "generations": 2},
                                                        tmp_path)}
    finally:
        lock.release()
    assert runs[32].state == "failed (1 of 2 generations done)" and runs[32].error == "RuntimeError: out of memory"
    assert runs[48].state.startswith(f"running (pid {os.getpid()} on ")

    # the CLI's table: one row per run, the states, the totals
    assert main(["sweep", "--preset", "smoke", "--only", "F2", "--param", "sizes=[16,32,48]", "--param",
                 "generations=2", "--run-root", str(tmp_path), "--plan"]) == 0
    out = capsys.readouterr().out
    for r in runs.values():
        assert r.run_dir.name in out
    assert "done" in out and "1 of 2 generations done" in out and "never started" in out
    assert "failed (1 of 2 generations done): RuntimeError: out of memory" in out
    assert "3 run(s)" in out and "in all" in out and "longest chain" in out
    assert "CPU time at smoke scale" in out and "CPU-min" in out and "recorded time" in out and "H200" not in out
    assert "to submit: 2 run(s)" in out


def test_paper_plans_gpu_hours_and_demo_cpu_minutes(tmp_path, capsys):
    assert main(["sweep", "--preset", "paper", "--only", "F2", "--run-root", str(tmp_path), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "GPU-h" in out and "GPU-hours on one NVIDIA H200" in out and "CPU-min" not in out
    assert main(["sweep", "--preset", "demo", "--only", "F2", "--run-root", str(tmp_path), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "H200" not in out and "GPU" not in out
    # 9 runs (3 sizes x 3 seeds) x 5 generations at 31 CPU-s each
    assert "9 run(s)" in out and f"{9 * 5 * 31 / 60:.0f} CPU-min in all" in out
    assert not any(tmp_path.iterdir())  # planning writes nothing


def test_estimate_uses_the_measured_throughput():
    cfg = figures.figure_configs("F2", "paper", sizes=[32768])[0]
    rate = sweep.THROUGHPUT["fast"]
    per_gen = cfg.train_steps * cfg.batch_size / rate.train_img_s + cfg.n * 1.0 / rate.sample_img_s
    assert sweep.generation_seconds(cfg) == pytest.approx(per_gen)
    assert per_gen / 3600 == pytest.approx(0.891, abs=0.01)  # 0.764 h training + 0.127 h sampling
    ref = cfg.replace(recipe="reference")
    assert sweep.generation_seconds(ref) > 4 * sweep.generation_seconds(cfg)


def test_debug_executor_sweep_matches_serial_runs(tmp_path, serial_store, capsys):
    assert main(["sweep", *F2, "--run-root", str(tmp_path), "--executor", "debug"]) == 0
    out = capsys.readouterr().out
    assert "submitted 2 run(s) with the debug executor" in out and "--status" in out and "2/2 run(s) finished" in out
    _same_as_serial(tmp_path, serial_store)
    assert (tmp_path / "_jobs").is_dir() and not list((tmp_path / "_jobs").glob("*.error"))
    # nothing left to submit
    assert main(["sweep", *F2, "--run-root", str(tmp_path), "--executor", "debug"]) == 0
    assert "is finished" in capsys.readouterr().out


@pytest.mark.parametrize("gpus", [[], [0, 1]], ids=["cpu-slots", "one-run-per-gpu"])
def test_local_executor_sweep_matches_serial_runs(tmp_path, serial_store, monkeypatch, gpus):
    """Both local layouts: CPU slots, and one executor per GPU (CUDA_VISIBLE_DEVICES=k; a CPU machine ignores it)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    runs = sweep.plan_runs("smoke", ["F2"], F2_PARAMS, tmp_path)
    jobs = sweep.submit(runs, tmp_path, "local", local_slots=2, gpus=gpus)
    assert len(jobs) == 2
    deadline = time.time() + 300
    while not all(j.done() for j in jobs) and time.time() < deadline:
        time.sleep(0.5)
    for j in jobs:
        if not j.done():
            j.cancel()
    for r, j in zip(runs, jobs):
        assert j.result() == str(r.run_dir)
    _same_as_serial(tmp_path, serial_store)
    slots = sorted(p.name for p in (tmp_path / "_jobs").glob(".slot-*.lock"))  # one run per slot at a time
    assert slots == ([".slot-gpu0.lock", ".slot-gpu1.lock"] if gpus else [".slot-cpu0.lock", ".slot-cpu1.lock"])
    logs = list((tmp_path / "_jobs").glob("*/*_log.out"))
    assert len(logs) == 2, "submitit's logs go to <run store>/_jobs/<job id>/"


def test_failed_task_records_its_error(tmp_path):
    cfg = _configs()[0]
    bad = cfg.to_dict() | {"dataset": "npy:/nonexistent/images.npy"}
    run_dir = tmp_path / store.run_name(cfg)
    with pytest.raises(Exception) as raised:
        sweep.RunTask()(bad, str(run_dir))
    err = store.error_path(tmp_path, cfg)
    assert err.read_text().splitlines()[0] == f"{type(raised.value).__name__}: {raised.value}".replace("\n", " ")
    assert store.run_state(cfg, tmp_path) == (0, "failed (0 of 2 generations done)", err.read_text().splitlines()[0])


def test_checkpoint_requeues_the_same_call(tmp_path):
    from submitit.helpers import Checkpointable, DelayedSubmission

    task = sweep.RunTask()
    assert isinstance(task, Checkpointable)
    cfg = _configs()[0].to_dict()
    delayed = task.checkpoint(cfg, str(tmp_path / "run"), None)
    assert isinstance(delayed, DelayedSubmission)
    assert delayed.function is task and delayed.args == (cfg, str(tmp_path / "run"), None) and delayed.kwargs == {}


def test_slurm_options_reach_sbatch(tmp_path, monkeypatch, capsys):
    """A fake sbatch (and srun) records the script submitit writes: the options land in its #SBATCH lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\necho 'Submitted batch job 4242'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    srun = bin_dir / "srun"  # submitit checks that srun exists; it is never called here
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "store"
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm", "--partition", "gpu", "--account",
                 "proj", "--qos", "high", "--time", "120", "--gpus-per-node", "1", "--cpus-per-task", "8",
                 "--mem-gb", "32", "--slurm-array-parallelism", "1"]) == 0
    out = capsys.readouterr().out
    assert "job 4242_0" in out and "job 4242_1" in out and "--status" in out
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("--partition=gpu", "--account=proj", "--qos=high", "--time=120", "--gpus-per-node=1",
                 "--cpus-per-task=8", "--mem=32GB", "--array=0-1%1"):
        assert f"#SBATCH {line}" in script, line
    assert str(root / "_jobs") in script
    assert sys.executable in script

    # the task imports the package it was submitted from, whatever the job's environment
    assert f"export PYTHONPATH={sweep.package_parent()}" in script
    # each run's task id recorded for --status and the next submission; no staging file left in _jobs/
    assert sorted(p.read_text().strip() for p in (root / "_jobs").glob("*.job")) == ["4242_0", "4242_1"]
    assert not list((root / "_jobs").glob("*.pkl")) and not list((root / "_jobs").glob(".submission_file_*"))

    # without options: a day per task (not submitit's 5 minutes); no GPU for a CPU preset (smoke, demo: a cluster
    # without GPUs refuses the request), one GPU at paper scale
    for p in (root / "_jobs").glob("*.job"):
        p.unlink()  # the stand-in queue never ran them
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm"]) == 0
    script = (tmp_path / "submitted.sh").read_text()
    assert "#SBATCH --time=1440" in script and "--gpus-per-node" not in script
    assert main(["sweep", "--preset", "paper", "--only", "F2", "--run-root", str(root / "paper"),
                 "--executor", "slurm"]) == 0
    script = (tmp_path / "submitted.sh").read_text()
    assert "#SBATCH --time=1440" in script and "#SBATCH --gpus-per-node=1" in script


def test_figures_prefetch_trains_the_runs_the_plan_lists(tmp_path):
    from collapse_utils.paper import batch

    plan = sweep.plan_runs("smoke", ["F2"], {"sizes": 16}, tmp_path)
    assert [r.state for r in plan] == ["never started"]
    notebooks = batch.discover_notebooks(["F2"])
    assert batch.prefetch_runs(notebooks, {"preset": "smoke", "sizes": 16}, tmp_path, workers=1) is None
    assert [r.state for r in sweep.plan_runs("smoke", ["F2"], {"sizes": 16}, tmp_path)] == ["done"]


_TASK = """
import json, sys
from collapse_utils.paper import sweep
sweep.RunTask()(json.loads(sys.argv[1]), sys.argv[2])
"""


def test_an_interrupted_task_requeued_finishes_with_the_same_artifacts(tmp_path):
    """SIGTERM (as Slurm sends at a time limit or preemption) mid-run, then the requeued call: the run resumes and
    ends with the bytes of an uninterrupted run."""
    import json
    import signal
    import subprocess

    cfg = _configs()[0].replace(train_steps=120, checkpoint_every=20)
    serial = tmp_path / "serial"
    run_self_consuming(cfg, serial)
    run_dir = tmp_path / "store" / "run"
    proc = subprocess.Popen([sys.executable, "-c", _TASK, json.dumps(cfg.to_dict()), str(run_dir)],
                            cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 300
    while not (run_dir / "gen_01" / "ckpt" / "COMPLETE").exists():
        assert time.time() < deadline and proc.poll() is None, "the task never wrote a checkpoint"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) != 0
    assert not rundir.is_finished(run_dir, cfg.generations)
    requeued = sweep.RunTask().checkpoint(cfg.to_dict(), str(run_dir), None)
    requeued.function(*requeued.args, **requeued.kwargs)
    assert _artifacts(run_dir, cfg.generations) == _artifacts(serial, cfg.generations)


def test_a_refused_submission_says_why_and_leaves_no_staging_files(tmp_path, monkeypatch, capsys):
    """sbatch refusing the array (here: a GPU asked of a cluster without GPUs, as Slurm answers it): the command
    fails with sbatch's message and a hint, and submitit's pickles and script are not left in _jobs/."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("sbatch", "echo 'sbatch: error: Invalid generic resource (gres) specification' >&2; exit 1"),
                       ("srun", "exit 1"), ("squeue", "exit 0")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "store"
    assert main(["sweep", *F2, "--run-root", str(root), "--executor", "slurm", "--gpus-per-node", "1"]) == 1
    err = capsys.readouterr().err
    assert "Invalid generic resource (gres) specification" in err and "--gpus-per-node 0" in err
    assert not [p.name for p in (root / "_jobs").iterdir() if not p.name.startswith(".submit")]
