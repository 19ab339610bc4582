"""The fast path on CPU: same draws and maths as the reference (so fp32 results are equal), checkpoints, fallbacks,
dispatch, and the GPU benchmark in --tiny mode."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _unets import tiny_unet as seeded_tiny_unet
from collapse_utils.core import devices
from collapse_utils.diffusion import fast_sample, fast_train
from collapse_utils.core.config import make_config
from collapse_utils.diffusion.ddpm import SampleSettings, balanced_labels, draw_noise
from collapse_utils.core.devices import resolve_recipe
from collapse_utils.diffusion.models import build_scheduler
from collapse_utils.diffusion.sample import sample_images
from collapse_utils.diffusion.train import TRAINERS, train_model

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**kw):
    return make_config("smoke", **{"train_steps": 6, "progress": False, **kw})


@pytest.mark.parametrize("conditional", [False, True])
def test_fast_trainer_reproduces_the_reference_in_fp32(digits8, conditional):
    images, labels = digits8
    cfg = _cfg(conditional=conditional)
    ref = train_model(images[:64], labels[:64], cfg, seed=3, device="cpu")
    out = train_model(images[:64], labels[:64], cfg.replace(recipe="fast"), seed=3, device="cpu")
    assert (ref.recipe, out.recipe, out.info["mode"]) == ("reference", "fast", "eager")
    assert out.losses == ref.losses and out.steps == 6
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(out.model.state_dict()[k], v, rtol=0, atol=0)


def test_draws_into_static_buffers_equal_the_reference_draws():
    buf = fast_train.make_buffers(5, (1, 4, 4), torch.device("cpu"), conditional=False)
    fast_train.draw_into(buf, 1000, torch.Generator().manual_seed(9), label_dropout=0.0)
    noise, t = draw_noise(torch.zeros(5, 1, 4, 4), 1000, torch.Generator().manual_seed(9))
    assert torch.equal(buf.noise, noise) and torch.equal(buf.t, t)


class _Stop(Exception):
    pass


def test_fast_trainer_resumes_exactly_from_its_checkpoint(digits8, tmp_path):
    images, _ = digits8
    cfg = _cfg(recipe="fast", checkpoint_every=2)
    full = train_model(images[:64], None, cfg, seed=1, device="cpu")

    def stop_at_5(step: int, loss: float) -> None:
        if step == 5:
            raise _Stop

    with pytest.raises(_Stop):
        train_model(images[:64], None, cfg, seed=1, device="cpu", ckpt_dir=tmp_path / "ckpt", on_step=stop_at_5)
    assert (tmp_path / "ckpt" / "COMPLETE").exists() and (tmp_path / "ckpt" / fast_train.CKPT_FILE).exists()
    seen: list[int] = []
    resumed = train_model(images[:64], None, cfg, seed=1, device="cpu", ckpt_dir=tmp_path / "ckpt",
                          on_step=lambda s, loss: seen.append(s))
    assert seen == [5, 6]  # continued after the step-4 checkpoint
    assert resumed.losses == full.losses
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_fast_trainer_starts_over_on_a_foreign_checkpoint(digits8, tmp_path, caplog):
    images, _ = digits8
    cfg = _cfg(recipe="fast", train_steps=3)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "COMPLETE").write_text("ok\n")  # e.g. written by the reference recipe (accelerate's layout)
    out = train_model(images[:64], None, cfg, seed=2, device="cpu", ckpt_dir=ckpt)
    assert out.losses == train_model(images[:64], None, cfg, seed=2, device="cpu").losses
    assert "not written by the fast path" in caplog.text


@pytest.fixture(scope="module")
def tiny_unet():
    return seeded_tiny_unet()


def test_fast_sampler_reproduces_the_reference_in_fp32(tiny_unet):
    sch = build_scheduler()
    for steps in (3, 7):  # 10 images in batches of 4: the last batch is padded
        ref = sample_images(tiny_unet, sch, 10, seed=5, batch_size=4, num_inference_steps=steps, progress=False,
                            recipe="reference")
        ours = sample_images(tiny_unet, sch, 10, seed=5, batch_size=4, num_inference_steps=steps, progress=False,
                             recipe="fast")
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("w", [0.0, 1.0, 2.0])
def test_fast_sampler_reproduces_guidance(w):
    model = seeded_tiny_unet(seed=1, num_classes=10)
    y = balanced_labels(6, 10)
    kw = dict(seed=2, batch_size=4, num_inference_steps=4, labels=y, guidance_scale=w, null_class=10, progress=False)
    np.testing.assert_array_equal(sample_images(model, build_scheduler(), 6, recipe="fast", **kw),
                                  sample_images(model, build_scheduler(), 6, recipe="reference", **kw))


def test_recipes_dispatch_by_device():
    cfg = _cfg()
    assert "fast" in TRAINERS
    assert resolve_recipe(cfg.recipe, torch.device("cpu")) == "reference"
    assert resolve_recipe(cfg.recipe, torch.device("cuda")) == "fast"
    assert resolve_recipe(cfg.replace(recipe="reference").recipe, torch.device("cuda")) == "reference"
    assert resolve_recipe("auto", torch.device("cpu")) == "reference"
    assert resolve_recipe("auto", torch.device("cuda")) == "fast"
    assert resolve_recipe("reference", torch.device("cuda")) == "reference"
    with pytest.raises(ValueError):
        resolve_recipe("turbo", torch.device("cpu"))


def _sampler(model, compile: str):
    settings = SampleSettings(batch_size=4, num_inference_steps=3, device="cpu")
    return fast_sample.FastSampler(model, build_scheduler(), settings, shape=(1, 8, 8), compile=compile)


def test_failed_compile_probe_means_eager_sampling_with_a_warning(tiny_unet, monkeypatch):
    monkeypatch.setattr(fast_sample, "probe_compile", lambda spec, timeout=None: False)
    monkeypatch.setattr(fast_sample, "_PROBED", {})
    with pytest.warns(RuntimeWarning, match="probe"):
        s = _sampler(tiny_unet, "probe")
    assert s.mode == "eager"
    x = s(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all()


def test_compiled_step_error_falls_back_to_eager(tiny_unet):
    s = _sampler(tiny_unet, "0")
    expected = s(4, torch.Generator().manual_seed(3))

    def broken(*args, **kwargs):
        raise RuntimeError("simulated compiler failure")

    s._fn, s.mode = broken, "compiled"
    with pytest.warns(RuntimeWarning, match="simulated"):
        got = s(4, torch.Generator().manual_seed(3))
    assert s.mode == "eager" and torch.equal(got, expected)


def test_probe_reports_a_crashing_child():
    assert fast_sample.probe_compile({"device": "cpu", "model_config": {"no_such_option": 1}}, timeout=300) is False


def test_gpu_benchmark_runs_tiny_on_cpu(tmp_path):
    bench = _load_benchmark()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bench.run(bench.parse_args(["--tiny", "--device", "cpu", "--out", str(tmp_path)]))
    data = json.loads((tmp_path / "results.json").read_text())
    assert not [k for k in data if k.startswith("error_")], data
    works = " ".join(r["work"] for r in res.rows)
    for part in ("training img/s", "sampling ms per DDPM step", "greedy selection", "KL entropy",
                 "generalization score", "loss curve", "fp32 losses", "sampling at fixed noise"):
        assert part in works
    # on CPU both paths compute in fp32 with the same draws: the checks are exact
    assert data["fp32_loss_agreement"]["max_rel_all"] == 0
    assert data["sampling_agreement"]["trajectory_rel_l2"] == 0
    assert data["loss_curve"]["max_abs_z"] == 0
    assert "| work | reference | ours | ratio | device |" in (tmp_path / "table.md").read_text()


class _FakeGraph:
    """Stands in for a captured step on CPU: replay runs the step eagerly, optionally on stale inputs."""

    def __init__(self, parts, stale: bool) -> None:
        self.parts, self.stale, self.out = parts, stale, torch.zeros(())

    def replay(self) -> None:
        if self.stale:
            self.parts.buf.t.fill_(999)  # as if the graph had kept other timesteps than the ones just drawn
        self.parts.optimizer.zero_grad(set_to_none=True)
        self.out.copy_(fast_train.train_step(self.parts))


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "benchmarks" / "gpu_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)
    return bench


def test_sampler_sweep_times_each_variant_in_a_child_and_writes_a_profile(tmp_path):
    bench = _load_benchmark()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bench.run(bench.parse_args(["--tiny", "--device", "cpu", "--sections", "sample,sweep",
                                          "--out", str(tmp_path)]))
    sweep = json.loads((tmp_path / "results.json").read_text())["sampling_sweep"]
    assert [v["batch_size"] for v in sweep] == [8, 16] and all(v["exit"] == 0 for v in sweep)
    assert all(v["ms_per_step"] > 0 for v in sweep)
    rows = [r for r in res.rows if "variant:" in r["work"]]
    assert len(rows) == 2 and all(r["ratio"] > 0 for r in rows)
    profile = (tmp_path / "sampling_profile.txt").read_text()
    assert "convolution" in profile and "ms/step" in profile


def test_inductor_options_come_from_json_and_bad_text_is_refused():
    assert devices.parse_inductor_options("") == {}
    assert devices.parse_inductor_options('{"freezing": true}') == {"freezing": True}
    with pytest.raises(ValueError, match="JSON object"):
        devices.parse_inductor_options("freezing=1")
    with pytest.raises(ValueError, match="JSON object"):
        devices.parse_inductor_options("[1]")


def test_graph_self_test_catches_a_step_that_reads_stale_inputs(digits8):
    images, _ = digits8
    parts = fast_train.build_parts(images[:64], None, _cfg(), 0, torch.device("cpu"), graph=False)
    good = _FakeGraph(parts, stale=False)
    fast_train.self_test(parts, good, good.out)
    bad = _FakeGraph(parts, stale=True)
    with pytest.raises(RuntimeError, match="differ from the eager"):
        fast_train.self_test(parts, bad, bad.out)


def test_lr_stays_in_its_device_tensor_when_a_scheduler_assigns_floats(digits8):
    images, _ = digits8
    cfg = _cfg(warmup_steps=2)
    parts = fast_train.build_parts(images[:64], None, cfg, 0, torch.device("cpu"), graph=False)
    lr = torch.tensor(0.0)
    parts.optimizer.param_groups[0]["lr"] = lr

    class FloatScheduler:  # what schedulers of older torch releases do
        def step(self) -> None:
            parts.optimizer.param_groups[0]["lr"] = 0.5

    parts.lr_schedule = FloatScheduler()
    fast_train._step_schedule(parts)
    assert parts.optimizer.param_groups[0]["lr"] is lr and float(lr) == 0.5


def test_an_unfitting_fast_checkpoint_is_refused_before_anything_is_loaded(digits8, tmp_path, caplog):
    images, _ = digits8
    cfg = _cfg(recipe="fast", checkpoint_every=2, train_steps=3)
    train_model(images[:64], None, cfg, seed=1, device="cpu", ckpt_dir=tmp_path / "ckpt")  # leaves the step-2 one
    path = tmp_path / "ckpt" / fast_train.CKPT_FILE
    state = torch.load(path, weights_only=False)
    state["generators"] = [torch.zeros(16, dtype=torch.uint8)]  # a CUDA generator's state: unusable on CPU
    torch.save(state, path)
    out = train_model(images[:64], None, cfg, seed=1, device="cpu", ckpt_dir=tmp_path / "ckpt")
    assert "unusable" in caplog.text
    assert out.losses == train_model(images[:64], None, cfg, seed=1, device="cpu").losses
