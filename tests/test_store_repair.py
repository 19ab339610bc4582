"""Every byte a result depends on is checked, and every command repairs what it finds (README "Reliability").

A finished smoke run (2 generations) is copied per case and damaged: a checkpoint missing a file, a finished
generation damaged in place, a content record deleted, a model config edited, metrics edited, labels deleted, a
config deleted, a second writer through a symbolic link. Each is detected by reading the run, and the repairing
commands (resume, ``ensure_runs``, the sweep's plan) put back the bytes of the undamaged run. The damage matrix at
the end applies every damage to every artifact of the run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from collapse_utils.core import io as cio
from collapse_utils.core.config import make_config
from collapse_utils.loop import rundir, store
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.loop.rundir import ConfigMismatchError, RunBusyError, RunLock, load_run
from test_reliability import _cfg, assert_same_run, killed_run
from conftest import finished_run


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return finished_run(tmp_path_factory, _cfg(), "reference")


def _copy(reference: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(reference, tmp_path / "run", symlinks=True))


def _same_size(path: Path, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + count] = bytes((b + 1) % 256 for b in data[mid:mid + count])
    path.write_bytes(bytes(data))


def _usable(run_dir: Path) -> int:
    return len(load_run(run_dir).generations)


# ---------------------------------------------------------------------- a checkpoint is all or nothing
@pytest.mark.parametrize("name", ["optimizer.bin", "scheduler.bin", "custom_checkpoint_0.pkl", "hashes.json"])
def test_a_checkpoint_missing_one_file_is_discarded_whole(name, reference, tmp_path, caplog):
    run_dir = tmp_path / "run"
    killed_run(_cfg(), run_dir, "train_step:1:3")
    (run_dir / "gen_01/ckpt" / name).unlink()
    with caplog.at_level(logging.WARNING):
        run_self_consuming(_cfg(), run_dir)
    assert "from step 0" in caplog.text
    assert_same_run(run_dir, reference)


# ---------------------------------------------------------------------- every command repairs a damaged run
def test_the_store_redoes_a_damaged_finished_run(tmp_path):
    from collapse_utils.paper.sweep import PlannedRun

    cfg = _cfg()
    root = tmp_path / "store"
    store.ensure_runs([cfg], root)
    run_dir = store.run_dir_for(cfg, root)
    want = (run_dir / "gen_02/samples.npy").read_bytes()
    _same_size(run_dir / "gen_02/samples.npy")
    assert not store.is_finished(cfg, root)
    done, state, _ = store.run_state(cfg, root)
    assert done == 1 and "damaged" in state and "gen_02/samples.npy" in state
    planned = PlannedRun(cfg, run_dir, done=done, state=state)
    assert not planned.finished  # the sweep submits it again
    [run] = store.ensure_runs([cfg], root)
    assert len(run.generations) == 2
    assert (run_dir / "gen_02/samples.npy").read_bytes() == want


# ---------------------------------------------------------------------- the record's own absence is detected
@pytest.mark.parametrize("folder, damaged", [("gen_01", "samples.npy"), ("real", "images.npy")])
def test_a_deleted_hash_record_does_not_turn_the_checks_off(reference, tmp_path, folder, damaged):
    """A generation's record (or the real set's) deleted and one of its files damaged, same size: found, redone."""
    run_dir = _copy(reference, tmp_path)
    (run_dir / folder / "hashes.json").unlink()
    _same_size(run_dir / folder / damaged)
    assert _usable(run_dir) == 0
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


# ---------------------------------------------------------------------- model configs, metrics, labels
@pytest.mark.parametrize("damage", ["act_fn", "delete unet config", "scheduler config"])
def test_model_config_files_are_in_the_content_record(damage, reference, tmp_path):
    run_dir = _copy(reference, tmp_path)
    model = run_dir / "gen_01/model"
    if damage == "act_fn":
        path = model / "unet/config.json"
        text = path.read_text()
        assert '"act_fn": "silu"' in text
        path.write_text(text.replace('"act_fn": "silu"', '"act_fn": "mish"'))
    elif damage == "delete unet config":
        (model / "unet/config.json").unlink()
    else:
        path = model / "scheduler/scheduler_config.json"
        text = path.read_text()
        path.write_text(text.replace('"linear"', '"lineaR"'))
    assert _usable(run_dir) == 0
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


def test_metrics_json_is_in_the_content_record(reference, tmp_path):
    run_dir = _copy(reference, tmp_path)
    path = run_dir / "gen_02/metrics.json"
    metrics = json.loads(path.read_text())
    key = next(k for k, v in sorted(metrics.items()) if isinstance(v, float))
    text = path.read_text()
    old = json.dumps(metrics[key])
    new = ("9" if old[0] != "9" else "8") + old[1:]
    path.write_text(text.replace(f'"{key}": {old}', f'"{key}": {new}', 1))
    assert path.read_text() != text
    assert _usable(run_dir) == 1
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("conditional") / "run"
    run_self_consuming(_cfg(conditional=True, num_classes=10, selection="none"), run_dir)
    return run_dir


@pytest.mark.parametrize("name", ["sample_labels.npy", "train_labels.npy"])
def test_deleted_labels_are_detected_and_restored(name, conditional, tmp_path):
    run_dir = _copy(conditional, tmp_path)
    want = (run_dir / "gen_02" / name).read_bytes()
    (run_dir / "gen_02" / name).unlink()
    assert _usable(run_dir) == 1
    run_self_consuming(_cfg(conditional=True, num_classes=10, selection="none"), run_dir)
    assert (run_dir / "gen_02" / name).read_bytes() == want
    assert _usable(run_dir) == 2


# ---------------------------------------------------------------------- one lock per folder; no config, no resume
def test_one_lock_per_real_folder(tmp_path):
    real = tmp_path / "store" / "x"
    real.mkdir(parents=True)
    alias = tmp_path / "store" / "alias"
    alias.symlink_to(real, target_is_directory=True)
    held = RunLock(real).acquire(wait=False)
    try:
        with pytest.raises(RunBusyError):
            RunLock(alias).acquire(wait=False)
    finally:
        held.release()


def test_a_run_folder_without_config_is_refused_not_reconfigured(reference, tmp_path):
    run_dir = _copy(reference, tmp_path)
    (run_dir / "config.json").unlink()
    before = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    with pytest.raises(ConfigMismatchError, match="config.json"):
        run_self_consuming(_cfg(seed=1), run_dir)
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")) == before
    # the finished generations prove which configuration the folder holds: that one puts its record back
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


# ---------------------------------------------------------------------- the damage matrix
# Every artifact a finished run's results depend on (documentation, model cards, sample grids and the manifest's
# provenance are not among them), each damaged four ways.
MATRIX_FILES = (
    "config.json", "real/images.npy", "real/indices.npy", "real/source.json", "real/hashes.json",
    *(f"gen_01/{n}" for n in ("train.npy", "train_sources.npy", "samples.npy", "metrics.json", "train_log.json",
                              "hashes.json", "DONE", "model/COMPLETE", "model/unet/config.json",
                              "model/unet/diffusion_pytorch_model.safetensors", "model/scheduler/scheduler_config.json",
                              "model/model_index.json", "model/sampling.json")),
    "gen_02/samples.npy", "gen_02/metrics.json", "gen_02/hashes.json", "gen_02/DONE",
)
MARKERS = ("COMPLETE",)  # present or not: its content means nothing


def _record_of(rel: str) -> tuple[str, str] | None:
    """The hash record that lists ``rel`` and the name it has there, or None (a record, a marker, the config)."""
    parts = rel.split("/")
    if parts[-1] in ("hashes.json", "DONE", *MARKERS) or rel == "config.json":
        return None
    return f"{parts[0]}/hashes.json", "/".join(parts[1:])


def _damage(run_dir: Path, rel: str, how: str) -> None:
    path = run_dir / rel
    if how == "same-size":
        _same_size(path)
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "delete":
        path.unlink()
    else:  # delete its hash
        record, name = _record_of(rel)
        hashes = json.loads((run_dir / record).read_text())
        del hashes[name]
        (run_dir / record).write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")


MATRIX = [(rel, how) for rel in MATRIX_FILES for how in ("same-size", "truncate", "delete", "delete-its-hash")
          if not (how == "delete-its-hash" and _record_of(rel) is None)
          and not (how in ("same-size", "truncate") and rel.rsplit("/", 1)[-1] in MARKERS)]


def _detected(run_dir: Path) -> bool:
    try:
        return len(load_run(run_dir).generations) < 2
    except (cio.CorruptArtifactError, FileNotFoundError, ValueError, TypeError):
        return True


@pytest.mark.parametrize("rel,how", MATRIX, ids=[f"{rel}-{how}" for rel, how in MATRIX])
def test_damage_matrix(rel, how, reference, tmp_path):
    """Each damage is detected by reading the run, and resuming it restores the undamaged run's bytes."""
    run_dir = _copy(reference, tmp_path)
    _damage(run_dir, rel, how)
    assert _detected(run_dir), f"{how} of {rel} passes load_run"
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)
    assert len(load_run(run_dir).generations) == 2


