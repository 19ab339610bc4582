"""Reliability (README "Reliability"): a run killed at any point resumes to the same bytes, damage is detected and redone, and
bad input is refused clearly before any long work starts, leaving the run directory as it was.

Kills are real: a forked child process (or, once, ``python -m collapse_utils run``) runs the loop and is sent
SIGKILL by the test hook ``COLLAPSE_KILL_AT`` (collapse_utils.core.io.kill_point) at a named point; the run is then
resumed here and compared with an uninterrupted run of the same configuration. Everything runs single-threaded
on the CPU (same thread count, same kernels: the byte-identity claim is for one machine).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from collapse_utils.core import io as cio
from collapse_utils.core.testhooks import KILL_ENV
from collapse_utils.core.config import RunConfig, make_config
from collapse_utils.loop.run import _parts_meta, run_self_consuming
from collapse_utils.loop.rundir import ConfigMismatchError, prepare_parts_dir

N = 16
REPO = Path(__file__).resolve().parents[1]
# 2 generations, greedy selection of n from 2n samples, a checkpoint every 2 of 6 steps, 4 sample part files of 8.
BASE = dict(n=N, generations=2, train_steps=6, checkpoint_every=2, num_inference_steps=3, sample_batch_size=8,
            selection="greedy", progress=False)


def _cfg(**kw) -> RunConfig:
    return make_config("smoke", **{**BASE, **kw})


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of the test configuration."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run_self_consuming(_cfg(), run_dir)
    return run_dir


def artifacts(run_dir: Path) -> dict[str, object]:
    """Every file a run keeps: arrays and model weights as bytes, logs and metrics (without timings) as values."""
    out: dict[str, object] = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_dir():
            continue
        if rel.startswith("tb/"):  # TensorBoard's mirror of the logs: wall times and host names, never read back
            continue
        if p.suffix in (".npy", ".safetensors") or p.name in ("train_log.json", "COMPLETE") \
                or p.name in ("README.md", "sampling.json", "samples.png"):  # the docs are deterministic too
            out[rel] = p.read_bytes()
        elif p.name == "hashes.json":  # metrics.json holds timings, so its hash (and DONE's of the record) varies
            out[rel] = {k: v for k, v in json.loads(p.read_text()).items() if k != "metrics.json"}
        elif p.name == "DONE":
            out[rel] = sorted(k for k in json.loads(p.read_text()) if k not in ("finished", "record", "check")) \
                + [json.loads(p.read_text()).get("real"), json.loads(p.read_text()).get("config")]
        elif p.name == "metrics.json":
            metrics = json.loads(p.read_text())
            metrics.pop("timings")
            out[rel] = metrics
        elif p.name in ("config.json", "manifest.json", "source.json") or p.parent.name in ("unet", "scheduler") \
                or p.name == "model_index.json":
            out[rel] = "present"
        else:
            out[rel] = "unexpected file"
    return out


def assert_same_run(run_dir: Path, reference: Path) -> None:
    got, want = artifacts(run_dir), artifacts(reference)
    assert sorted(got) == sorted(want), f"extra: {set(got) - set(want)}, missing: {set(want) - set(got)}"
    for name in want:
        assert got[name] == want[name], f"{name} differs from the uninterrupted run"


def _child(cfg_dict: dict, run_dir: str, point: str) -> None:
    os.environ[KILL_ENV] = point
    run_self_consuming(RunConfig.from_dict(cfg_dict), run_dir)
    os._exit(3)  # the kill point was never reached


def killed_run(cfg: RunConfig, run_dir: Path, point: str) -> None:
    """Run ``cfg`` in a forked child process that SIGKILLs itself at ``point``."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(cfg.to_dict(), str(run_dir), point))
    proc.start()
    proc.join(300)
    assert proc.exitcode == -signal.SIGKILL, f"child ended with {proc.exitcode}, not killed at {point}"


def _ckpt_step(ckpt: Path) -> int:
    return int(torch.load(ckpt / "custom_checkpoint_0.pkl", weights_only=False)["step"])


