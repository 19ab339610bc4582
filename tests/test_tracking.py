"""Tracking: each generation's loss curve, metrics and sample grid go to TensorBoard (default, <run_dir>/tb/),
wandb or nowhere; a chosen tracker that is not installed stops the run before anything is written; the tracker
choice is left out of the run key."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from collapse_utils.loop import rundir, tracking
from collapse_utils.core.config import EXECUTION_FIELDS, RunConfig, make_config
from collapse_utils.loop.run import run_self_consuming

STEPS = 4


def smoke(**kw) -> RunConfig:
    values = dict(n=16, generations=2, train_steps=STEPS, num_inference_steps=3, progress=False)
    return make_config("smoke", **{**values, **kw})


def _scalars(tb_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_every_generations_loss_and_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    result = run_self_consuming(smoke(), run)
    scalars = _scalars(run / "tb")
    losses = [json.loads((rundir.gen_dir(run, g) / "train_log.json").read_text())["losses"] for g in (1, 2)]
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 2 * STEPS + 1))  # (g-1)*train_steps + step
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(losses[0] + losses[1], rel=1e-6)
    gs = scalars["metrics/gs_pixel"]
    assert [s for s, _ in gs] == [1, 2]
    assert [v for _, v in gs] == pytest.approx([g.metrics["gs_pixel"] for g in result.generations], rel=1e-6)
    assert "metrics/recipe" not in scalars and not any(t.startswith("metrics/timings") for t in scalars)

    # a finished run logs nothing again (no new event file)
    before = sorted(p.name for p in (run / "tb").iterdir())
    run_self_consuming(smoke(), run)
    assert sorted(p.name for p in (run / "tb").iterdir()) == before


def _images(tb_dir) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: acc.Images(tag) for tag in acc.Tags()["images"]}


def test_tensorboard_holds_every_generations_sample_grid(tmp_path):
    """Read back with TensorBoard's own event reader: one image per generation at step g, the pixels of that
    generation's samples.png (grey grids are stored as RGB with three equal channels)."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    run_self_consuming(smoke(conditional=True), run)
    images = _images(run / "tb")
    assert list(images) == [tracking.SAMPLES_TAG]
    events = images[tracking.SAMPLES_TAG]
    assert [e.step for e in events] == [1, 2]
    for g, event in zip((1, 2), events):
        want = np.asarray(Image.open(rundir.gen_dir(run, g) / "samples.png"))
        got = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
        assert (event.height, event.width) == want.shape[:2] == got.shape[:2]
        assert got.ndim == 3 and all(np.array_equal(got[..., c], want) for c in range(3))
    # the two generations' grids differ (each is its own generation's samples)
    assert events[0].encoded_image_string != events[1].encoded_image_string


def test_a_resumed_run_logs_only_the_generations_it_computes(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop(gen):
        raise Stop  # the run stops after generation 1 was finished and logged

    with pytest.raises(Stop):
        run_self_consuming(smoke(), run, on_generation=stop)
    assert not rundir.is_done(run, 2)
    run_self_consuming(smoke(), run)  # resumes: computes and logs generation 2 only
    scalars = _scalars(run / "tb")
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 2 * STEPS + 1))  # each step once
    assert [s for s, _ in scalars["metrics/gs_pixel"]] == [1, 2]
    assert [e.step for e in _images(run / "tb")[tracking.SAMPLES_TAG]] == [1, 2]


def test_tracker_none_writes_no_tb(tmp_path):
    run = tmp_path / "run"
    run_self_consuming(smoke(tracker="none"), run)
    assert (rundir.gen_dir(run, 2) / "DONE").exists() and not (run / "tb").exists()


def test_auto_without_tensorboard_is_no_tracking(tmp_path, monkeypatch):
    monkeypatch.setitem(tracking.INSTALLED, "tensorboard", lambda: False)
    assert tracking.resolve_tracker("auto") is None
    with pytest.raises(tracking.TrackerMissingError, match="tensorboard"):
        tracking.resolve_tracker("tensorboard")


def test_a_chosen_tracker_that_is_missing_fails_at_start_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(tracking.INSTALLED, "wandb", lambda: False)
    run = tmp_path / "run"
    with pytest.raises(tracking.TrackerMissingError, match=r"package wandb.*pip install wandb"):
        run_self_consuming(smoke(tracker="wandb"), run)
    assert not run.exists()


def test_an_unknown_tracker_is_refused():
    with pytest.raises(ValueError, match="tracker"):
        smoke(tracker="mlflow")


def test_tracker_is_an_execution_field_left_out_of_the_run_key():
    assert "tracker" in EXECUTION_FIELDS
    assert make_config("demo").run_key() == "94b0468b5483"
    assert make_config("paper").run_key() == "6a92831ffd3c"
    assert make_config("demo", tracker="none").run_key() == make_config("demo").run_key()
    old = make_config("demo").to_dict()
    del old["tracker"]  # a config.json written before the field existed
    loaded = RunConfig.from_dict(old)
    assert loaded.tracker == "auto" and loaded.run_key() == "94b0468b5483"


def test_wandb_gets_each_series_against_its_own_step(tmp_path, monkeypatch):
    """wandb (a stand-in module here): losses against train/global_step, metrics against generation, one run
    per run directory resumed by id, its files in the run directory."""
    import sys
    import types

    calls: dict = {"log": [], "define": [], "finished": 0}

    class FakeRun:
        def log(self, values, step=None, **kw):
            assert step is None  # wandb's own step only grows: the series carry their own steps
            calls["log"].append(dict(values))

        def define_metric(self, name, step_metric=None, **kw):
            calls["define"].append((name, step_metric))

        def finish(self):
            calls["finished"] += 1

    def init(**kw):
        calls["init"] = kw
        return FakeRun()

    class FakeImage:
        def __init__(self, data, caption=None):
            self.data, self.caption = np.asarray(data), caption

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init, Image=FakeImage))
    monkeypatch.setitem(tracking.INSTALLED, "wandb", lambda: True)
    run = tmp_path / "run"
    cfg = smoke(tracker="wandb")
    result = run_self_consuming(cfg, run)
    assert calls["init"]["dir"] == str(run) and calls["init"]["resume"] == "allow"
    assert calls["init"]["id"].startswith(cfg.run_key())
    assert ("train/*", "train/global_step") in calls["define"] and ("metrics/*", "generation") in calls["define"]
    losses = [c for c in calls["log"] if "train/loss" in c]
    assert [c["train/global_step"] for c in losses] == list(range(1, 2 * STEPS + 1))
    rows = [c for c in calls["log"] if "generation" in c]
    assert [r["generation"] for r in rows] == [1, 2]
    assert [r["metrics/gs_pixel"] for r in rows] == pytest.approx([g.metrics["gs_pixel"] for g in result.generations])
    assert (tracking.SAMPLES_TAG, "generation") in calls["define"]
    for g, r in zip((1, 2), rows):  # each generation's grid in its metrics row, against the generation
        grid = np.asarray(Image.open(rundir.gen_dir(run, g) / "samples.png"))
        np.testing.assert_array_equal(r[tracking.SAMPLES_TAG].data[..., 0], grid)
    assert calls["finished"] == 1 and not rundir.tb_dir(run).exists()