# ---------------------------------------------------------------------- bad input fails before anything is written
@pytest.mark.parametrize("field,value", [("beta_schedule", "nope"), ("resize_method", "cubic"),
                                         ("class_selection", "some")])
def test_an_unknown_choice_fails_validation_naming_the_option(field, value, tmp_path):
    """A configuration with an unknown choice is never made (so no run folder is): the error names the option."""
    from collapse_utils.core.config import RunConfig

    with pytest.raises(ValueError, match=f"{field} {value!r} is unknown"):
        _cfg(**{field: value})
    with pytest.raises(ValueError, match=f"{field} {value!r} is unknown"):
        RunConfig.from_dict({**_cfg().to_dict(), field: value})


# ---------------------------------------------------------------------- claims: bad input, atomic report, read-only
@pytest.mark.parametrize("args,says", [
    (["--only", "F99"], "--only"),
    (["--device", "banana"], "--device 'banana'"),
    (["--run-root", "{tmp}/no-such-store"], "no such run store"),
])
def test_claims_refuse_bad_input_with_a_non_zero_exit(args, says, tmp_path, capsys):
    from collapse_utils.__main__ import main

    store = tmp_path / "store"
    store.mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--run-root" not in args:
        args += ["--run-root", str(store)]
    out = tmp_path / "claims.md"
    assert main(["claims", "--preset", "smoke", "--seeds", "0", "--out", str(out), *args]) != 0
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_claims_keep_the_previous_report_when_the_disk_is_full(tmp_path, monkeypatch):
    import errno

    from collapse_utils.paper import claims as C

    store = tmp_path / "store"
    store.mkdir()
    out = tmp_path / "claims.md"
    out.write_text("the previous report\n")

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        C.write_claims(out, "smoke", run_root=store, seeds=[0], device="cpu", only=["F10"])
    assert out.read_text() == "the previous report\n"