# What must be on disk right after each kill (the kill really hit the intended phase).
KILL_POINTS = {
    # training: killed at step 3, after the checkpoint of step 2 (K = 2)
    "train_step:1:3": lambda d: _ckpt_step(d / "gen_01/ckpt") == 2 and not (d / "gen_01/model").exists(),
    "train_step:2:5": lambda d: _ckpt_step(d / "gen_02/ckpt") == 4 and (d / "gen_01/DONE").exists(),
    "gen_01/train_log.json": lambda d: not (d / "gen_01/model").exists() and (d / "gen_01/ckpt/COMPLETE").exists(),
    "gen_01/model": lambda d: (d / "gen_01/ckpt").exists() and not (d / "gen_01/sample_parts").exists(),
    # sampling: 2 of 4 part files written
    "gen_01/sample_parts/part_000001.npy": lambda d: len(list((d / "gen_01/sample_parts").glob("part_*.npy"))) == 2
    and not (d / "gen_01/samples.npy").exists(),
    "gen_01/samples.npy": lambda d: (d / "gen_01/sample_parts").exists(),
    "gen_01/metrics.json": lambda d: not (d / "gen_01/DONE").exists(),
    # between generations
    "gen_01/DONE": lambda d: not (d / "gen_02").exists(),
    # selection: generation 2's training set chosen and written, its model not yet trained
    "gen_02/train_sources.npy": lambda d: not (d / "gen_02/train.npy").exists(),
    "gen_02/train.npy": lambda d: not (d / "gen_02/ckpt").exists() and not (d / "gen_02/model").exists(),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_to_identical_artifacts(point, reference, tmp_path, caplog):
    run_dir = tmp_path / "run"
    killed_run(_cfg(), run_dir, point)
    assert KILL_POINTS[point](run_dir), f"unexpected state after the kill at {point}"
    with caplog.at_level(logging.INFO, logger="collapse_utils.diffusion.train"):
        run_self_consuming(_cfg(), run_dir)
    if point.startswith("train_step:"):  # at most K = 2 steps were lost
        step = 2 if point.endswith(":3") else 4
        assert f"at step {step}" in caplog.text
    assert_same_run(run_dir, reference)


def test_killed_twice_then_resumed(reference, tmp_path):
    run_dir = tmp_path / "run"
    killed_run(_cfg(), run_dir, "train_step:1:5")
    killed_run(_cfg(), run_dir, "gen_01/sample_parts/part_000002.npy")
    (run_dir / "gen_01/sample_parts/part_000000.npy").write_bytes(b"\x93NUMPY garbage")  # and a part damaged
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


def test_cli_run_killed_by_sigkill_resumes(reference, tmp_path):
    """A real ``python -m collapse_utils run`` process, killed during training after a checkpoint."""
    run_dir = tmp_path / "run"
    env = dict(os.environ, **{KILL_ENV: "train_step:1:3", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                              "TQDM_DISABLE": "1"})
    cmd = [sys.executable, "-m", "collapse_utils", "run", "--preset", "smoke", "--n", str(N), "--generations", "2",
           "--train-steps", "6", "--checkpoint-every", "2", "--sample-steps", "3", "--sample-batch-size", "8",
           "--selection", "greedy", "--no-progress", "--out", str(run_dir)]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _ckpt_step(run_dir / "gen_01/ckpt") == 2
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


# ---------------------------------------------------------------------- damaged artifacts are detected and redone
def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGE = {
    "samples.npy cut in half": lambda d: _truncate(d / "gen_01/samples.npy"),
    "train.npy cut short": lambda d: _truncate(d / "gen_02/train.npy", 0.9),
    "train_sources.npy emptied": lambda d: (d / "gen_02/train_sources.npy").write_bytes(b""),
    "model weights truncated": lambda d: _truncate(d / "gen_01/model/unet/diffusion_pytorch_model.safetensors"),
    "model directory gone": lambda d: shutil.rmtree(d / "gen_02/model"),
    "metrics.json garbage": lambda d: (d / "gen_02/metrics.json").write_text("{not json"),
    "train_log.json garbage": lambda d: (d / "gen_01/train_log.json").write_text("garbage"),
    "real images truncated": lambda d: _truncate(d / "real/images.npy"),
    "manifest.json garbage": lambda d: (d / "manifest.json").write_text("garbage"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_artifact_is_detected_and_redone(damage, reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    DAMAGE[damage](run_dir)
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.bin", "custom_checkpoint_0.pkl"])
def test_damaged_checkpoint_costs_steps_not_the_run(name, reference, tmp_path, caplog):
    run_dir = tmp_path / "run"
    killed_run(_cfg(), run_dir, "train_step:1:5")
    _truncate(run_dir / "gen_01/ckpt" / name)
    with caplog.at_level(logging.WARNING):
        run_self_consuming(_cfg(), run_dir)
    assert "from step 0" in caplog.text
    assert_same_run(run_dir, reference)


def test_kill_between_the_renames_of_a_directory_replacement(reference, tmp_path):
    """atomic_replace_dir moves the old copy aside, then the new one in: a kill in between leaves only '.ckpt.old'."""
    run_dir = tmp_path / "run"
    killed_run(_cfg(), run_dir, "train_step:1:5")
    os.replace(run_dir / "gen_01/ckpt", run_dir / "gen_01/.ckpt.old")
    (run_dir / "gen_01/.ckpt.tmp").mkdir()  # the half-written new checkpoint
    run_self_consuming(_cfg(), run_dir)
    assert_same_run(run_dir, reference)


def test_corrupt_config_is_refused_unless_overridden(reference, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    (run_dir / "config.json").write_text("{trunc")
    # the finished generations' DONE markers prove which configuration the folder holds: only that one restores it
    for allow in (False, True):
        with pytest.raises(ConfigMismatchError, match="config.json is corrupt"):
            run_self_consuming(_cfg(seed=1), run_dir, allow_config_change=allow)
    run_self_consuming(_cfg(), run_dir)
    assert json.loads((run_dir / "config.json").read_text())["run_key"] == _cfg().run_key()
    # with nothing finished to prove it, a corrupt record is refused unless overridden
    for g in (1, 2):
        shutil.rmtree(run_dir / f"gen_{g:02d}")
    (run_dir / "config.json").write_text("{trunc")
    with pytest.raises(ConfigMismatchError, match="config.json is corrupt"):
        run_self_consuming(_cfg(), run_dir)
    run_self_consuming(_cfg(), run_dir, allow_config_change=True)
    assert json.loads((run_dir / "config.json").read_text())["run_key"] == _cfg().run_key()


def test_sample_parts_of_other_settings_are_not_mixed_in(tmp_path):
    cfg = _cfg()
    parts = tmp_path / "sample_parts"
    prepare_parts_dir(parts, _parts_meta(cfg, 1, torch.device("cpu")))
    cio.atomic_save_npy(parts / "part_000000.npy", np.zeros((8, 8, 8, 1), np.uint8))
    prepare_parts_dir(parts, _parts_meta(cfg, 1, torch.device("cpu")))
    assert (parts / "part_000000.npy").exists()  # same settings: kept
    prepare_parts_dir(parts, _parts_meta(cfg.replace(sample_batch_size=16), 1, torch.device("cpu")))
    assert not (parts / "part_000000.npy").exists()  # another batch size draws other noise: dropped


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    cio.atomic_save_npy(path, np.arange(4))

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cio.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        cio.atomic_save_npy(path, np.arange(8))
    np.testing.assert_array_equal(cio.load_npy(path), np.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary file left


def test_integrity_checks_find_truncation(tmp_path):
    from collapse_utils.loop.rundir import UNET_WEIGHTS

    cio.atomic_save_npy(tmp_path / "x.npy", np.zeros((5, 4, 4, 1), np.uint8))
    assert cio.check_npy(tmp_path / "x.npy", dtype=np.uint8, ndim=4) == (5, 4, 4, 1)
    for cut in (0.0, 0.5, 0.99):
        bad = tmp_path / f"cut{cut}.npy"
        bad.write_bytes((tmp_path / "x.npy").read_bytes()[: int(cut * 208)])
        with pytest.raises(cio.CorruptArtifactError):
            cio.check_npy(bad)
        with pytest.raises(cio.CorruptArtifactError):
            cio.load_npy(bad)
    from safetensors.torch import save_file

    save_file({"w": torch.ones(10)}, tmp_path / "m.safetensors")
    cio.check_safetensors(tmp_path / "m.safetensors")
    _truncate(tmp_path / "m.safetensors", 0.9)
    with pytest.raises(cio.CorruptArtifactError):
        cio.check_safetensors(tmp_path / "m.safetensors")
    assert UNET_WEIGHTS.name == "diffusion_pytorch_model.safetensors"


# ---------------------------------------------------------------------- bad input: a clear error, nothing lost
def _npy(tmp_path: Path, array: np.ndarray, labels: np.ndarray | None = None) -> str:
    if labels is not None:
        path = tmp_path / "data.npz"
        np.savez(path, images=array, labels=labels)
    else:
        path = tmp_path / "data.npy"
        np.save(path, array)
    return f"npy:{path}"


def _digits(n: int = 40, size: int = 8, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


BAD_DATA = {
    "dataset smaller than n": (lambda t: _npy(t, _digits(10)), {}, ValueError, "cannot take n=16"),
    "float dtype": (lambda t: _npy(t, _digits().astype(np.float32)), {}, ValueError, "must be uint8"),
    "non-finite values": (lambda t: _npy(t, np.full((40, 8, 8, 1), np.nan, np.float32)), {}, ValueError, "must be uint8"),
    "two channels": (lambda t: _npy(t, _digits(channels=2)), {}, ValueError, "C = 1 or 3"),
    "flat vectors": (lambda t: _npy(t, np.zeros((40, 64), np.uint8)), {}, ValueError, "expected N x H x W x C"),
    "empty set": (lambda t: _npy(t, np.zeros((0, 8, 8, 1), np.uint8)), {}, ValueError, "has 0 images"),
    "odd resolution": (lambda t: _npy(t, _digits(size=9)), {"resolution": None}, ValueError, "not divisible by 2"),
    "not square": (lambda t: _npy(t, np.zeros((40, 8, 6, 1), np.uint8)), {"resolution": None}, ValueError,
                   "must be square"),
    "labels out of range": (lambda t: _npy(t, _digits(), np.arange(40) % 12), {"conditional": True}, ValueError,
                            r"labels in \[0, 11\]"),
    "missing file": (lambda t: f"npy:{t / 'nope.npy'}", {}, Exception, "does not exist"),
    "dataset offline": (lambda t: "ffhq32", {"data_root": "/nonexistent/ffhq"}, Exception, "FFHQ is not bundled"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_refused_before_anything_is_written(case, tmp_path):
    from collapse_utils.core.data import DatasetUnavailableError

    make_dataset, extra, error, message = BAD_DATA[case]
    cfg = _cfg(dataset=make_dataset(tmp_path), generations=1, selection="none").replace(**extra)  # None = native size
    with pytest.raises(error, match=message) as info:
        run_self_consuming(cfg, tmp_path / "run")
    if error is Exception:
        assert isinstance(info.value, DatasetUnavailableError)
    assert not (tmp_path / "run").exists()  # no config, no real images, no generation: not even the folder


BAD_CONFIG = {
    "n = 0": (dict(n=0), "n must be positive"),
    "n < 0": (dict(n=-4), "n must be positive"),
    "pool_factor < 1": (dict(pool_factor=0), "pool_factor must be >= 1"),
    "threshold 0": (dict(selection="threshold", threshold=0.0), "threshold must be > 0"),
    "threshold < 0": (dict(selection="threshold", threshold=-5.0), "threshold must be > 0"),
    "threshold inf": (dict(selection="threshold", threshold=float("inf")), "threshold must be finite"),
    "decay 0": (dict(selection="threshold", decay=0.0), r"decay must lie in \(0, 1\)"),
    "decay 1": (dict(selection="threshold", decay=1.0), r"decay must lie in \(0, 1\)"),
    "decay nan": (dict(selection="threshold", decay=float("nan")), r"decay must lie in \(0, 1\)"),
    "unknown paradigm": (dict(paradigm="recycle"), "paradigm 'recycle' is unknown"),
    "unknown selection": (dict(selection="best"), "unknown selection method 'best'"),
    "unknown feature space": (dict(feature_space="clip"), "feature_space 'clip' is unknown"),
    "lr nan": (dict(lr=float("nan")), "lr must be a finite number"),
    "generations 0": (dict(generations=0), "generations must be positive"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG))
def test_impossible_configuration_is_refused(case):
    overrides, message = BAD_CONFIG[case]
    with pytest.raises(ValueError, match=message):
        _cfg(**overrides)


def test_unknown_metric_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="unknown metric"):
        run_self_consuming(_cfg(metrics=("gs_pixel", "sharpness")), tmp_path / "run")
    assert not (tmp_path / "run" / "gen_01").exists()


@pytest.mark.parametrize("overrides", [dict(feature_space="dinov2"), dict(selection="none", metrics=("fd_dinov2",))],
                         ids=["dinov2 selection", "dinov2 metric"])
def test_missing_feature_weights_fail_at_start_not_after_generation_1(overrides, tmp_path, monkeypatch):
    from collapse_utils.measure import features
    from collapse_utils.measure.features import FeatureSpaceUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(features.DINOV2_PATH_ENV, str(tmp_path / "no-dinov2-here"))
    features._load_dinov2.cache_clear()
    with pytest.raises(FeatureSpaceUnavailableError, match="DINOv2 features are unavailable"):
        run_self_consuming(_cfg(**overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    features._load_dinov2.cache_clear()


def test_a_refused_start_keeps_a_folder_the_user_made(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match="unknown metric"):
        run_self_consuming(_cfg(metrics=("sharpness",)), tmp_path / "mine")
    assert (tmp_path / "mine").is_dir() and list((tmp_path / "mine").iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_cuda_device_is_one_clear_error_before_anything_is_written(tmp_path, capsys):
    from collapse_utils.__main__ import main as cli_main

    rc = cli_main(["run", "--preset", "smoke", "--device", "cuda", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "sees no CUDA device" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_not_enough_disk_is_refused_at_start_but_a_finished_run_still_loads(reference, tmp_path, monkeypatch):
    monkeypatch.setattr(cio, "free_disk_bytes", lambda path: 10_000)
    with pytest.raises(OSError, match=r"needs about [\d.]+ (KiB|MiB|GiB) of disk .* only [\d.]+ KiB is free"):
        run_self_consuming(_cfg(), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    # nothing left to write: a finished run resumes however full the disk
    run_dir = tmp_path / "finished"
    shutil.copytree(reference, run_dir)
    run_self_consuming(_cfg(), run_dir)


def test_disk_estimate_covers_what_a_run_writes(reference):
    from collapse_utils.loop.preflight import estimate_disk_bytes
    from collapse_utils.diffusion.models import build_unet, count_parameters

    written = sum(p.stat().st_size for p in reference.rglob("*") if p.is_file())
    params = count_parameters(build_unet("tiny", resolution=8, channels=1))
    assert estimate_disk_bytes(_cfg(), 64, params) > written


def test_diverged_training_is_reported_and_nothing_saved(tmp_path):
    with pytest.raises(FloatingPointError, match="diverged"):
        run_self_consuming(_cfg(lr=1e30, warmup_steps=0, generations=1, selection="none"), tmp_path / "run")
    assert not (tmp_path / "run" / "gen_01" / "model").exists()


@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "conditional"])
def test_resumed_training_is_bit_identical(conditional, digits8, tmp_path):
    """Optimizer, LR schedule, noise/label-dropout generator and data order all come back from the checkpoint."""
    from _interrupt import train_until

    from collapse_utils.diffusion.train import train_model

    images, labels = digits8[0][:48], digits8[1][:48]
    cfg = make_config("smoke", train_steps=7, checkpoint_every=3, warmup_steps=2, batch_size=16, conditional=conditional,
                      progress=False)
    straight = train_model(images, labels, cfg, seed=5, device="cpu")

    train_until(images, labels, cfg, tmp_path / "ckpt", step=5, seed=5)
    assert _ckpt_step(tmp_path / "ckpt") == 3
    resumed = train_model(images, labels, cfg, seed=5, device="cpu", ckpt_dir=tmp_path / "ckpt")
    assert resumed.losses == straight.losses
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_paper_scale_on_a_cpu_is_warned_about_and_small_runs_are_not():
    from collapse_utils.loop.preflight import paper_scale_on_cpu

    cpu = torch.device("cpu")
    assert "takes days" in paper_scale_on_cpu(make_config("paper"), cpu)
    assert paper_scale_on_cpu(make_config("paper"), torch.device("cuda")) is None
    assert paper_scale_on_cpu(make_config("demo"), cpu) is None
    assert paper_scale_on_cpu(make_config("paper", train_steps=200), cpu) is None
