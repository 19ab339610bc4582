"""The whole self-consuming loop at smoke scale: every paradigm, artifacts, resume, provenance, CLI."""

import json

import numpy as np
import pytest

from collapse_utils.__main__ import main as cli_main
from collapse_utils.core.config import PARADIGMS, make_config
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.loop.rundir import ConfigMismatchError, load_run

N = 16


def _cfg(**kw):
    base = dict(n=N, generations=3, train_steps=3, num_inference_steps=3, progress=False)
    base.update(kw)
    return make_config("smoke", **base)


PARADIGM_CASES = {
    "replace": dict(),
    "replace_2n": dict(paradigm="replace_2n"),
    "accumulate_subsample": dict(paradigm="accumulate_subsample"),
    "accumulate": dict(paradigm="accumulate"),
    "fresh": dict(paradigm="fresh", fresh_fraction=0.25),
    "replace+greedy": dict(selection="greedy"),
    "accumulate_subsample+threshold": dict(paradigm="accumulate_subsample", selection="threshold"),
}


def test_every_paradigm_is_covered():
    assert {c.get("paradigm", "replace") for c in PARADIGM_CASES.values()} == set(PARADIGMS)


@pytest.mark.parametrize("case", sorted(PARADIGM_CASES))
def test_smoke_loop_of_every_paradigm(case, tmp_path):
    cfg = _cfg(**PARADIGM_CASES[case])
    result = run_self_consuming(cfg, tmp_path / "run")
    assert [g.generation for g in result.generations] == [1, 2, 3]
    expected_train = {"replace_2n": [N, 2 * N, 2 * N], "accumulate": [N, 2 * N, 3 * N]}.get(cfg.paradigm, [N] * 3)
    for g, size in zip(result.generations, expected_train):
        train, sources, samples = g.train_images, g.train_sources, g.samples
        assert train.dtype == np.uint8 and train.shape == (size, 8, 8, 1)
        assert sources.shape == (size,) and samples.dtype == np.uint8
        assert samples.shape == (cfg.samples_per_generation, 8, 8, 1)
        assert set(np.unique(sources)) <= set(range(g.generation))
        assert (g.dir / "DONE").exists() and (g.dir / "model" / "model_index.json").exists()
        m = g.metrics
        assert m["train_size"] == size and np.isfinite(m["gs_pixel"]) and np.isfinite(m["entropy_pixel"])
        assert m["real_share"] == pytest.approx(np.mean(sources == 0))
    g3 = result.generations[2]
    if cfg.paradigm in ("replace", "replace_2n"):
        assert (g3.train_sources == 2).all()
    if cfg.paradigm == "accumulate_subsample" and cfg.selection == "none":
        np.testing.assert_array_equal(np.bincount(g3.train_sources), [6, 5, 5])
    if cfg.paradigm == "fresh":
        assert (g3.train_sources == 0).sum() == 4 and (g3.train_sources == 2).sum() == N - 4
    if cfg.selection == "greedy":
        # selected from the previous model's 2n samples: a subset of them
        prev = result.generations[1].samples.reshape(2 * N, -1)
        rows = {r.tobytes() for r in prev}
        assert all(r.tobytes() in rows for r in g3.train_images.reshape(N, -1))


def test_model_loads_as_a_ddpm_pipeline(tmp_path):
    from diffusers import DDPMPipeline

    result = run_self_consuming(_cfg(generations=1), tmp_path / "run")
    pipe = DDPMPipeline.from_pretrained(result.generations[0].dir / "model")
    assert pipe.unet.config.sample_size == 8 and pipe.scheduler.config.num_train_timesteps == 1000


def test_resume_skips_finished_generations(tmp_path):
    cfg = _cfg(generations=2)
    first = run_self_consuming(cfg, tmp_path / "run")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*.npy")}
    longer = run_self_consuming(cfg.replace(generations=3), tmp_path / "run", allow_config_change=True)
    assert len(longer.generations) == 3
    for p, t in stamps.items():
        assert p.stat().st_mtime_ns == t, f"{p} was rewritten"
    again = run_self_consuming(cfg, tmp_path / "run", allow_config_change=True)
    assert again.generations[1].metrics == first.generations[1].metrics


def test_same_seed_same_run_and_provenance(tmp_path):
    cfg = _cfg(generations=2)
    a = run_self_consuming(cfg, tmp_path / "a")
    b = run_self_consuming(cfg, tmp_path / "b")
    for ga, gb in zip(a.generations, b.generations):
        np.testing.assert_array_equal(ga.train_images, gb.train_images)
        np.testing.assert_array_equal(ga.samples, gb.samples)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == cfg.seed and manifest["config"]["n"] == N
    session = manifest["sessions"][0]
    assert session["versions"]["torch"] and "git_commit" in session and session["device"].startswith("cpu")
    real_idx = np.load(tmp_path / "a" / "real" / "indices.npy")
    assert len(real_idx) == N and len(np.unique(real_idx)) == N


def test_a_different_configuration_is_refused_with_the_keys_named(tmp_path):
    run_self_consuming(_cfg(generations=1), tmp_path / "run")
    with pytest.raises(ConfigMismatchError) as err:
        run_self_consuming(_cfg(generations=1, seed=5, lr=0.5), tmp_path / "run")
    assert "seed" in str(err.value) and "lr" in str(err.value) and "n:" not in str(err.value)


def test_load_run_reads_finished_generations(tmp_path):
    run_self_consuming(_cfg(generations=2), tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert [g.generation for g in loaded.generations] == [1, 2]
    rows = loaded.metrics_table()
    assert rows[0]["n"] == N and rows[1]["generation"] == 2


def test_cli_run(tmp_path, capsys):
    code = cli_main(["run", "--preset", "smoke", "--n", "12", "--generations", "2", "--train-steps", "2",
                     "--sample-steps", "2", "--selection", "greedy", "--no-progress", "--out", str(tmp_path / "cli")])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2] and rows[1]["selection"] == "greedy"


def test_cli_reports_bad_input_clearly(tmp_path, capsys):
    code = cli_main(["run", "--preset", "smoke", "--n", "0", "--out", str(tmp_path / "bad")])
    assert code == 2 and "n must be positive" in capsys.readouterr().err