def test_the_state_of_an_unfinished_run_on_read_only_media(reference, tmp_path, monkeypatch):
    import builtins
    import errno

    cfg = _cfg()
    root = tmp_path / "store"
    run_dir = store.run_dir_for(cfg, root)
    run_dir.parent.mkdir(parents=True)
    shutil.copytree(reference, run_dir)
    (run_dir / "gen_02/DONE").unlink()
    RunLock(run_dir).acquire().release()  # the lock file a finished writer leaves behind
    real_open = builtins.open

    def read_only(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", read_only)
    done, state, _ = store.run_state(cfg, root)
    assert done == 1 and "1 of 2" in state


def _read_only_below(root: Path, monkeypatch) -> None:
    """Every write below ``root`` fails as on read-only media (EROFS); reads and writes elsewhere work."""
    import builtins
    import errno

    top = str(Path(root).resolve())

    def below(path, entry: bool = False) -> bool:
        """``path`` (its directory entry itself when ``entry``: renaming over a link changes the link's folder,
        not its target) lies below ``root``."""
        try:
            path = os.fspath(path)
        except TypeError:
            return False
        p = (os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path)) if entry
             else os.path.realpath(path))
        return p == top or p.startswith(top + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and below(file):
            refuse(file)
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and below(path):
            refuse(path)
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name in ("replace", "rename", "unlink", "remove", "mkdir", "rmdir"):
        real = getattr(os, name)

        def guarded(*a, _real=real, **kw):
            if any(below(x, entry=True) for x in a[:2] if isinstance(x, (str, os.PathLike))):
                refuse(a[0])
            return _real(*a, **kw)

        monkeypatch.setattr(os, name, guarded)


def test_claims_compute_missing_metrics_of_a_read_only_store_without_writing(tmp_path, monkeypatch):
    """Post-hoc metrics of runs on read-only media are computed in a scratch shadow of each run: the rows are
    those of the same store when writable, and not one byte of the store changes."""
    from collapse_utils.paper import claims as C
    from collapse_utils.paper import figures

    root = tmp_path / "store"
    store.ensure_runs(figures.figure_configs("F2", "smoke", seeds=[7]), root)
    snapshot = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    claims = [C.Claim("a", "F2", "GS in LeNet space (computed post hoc)", "§6.1", "decline", dict(metric="gs_lenet")),
              C.Claim("b", "F2", "copy rate vs a real reference (held-out samples drawn post hoc)", "§3.7",
                      "decline", dict(metric="copy_rate_real_pixel", rise=True))]

    def rows():
        ctx = C.Context("smoke", (7,), root, "cpu", True)
        cache = C.RunCache(ctx)
        try:
            return [(r.ours, r.verdict) for r in (C.evaluate(c, ctx, cache) for c in claims)], cache
        finally:
            cache.close()

    with monkeypatch.context() as m:
        _read_only_below(root, m)
        read_only, cache = rows()
    assert cache.scratch is None  # the shadows are gone
    assert {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} == snapshot
    for ours, verdict in read_only:
        assert "Read-only" not in ours + verdict and verdict == C.NOT_RESOLVED_ONE_SEED, (ours, verdict)
        assert not ours.startswith("—"), ours
    writable, _ = rows()  # the same store, writable: the metrics are written into it, with the same values
    assert writable == read_only
    assert any(p.read_bytes() != snapshot.get(p) for p in root.rglob("metrics.json"))


# ---------------------------------------------------------------------- sweep options
@pytest.mark.parametrize("args,says", [
    (["--local-slots", "-1"], "--local-slots must be positive"),
    (["--local-slots", "0"], "--local-slots must be positive"),
    (["--time", "-5"], "--time must be positive"),
    (["--param", "preset='nope'"], "--preset"),
    (["--run-root", "{file}"], "a file"),
])
def test_sweep_refuses_impossible_options_naming_them(args, says, tmp_path, capsys):
    from collapse_utils.__main__ import main

    afile = tmp_path / "afile"
    afile.write_text("")
    args = [a.replace("{file}", str(afile)) for a in args]
    if "--run-root" not in args:
        args += ["--run-root", str(tmp_path / "store")]
    what = ["--plan"] if "--local-slots" not in args and "--time" not in args else ["--executor", "local"]
    assert main(["sweep", "--preset", "smoke", "--only", "F2", *what, *args]) != 0
    assert says in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_claims_never_judge_a_damaged_run(claims_store, tmp_path):
    """A damaged run is not judged: its claims name it as damaged and the command that redoes it."""
    from collapse_utils.paper import claims as C
    from collapse_utils.paper import figures

    root = tmp_path / "store"
    shutil.copytree(claims_store, root)
    cfg = figures.figure_configs("F10", "smoke", seeds=[0])[0]
    _same_size(store.run_dir_for(cfg, root) / "gen_02/samples.npy")
    out, rows = C.write_claims(tmp_path / "claims.md", "smoke", run_root=root, seeds=[0], device="cpu", only=["F10"])
    text = out.read_text()
    assert "damaged" in text and "figures --preset smoke --only F10" in text
    assert any(r.verdict.startswith(C.NOT_RUN) for r in rows)


def _chain_watching(pid: int) -> None:
    import time

    from collapse_utils.paper.sweep import RunChain

    RunChain(watch=pid)([], [])  # starts the watch; no runs
    time.sleep(20)
    os._exit(0)  # the watched process was never seen to go


def test_local_jobs_of_a_waiting_sweep_stop_when_it_is_killed():
    import multiprocessing
    import subprocess
    import sys
    import time

    sweep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    job = multiprocessing.get_context("fork").Process(target=_chain_watching, args=(sweep.pid,))
    job.start()
    time.sleep(1.0)
    assert job.is_alive()
    sweep.kill()  # SIGKILL of the waiting sweep
    sweep.wait()
    job.join(10)
    assert job.exitcode == 1, "the job went on after its sweep was killed"


# ---------------------------------------------------------------------- folder datasets
def _folder(tmp_path: Path, modes: list[str]) -> Path:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, mode in enumerate(modes):
        a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(a).convert(mode).save(folder / f"{i:02d}.png")
    return folder


def test_a_folder_of_mixed_modes_has_one_channel_count_whatever_subset_is_drawn(tmp_path, caplog):
    from collapse_utils.core.data import load_dataset

    folder = _folder(tmp_path, ["RGB"] + ["L"] * 5 + ["RGBA", "P"])
    with caplog.at_level(logging.WARNING):
        shapes = {load_dataset(f"folder:{folder}", 1, seed=s).images.shape[-1] for s in range(12)}
    assert shapes == {3}
    assert "grey and the rest colour" in caplog.text


def test_a_corrupt_image_in_a_folder_is_named(tmp_path):
    from collapse_utils.core.data import load_dataset

    folder = _folder(tmp_path, ["RGB"] * 3)
    bad = folder / "01.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(ValueError, match="01.png"):
        load_dataset(f"folder:{folder}", 3, seed=0)


# ---------------------------------------------------------------------- small things
def test_a_device_that_is_not_one_is_refused_naming_device():
    with pytest.raises(ValueError, match=r"device 'banana' is not a torch device \(--device\)"):
        _cfg(device="banana")


def test_a_file_as_the_run_folder_is_refused_naming_it(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    with pytest.raises(ValueError, match="afile is a file, not a run folder"):
        run_self_consuming(_cfg(), afile)
    assert afile.read_text() == "mine\n"


def test_a_deleted_manifest_is_recorded_again(reference, tmp_path):
    run_dir = _copy(reference, tmp_path)
    (run_dir / "manifest.json").unlink()
    run_self_consuming(_cfg(), run_dir)
    assert json.loads((run_dir / "manifest.json").read_text())["run_key"] == _cfg().run_key()


def test_figures_refuse_an_unknown_preset_parameter_before_a_kernel_starts():
    from collapse_utils.paper.batch import check_parameters

    with pytest.raises(ValueError, match="preset must be one of"):
        check_parameters({"preset": "nope"})


def test_a_run_that_finds_its_generations_finished_says_so(reference, tmp_path, monkeypatch, capsys):
    """As after waiting on the lock for another process that computed them: not reported as computed here."""
    from collapse_utils.__main__ import main

    run_dir = _copy(reference, tmp_path)
    monkeypatch.setattr(rundir, "is_done", lambda *a: False)  # as seen before the wait: nothing finished yet
    assert main(["run", "--preset", "smoke", "--n", "16", "--generations", "2", "--train-steps", "6",
                 "--checkpoint-every", "2", "--sample-steps", "3", "--sample-batch-size", "8", "--selection",
                 "greedy", "--no-progress", "--out", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert "generation 2/2 finished earlier (reused)" in err and "done in" not in err


def test_sweep_cancel_stops_the_local_jobs_it_submitted(tmp_path, capsys):
    import subprocess
    import sys

    from collapse_utils.__main__ import main
    from collapse_utils.paper.sweep import record_submitted

    root = tmp_path / "store"
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record_submitted(root, "local", [str(job.pid)])
    assert main(["sweep", "--preset", "smoke", "--run-root", str(root), "--cancel"]) == 0
    assert job.wait(10) != 0
    assert f"local job {job.pid}: cancelled" in capsys.readouterr().out
    assert main(["sweep", "--preset", "smoke", "--run-root", str(root), "--cancel"]) == 0
    assert "no submitted jobs" in capsys.readouterr().out


def test_sweep_cancel_stops_a_local_job_that_ignores_sigint(tmp_path, capsys):
    """A local job started from a background shell inherits an ignored SIGINT: --cancel then sends SIGTERM."""
    import signal
    import subprocess
    import sys

    from collapse_utils.__main__ import main
    from collapse_utils.paper.sweep import record_submitted

    root = tmp_path / "store"
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    record_submitted(root, "local", [str(job.pid)])
    assert main(["sweep", "--preset", "smoke", "--run-root", str(root), "--cancel"]) == 0
    assert job.wait(10) == -signal.SIGTERM
    assert f"local job {job.pid}: cancelled (SIGTERM: it ignored SIGINT)" in capsys.readouterr().out


def test_a_non_square_array_is_resized_with_a_warning(tmp_path, caplog):
    import numpy as np

    from collapse_utils.core.data import load_dataset

    path = tmp_path / "rect.npy"
    np.save(path, np.zeros((4, 8, 12, 1), np.uint8))
    with caplog.at_level(logging.WARNING):
        assert load_dataset(f"npy:{path}", 4, resolution=8).images.shape == (4, 8, 8, 1)
    assert "non-square 8×12" in caplog.text


def test_a_killed_local_task_is_reported_in_one_line_not_a_progress_bar(tmp_path):
    from collapse_utils.paper.sweep import failure_line

    exc = RuntimeError("Job 123 (task: 0) has not produced any output (state: FINISHED)\nError stream produced:\n"
                       "----\nrun gen 1/2 train:  40%|████      | 2/5")
    line = failure_line(exc, tmp_path, tmp_path / "run")
    assert line.startswith("RuntimeError: Job 123 (task: 0) has not produced any output") and "40%" not in line


def test_a_full_disk_during_a_checkpoint_is_named_as_such(digits8, tmp_path, monkeypatch):
    import errno

    import accelerate
    from safetensors import SafetensorError

    from collapse_utils.diffusion.train import train_model

    def full(self, *a, **k):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                              '"No space left on device" })')

    monkeypatch.setattr(accelerate.Accelerator, "save_state", full)
    images, labels = digits8
    with pytest.raises(OSError, match="no space left .* checkpoint") as info:
        train_model(images[:16], None, _cfg(recipe="reference"), seed=0, device="cpu",
                    ckpt_dir=tmp_path / "ckpt")
    assert info.value.errno == errno.ENOSPC


def test_metrics_added_later_never_vouch_for_an_edited_record(reference, tmp_path):
    run_dir = _copy(reference, tmp_path)
    gen = run_dir / "gen_02"
    hashes = json.loads((gen / "hashes.json").read_text())
    del hashes["train.npy"]
    (gen / "hashes.json").write_text(json.dumps(hashes))
    rundir.write_metrics(gen, {**json.loads((gen / "metrics.json").read_text()), "added_later": 1.0})
    assert _usable(run_dir) == 1
    whole = _copy(reference, tmp_path / "whole")
    run = load_run(whole)
    run.generations[1].metrics["added_later"] = 1.0
    run.generations[1].write_metrics()
    assert _usable(whole) == 2  # a whole record is vouched for again with its new metrics
