"""Integrity of stored runs: damage that keeps a file's size is found by the recorded content hashes and redone,
a metrics record that lacks the config's metrics does not count as finished, reading a finished run writes
nothing, and a configuration change that would mix two runs in one directory is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from collapse_utils.core import io as cio
from collapse_utils.loop import rundir
from collapse_utils.core.config import make_config
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.loop.rundir import ConfigMismatchError, UNET_WEIGHTS, load_run
from conftest import finished_run

BASE = dict(n=16, generations=2, train_steps=4, num_inference_steps=3, sample_batch_size=16, progress=False)


def _cfg(**kw):
    return make_config("smoke", **{**BASE, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return finished_run(tmp_path_factory, _cfg(), "finished")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _snapshot(run_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(run_dir).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _overwrite_inside(path: Path, count: int = 64) -> None:
    """Change ``count`` bytes in the middle of a file, keeping its size (headers and sizes still pass)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + count] = bytes((b + 1) % 256 for b in data[mid:mid + count])
    path.write_bytes(bytes(data))


def test_every_artifact_has_a_recorded_hash(finished):
    for g in (1, 2):
        gen = rundir.gen_dir(finished, g)
        hashes = json.loads((gen / cio.HASHES).read_text())
        assert {"train.npy", "train_sources.npy", "samples.npy", "train_log.json",
                f"model/{UNET_WEIGHTS.as_posix()}"} <= set(hashes)
        for name, digest in hashes.items():
            assert cio.file_sha256(gen / name) == digest
    assert set(json.loads((rundir.real_dir(finished) / cio.HASHES).read_text())) >= {"images.npy", "indices.npy"}


def test_samples_damaged_in_place_are_redone_not_trained_on(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "run")
    want = _snapshot(finished)
    _overwrite_inside(run_dir / "gen_01" / "samples.npy")
    shutil.rmtree(run_dir / "gen_02")
    assert load_run(run_dir).generations == []  # damaged generation 1: nothing usable, and nothing written
    run_self_consuming(_cfg(), run_dir)
    got = _snapshot(run_dir)
    for name in ("gen_01/samples.npy", "gen_02/train.npy", "gen_02/samples.npy"):
        assert got[name][1] == want[name][1], f"{name} differs from the undamaged run"


def test_model_weights_damaged_in_place_are_retrained(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "run")
    weights = f"gen_02/model/{UNET_WEIGHTS.as_posix()}"
    want = (finished / weights).read_bytes()
    _overwrite_inside(run_dir / weights)
    result = run_self_consuming(_cfg(), run_dir)
    assert (run_dir / weights).read_bytes() == want
    np.testing.assert_array_equal(result.generations[1].samples, load_run(finished).generations[1].samples)


@pytest.mark.parametrize("record", [{}, {"gs_pixel": 1.0}])
def test_metrics_without_the_configs_metrics_do_not_count_as_finished(record, finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "run")
    (run_dir / "gen_02" / "metrics.json").write_text(json.dumps(record))
    assert len(load_run(run_dir).generations) == 1  # reported as not finished, not silently without metrics
    again = run_self_consuming(_cfg(), run_dir)
    want = load_run(finished).generations[1].metrics
    for name in _cfg().metrics:
        assert again.generations[1].metrics[name] == want[name]


def test_reading_or_rerunning_a_finished_run_writes_nothing(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    load_run(run_dir)
    result = run_self_consuming(_cfg(), run_dir)
    assert len(result.generations) == 2
    assert _snapshot(run_dir) == before


def test_allow_config_change_refuses_a_new_n_over_computed_generations(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    with pytest.raises(ConfigMismatchError, match="cannot keep .* consistent: n changed"):
        run_self_consuming(_cfg(n=24), run_dir, allow_config_change=True)
    assert _snapshot(run_dir) == before
    longer = run_self_consuming(_cfg(generations=3), run_dir, allow_config_change=True)  # more generations: fine
    assert len(longer.generations) == 3


def test_the_same_run_key_gives_the_same_bytes_whoever_launches_it(finished, tmp_path):
    """`run` from the command line (torch's default thread count, here all cores) and an in-process run with one
    thread write the same bytes: the run fixes its own CPU thread count and records it."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    cmd = [sys.executable, "-m", "collapse_utils", "run", "--preset", "smoke", "--n", "16", "--generations", "2",
           "--train-steps", "4", "--sample-steps", "3", "--sample-batch-size", "16", "--no-progress",
           "--out", str(tmp_path / "cli")]
    subprocess.run(cmd, check=True, env=env, cwd=Path(__file__).resolve().parents[1], capture_output=True, timeout=600)
    for name in ("gen_02/train.npy", "gen_02/samples.npy", f"gen_02/model/{UNET_WEIGHTS.as_posix()}"):
        assert (tmp_path / "cli" / name).read_bytes() == (finished / name).read_bytes(), name
    session = json.loads((tmp_path / "cli" / "manifest.json").read_text())["sessions"][-1]
    assert "1 torch threads" in session["device"]


_KILLED_PARENT = """
import sys
from collapse_utils.core.config import make_config
from collapse_utils.loop.store import ensure_runs
cfgs = [make_config("smoke", n=16, generations=3, train_steps=400, seed=s, progress=False) for s in (0, 1)]
ensure_runs(cfgs, sys.argv[1], workers=2, on_generation=lambda c, g: None)
"""


def test_workers_die_with_a_killed_parent(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT, str(tmp_path / "store")],
                              cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.time() + 240
        while not list((tmp_path / "store").glob("*/gen_01/train.npy")):
            assert time.time() < deadline and parent.poll() is None, "the workers never started training"
            time.sleep(0.5)
        children = psutil.Process(parent.pid).children(recursive=True)
        assert len(children) >= 2  # two workers (and the manager that relays their progress)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"workers still running after their parent was killed: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in psutil.Process().children(recursive=True):
            p.kill()


def test_bad_input_messages_name_the_option_or_file_and_the_fix(tmp_path, capsys):
    import errno

    from collapse_utils.core import io as cio
    from collapse_utils.__main__ import main
    from collapse_utils.core.data import load_dataset
    from collapse_utils.loop.preflight import _size

    bogus = tmp_path / "images.npy"
    bogus.write_text("not an array")
    with pytest.raises(ValueError) as err:
        load_dataset(f"npy:{bogus}", 4)
    assert str(bogus) in str(err.value) and "np.save" in str(err.value) and "pickle" not in str(err.value)

    assert (_size(3 * 2**20), _size(5 * 2**30), _size(10)) == ("3.00 MiB", "5.00 GiB", "10 bytes")

    def full_disk(_fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as err:
        cio._atomic_write(tmp_path / "x.npy", full_disk)
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "x.npy") in str(err.value)
    assert not list(tmp_path.glob(".x.npy*"))  # no temporary file left behind

    assert main(["run", "--preset", "smoke", "--seed", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "seed must be a non-negative integer" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # figure parameters are checked before any notebook kernel starts (nothing is written)
    assert main(["figures", "--preset", "smoke", "--only", "F2", "--param", "generations=-1",
                 "--fig-dir", str(tmp_path / "f"), "--run-root", str(tmp_path / "s")]) == 2
    assert "generations must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "f").exists() and not (tmp_path / "s").exists()
    assert main(["figures", "--preset", "smoke", "--only", "F2", "--param", "sizes=abc",
                 "--fig-dir", str(tmp_path / "f")]) == 2
    assert "sizes must be a positive integer or a list of them, got 'abc'" in capsys.readouterr().err


def test_a_sample_part_damaged_in_place_is_drawn_again(tmp_path):
    from collapse_utils.diffusion.models import build_scheduler
    from collapse_utils.diffusion.sample import sample_images

    torch.manual_seed(0)
    from collapse_utils.diffusion.models import build_unet

    model = build_unet("tiny", resolution=8, channels=1)
    kw = dict(seed=1, batch_size=4, num_inference_steps=3, progress=False)
    full = sample_images(model, build_scheduler(), 10, **kw)
    parts = tmp_path / "parts"
    parts.mkdir()
    sample_images(model, build_scheduler(), 10, parts_dir=parts, **kw)
    _overwrite_inside(parts / "part_000001.npy", count=8)  # header intact, size kept: only the hash can tell
    calls = []
    original = np.save

    def counting_save(*a, **k):
        calls.append(1)
        return original(*a, **k)

    np.save = counting_save
    try:
        again = sample_images(model, build_scheduler(), 10, parts_dir=parts, **kw)
    finally:
        np.save = original
    np.testing.assert_array_equal(full, again)
    assert len(calls) == 1  # exactly the damaged batch was drawn again


def test_a_checkpoint_damaged_in_place_costs_its_steps(tmp_path, caplog):
    import logging

    from _interrupt import train_until

    images = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    train_until(images, None, _cfg(train_steps=6, checkpoint_every=2), tmp_path / "ckpt", step=3)
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "COMPLETE").exists() and (ckpt / cio.HASHES).exists()
    rundir.verify_checkpoint(ckpt)
    assert ckpt.exists()  # whole: kept
    biggest = max((f for f in ckpt.iterdir() if f.is_file()), key=lambda f: f.stat().st_size)
    _overwrite_inside(biggest, count=8)
    with caplog.at_level(logging.WARNING, logger="collapse_utils.loop.rundir"):
        rundir.verify_checkpoint(ckpt)
    assert not ckpt.exists() and "does not match the sha256" in caplog.text


_RACER = """
import sys
from collapse_utils.core.config import make_config
from collapse_utils.loop.run import run_self_consuming
cfg = make_config("smoke", n=16, generations=2, train_steps=30, num_inference_steps=3, sample_batch_size=16,
                  progress=False)
run_self_consuming(cfg, sys.argv[1])
"""


def test_two_processes_on_one_run_train_each_generation_once(tmp_path):
    """Two processes start the same run at once: one writes, the other waits and then finds it finished; the
    result equals a serial run's, and the lock of a SIGKILLed holder does not block the next process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(run_dir)], cwd=repo, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("waiting for it" in o for o in outs) == 1, outs  # exactly one of them waited
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["sessions"]) == 1  # one writer started the run; the other only read it
    serial = tmp_path / "serial"
    subprocess.run([sys.executable, "-c", _RACER, str(serial)], cwd=repo, check=True, timeout=600)
    for name in ("gen_02/train.npy", "gen_02/samples.npy", f"gen_02/model/{UNET_WEIGHTS.as_posix()}"):
        assert (run_dir / name).read_bytes() == (serial / name).read_bytes(), name

    # a holder killed with SIGKILL leaves no lock behind that blocks the next writer
    killed = tmp_path / "killed"
    holder = subprocess.Popen([sys.executable, "-c", _RACER, str(killed)], cwd=repo)
    deadline = time.time() + 300
    while not (killed / "gen_01" / "train.npy").exists():
        assert time.time() < deadline and holder.poll() is None
        time.sleep(0.2)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    run_self_consuming(_cfg(train_steps=30), killed, wait=False)  # would raise RunBusyError if the lock were stale


def test_a_busy_run_is_skipped_with_the_holder_named_when_not_waiting(tmp_path):
    from collapse_utils.loop.rundir import RunBusyError, RunLock

    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        with pytest.raises(RunBusyError, match=r"being written by pid \d+ on .*; skipped"):
            run_self_consuming(_cfg(), run_dir, wait=False)
    assert len(run_self_consuming(_cfg(), run_dir, wait=False).generations) == 2
