"""Held-out sets and the memorization index (PAPER.md §3.7): brute-force references, the draws' determinism, and
that drawing them leaves a run as it was."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from collapse_utils.loop import heldout, rundir
from collapse_utils.core.config import make_config
from collapse_utils.measure.metrics import memorization_index, real_reference_memorization
from collapse_utils.loop.run_metrics import ensure_figure_metrics, ensure_metrics
from collapse_utils.loop.store import ensure_runs


def _brute(generated, heldout_set, training, q=0.05):
    """The definition, with full distance matrices in float64."""
    g, h, d = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (generated, heldout_set, training))
    dg = np.sqrt(((g[:, None] - d[None]) ** 2).sum(-1)).min(1)
    dh = np.sqrt(((h[:, None] - d[None]) ** 2).sum(-1)).min(1)
    return np.median(dg) / np.median(dh), np.mean(dg < np.quantile(dh, q))


def test_matches_brute_force():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 7))
    gen = np.concatenate([train[:20] + rng.normal(scale=0.05, size=(20, 7)), rng.normal(size=(40, 7))])
    held = rng.normal(size=(80, 7))
    out = memorization_index(gen, held, train, device="cpu")
    index, rate = _brute(gen, held, train)
    assert out["mem_index"] == pytest.approx(index, rel=1e-5)
    assert out["copy_rate"] == pytest.approx(rate)
    assert 0 < out["mem_index"] < 1 and out["copy_rate"] >= 20 / 60  # the near-copies count


def test_copies_give_zero_and_fresh_draws_give_one():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(500, 16))
    copies = train[rng.integers(0, 500, size=2000)]
    copied = memorization_index(copies, rng.normal(size=(2000, 16)), train, device="cpu")
    assert copied["mem_index"] == pytest.approx(0.0, abs=1e-6)
    assert copied["copy_rate"] == pytest.approx(1.0)
    fresh = memorization_index(rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16)), train, device="cpu")
    assert 0.93 < fresh["mem_index"] < 1.07
    assert 0.03 < fresh["copy_rate"] < 0.08


def test_pixel_images_and_bad_inputs(digits8):
    images = digits8[0][:300]
    train, held, gen = images[:100], images[100:200], images[200:300]
    out = memorization_index(gen, held, train, device="cpu")
    assert out["mem_index"] == pytest.approx(_brute(gen, held, train)[0], rel=1e-5)
    with pytest.raises(ValueError, match="heldout is empty"):
        memorization_index(gen, images[:0], train, device="cpu")
    with pytest.raises(ValueError, match="same dimensions"):
        memorization_index(gen, held[:, :4, :4], train, device="cpu")
    with pytest.raises(ValueError, match="quantile"):
        memorization_index(gen, held, train, quantile=1.5, device="cpu")


def _nn(x, d):
    x, d = (np.asarray(a, np.float64).reshape(len(a), -1) for a in (x, d))
    return np.sqrt(((x[:, None] - d[None]) ** 2).sum(-1)).min(1)


def test_real_reference_matches_brute_force_and_decomposes_the_index():
    rng = np.random.default_rng(2)
    first = rng.normal(size=(70, 6))  # D_1
    reference = rng.normal(size=(90, 6))  # R': real draws no model trained on
    train = 0.5 * rng.normal(size=(50, 6))  # a contracted D_t
    held = 0.5 * rng.normal(size=(80, 6))  # fresh draws of D_t's source
    gen = np.concatenate([train[:15] + rng.normal(scale=0.02, size=(15, 6)), 0.5 * rng.normal(size=(45, 6))])
    out = real_reference_memorization(gen, held, train, reference, first, device="cpu")
    dg, dh, dr = _nn(gen, train), _nn(held, train), _nn(reference, first)
    m_r, tau_r = np.median(dr), np.quantile(dr, 0.05)
    assert out["copy_rate_real"] == pytest.approx(np.mean(dg < tau_r))
    assert out["rho"] == pytest.approx(np.median(dg) / m_r, rel=1e-5)
    assert out["contraction"] == pytest.approx(np.median(dh) / m_r, rel=1e-5)
    assert out["median_nn_reference"] == pytest.approx(m_r, rel=1e-5)
    assert out["copy_threshold_real"] == pytest.approx(tau_r, rel=1e-5)
    assert out["contraction"] < 1 and out["copy_rate_real"] > out["copy_rate"]  # the contracted source
    # the index and copy rate are memorization_index's, bit for bit, and rho = index x kappa
    alone = memorization_index(gen, held, train, device="cpu")
    assert {k: out[k] for k in alone} == alone
    assert out["rho"] == pytest.approx(out["mem_index"] * out["contraction"], rel=1e-12)


def test_real_reference_at_generation_one_is_the_index():
    """H_1 = R' and D_t = D_1: kappa = 1, rho = the index, and both copy rates agree."""
    rng = np.random.default_rng(3)
    first, reference = rng.normal(size=(60, 5)), rng.normal(size=(100, 5))
    gen = rng.normal(size=(100, 5))
    out = real_reference_memorization(gen, reference, first, reference, first, device="cpu")
    assert out["contraction"] == 1.0 and out["rho"] == out["mem_index"]
    assert out["copy_rate_real"] == out["copy_rate"]
    copies = real_reference_memorization(first[rng.integers(0, 60, 200)], reference, first, reference, first,
                                         device="cpu")
    assert copies["rho"] == pytest.approx(0.0, abs=1e-6) and copies["copy_rate_real"] == 1.0
    with pytest.raises(ValueError, match="same dimensions"):
        real_reference_memorization(gen, reference, first, reference[:, :4], first[:, :4], device="cpu")
    with pytest.raises(ValueError, match="reference is empty"):
        real_reference_memorization(gen, reference, first, reference[:0], first, device="cpu")


def test_split_counts_follow_the_training_set_shares():
    assert heldout.split_counts({0: 43, 1: 43, 2: 42}, 1000) == {0: 336, 1: 336, 2: 328}
    assert heldout.split_counts({3: 128}, 1000) == {3: 1000}
    assert sum(heldout.split_counts({0: 1, 1: 2, 2: 3}, 7).values()) == 7
    with pytest.raises(ValueError):
        heldout.split_counts({}, 10)


def test_loop_refuses_held_out_metrics():
    with pytest.raises(ValueError, match="held-out images after the run"):
        make_config("smoke", metrics=("gs_pixel", "mem_index_pixel"))


def _file_digests(run_dir):
    """Every file of the run but metrics.json and the held-out folders, with its sha256; of the hash records
    (which renew with the metrics they vouch for: hashes.json's metrics entry and DONE's hash of the record)
    what else they hold."""
    import json

    out = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir)
        if not p.is_file() or p.name == "metrics.json" or "heldout" in rel.parts:
            continue
        if p.name in ("hashes.json", "DONE"):
            out[str(rel)] = {k: v for k, v in json.loads(p.read_text()).items()
                             if k not in ("metrics.json", "record", "check")}
        else:
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout_runs")
    cfgs = [make_config("smoke", n=32, generations=3, progress=False, tracker="none"),
            make_config("smoke", n=32, generations=3, paradigm="accumulate_subsample", progress=False,
                        tracker="none")]
    return ensure_runs(cfgs, root, workers=1)


def test_drawing_held_out_sets_leaves_the_run_as_it_was(smoke_runs):
    run = smoke_runs[0]
    before = _file_digests(run.run_dir)
    metrics_before = [dict(g.metrics) for g in run.generations]
    ensure_figure_metrics([run], ["mem_index_pixel", "copy_rate_pixel"], heldout_samples=64)
    assert _file_digests(run.run_dir) == before
    reloaded = rundir.load_run(run.run_dir)
    for old, g in zip(metrics_before, reloaded.generations):
        assert {k: g.metrics[k] for k in old} == old  # existing metrics untouched
        assert g.metrics["mem_index_pixel_samples"] == 64 and 0 <= g.metrics["copy_rate_pixel"] <= 1
        # the real-referenced metrics come from the same draws: rho = index x kappa
        assert g.metrics["rho_pixel"] == pytest.approx(g.metrics["mem_index_pixel"] * g.metrics["contraction_pixel"],
                                                       rel=1e-12)
        assert 0 <= g.metrics["copy_rate_real_pixel"] <= 1
    g1 = reloaded.generations[0].metrics  # H_1 is the real reference itself
    assert g1["contraction_pixel"] == 1.0 and g1["rho_pixel"] == g1["mem_index_pixel"]
    assert g1["copy_rate_real_pixel"] == g1["copy_rate_pixel"]
    # replace: H_1 are held-out real images, H_t (t >= 2) held-out samples of the model before
    assert [g.metrics["heldout_sources"] for g in reloaded.generations] == [{"0": 64}, {"1": 64}, {"2": 64}]
    # recomputing GS from the stored artifacts gives the stored value: D_t and G_t are what they were
    g1 = reloaded.generations[0]
    recomputed = ensure_metrics(rundir.RunResult(run.config, run.run_dir, [
        rundir.GenerationResult(1, g1.dir, {})]), ["gs_pixel"]).generations[0].metrics["gs_pixel"]
    assert recomputed == pytest.approx(metrics_before[0]["gs_pixel"], rel=1e-6)


def test_held_out_samples_are_seeded_and_prefix_consistent(smoke_runs):
    run = smoke_runs[0]
    first = heldout.heldout_samples(run, 2, 600)
    again = heldout.heldout_samples(run, 2, 40)
    assert np.array_equal(first[:40], again)
    import shutil

    shutil.rmtree(rundir.heldout_path(rundir.gen_dir(run.run_dir, 2)))
    assert np.array_equal(heldout.heldout_samples(run, 2, 600), first)  # drawn afresh: the same images
    assert not np.array_equal(heldout.heldout_samples(run, 1, 40), first[:40])  # each model its own seed
    assert not any(np.array_equal(first[i], s) for i in range(40) for s in run.generations[1].samples[:8])


def test_accumulate_held_out_set_follows_the_source_mix(smoke_runs):
    run = smoke_runs[1]
    g3 = run.generations[2]
    held, shares = heldout.heldout_set(run, 3, 90)
    sources, counts = np.unique(g3.train_sources, return_counts=True)
    assert sorted(shares) == sorted(int(s) for s in sources)
    assert sum(shares.values()) == len(held) == 90
    expected = heldout.split_counts({int(s): int(c) for s, c in zip(sources, counts)}, 90)
    assert shares == expected


def test_no_held_out_real_images_is_a_clear_error(tmp_path):
    cfg = make_config("smoke", dataset="digits", n=1797, generations=1, progress=False, tracker="none")
    assert heldout.held_out_real(cfg, 10) is None
    with pytest.raises(heldout.HeldOutUnavailableError, match="no 20 real images"):
        heldout.real_reference(cfg, 10)


def test_a_weights_free_copy_lacking_the_real_reference_is_left_as_it_is(smoke_runs, tmp_path, caplog):
    """A results bundle written before the real-referenced metrics cannot draw held-out samples: it keeps lacking
    them (a warning, nothing written) and F2 is drawn without their panels."""
    from collapse_utils.core.vocab import MEMORIZATION_METRICS, REAL_REFERENCE_METRICS
    from collapse_utils.paper.plotting import plot_f2

    run = smoke_runs[1]  # (the first one's generation 1 metrics.json was rewritten above)
    ensure_figure_metrics([run], MEMORIZATION_METRICS, heldout_samples=64)
    copy_dir = rundir.copy_results(run.run_dir, tmp_path / "bundle" / run.run_dir.name)
    for g in rundir.load_run(copy_dir).generations:  # as an older bundle holds it
        for m in REAL_REFERENCE_METRICS:
            g.metrics.pop(m)
        g.write_metrics()
    before = {p: p.read_bytes() for p in copy_dir.rglob("*") if p.is_file()}
    copy = rundir.load_run(copy_dir)
    with caplog.at_level("WARNING"):
        ensure_figure_metrics([copy], MEMORIZATION_METRICS, heldout_samples=64)
    assert "weights-free copy" in caplog.text
    assert {p: p.read_bytes() for p in copy_dir.rglob("*") if p.is_file()} == before
    out = plot_f2([copy], tmp_path / "fig")
    assert set(out.data["metric"]) == {"gs_pixel", "mem_index_pixel", "copy_rate_pixel"}


def test_real_reference_in_lenet_space_from_the_same_draws(smoke_runs):
    """rho_lenet, copy_rate_real_lenet and contraction_lenet are the real-referenced metrics of the same draws
    (G_t, H_t, D_t, R′ = H_1, D_1) with every image mapped to LeNet features first (PAPER.md §3.7)."""
    from collapse_utils.core.vocab import REAL_REFERENCE_FEATURE_METRICS
    from collapse_utils.measure.features import extract_features
    from collapse_utils.measure.metrics import real_reference_memorization

    run = smoke_runs[0]
    names = [m for m, s in REAL_REFERENCE_FEATURE_METRICS.items() if s == "lenet"]
    ensure_figure_metrics([run], names, heldout_samples=64)
    reloaded = rundir.load_run(run.run_dir)
    first = reloaded.generations[0]
    reference = heldout.held_out_real(run.config, 64)
    lenet = lambda x: extract_features(x, "lenet")  # noqa: E731
    for g in reloaded.generations:
        held, _ = heldout.heldout_set(reloaded, g.generation, 64)
        want = real_reference_memorization(lenet(heldout.heldout_samples(reloaded, g.generation, 64)), lenet(held),
                                           lenet(g.train_images), lenet(reference), lenet(first.train_images))
        assert g.metrics["real_reference_lenet_samples"] == 64
        assert g.metrics["rho_lenet"] == pytest.approx(want["rho"], rel=1e-6)
        assert g.metrics["contraction_lenet"] == pytest.approx(want["contraction"], rel=1e-6)
        assert g.metrics["copy_rate_real_lenet"] == pytest.approx(want["copy_rate_real"])
        assert g.metrics["rho_lenet"] != pytest.approx(g.metrics["rho_pixel"])  # another space, another value
    assert first.metrics["contraction_lenet"] == 1.0  # H_1 is R′ itself
    # asked again: nothing is recomputed, the file is not rewritten
    stamp = [(g.dir / "metrics.json").stat().st_mtime_ns for g in reloaded.generations]
    ensure_figure_metrics([reloaded], names, heldout_samples=64)
    assert [(g.dir / "metrics.json").stat().st_mtime_ns for g in reloaded.generations] == stamp


def test_real_reference_in_an_unavailable_space_fails_before_writing(smoke_runs, monkeypatch):
    """DINOv2 without its weights: the request fails with the features' error and no metrics.json changes."""
    from collapse_utils.loop import run_metrics
    from collapse_utils.measure.features import FeatureSpaceUnavailableError

    def unavailable(images, space, device=None):
        if space == "dinov2":
            raise FeatureSpaceUnavailableError("could not load 'facebook/dinov2-small' (test)")
        return run_metrics.extract_features(images, space, device=device)

    monkeypatch.setattr(run_metrics, "_features", unavailable)
    run = smoke_runs[1]
    before = {g.generation: (g.dir / "metrics.json").read_bytes() for g in run.generations}
    with pytest.raises(FeatureSpaceUnavailableError, match="dinov2-small"):
        ensure_figure_metrics([run], ["rho_dinov2"], heldout_samples=64)
    assert {g.generation: (g.dir / "metrics.json").read_bytes() for g in run.generations} == before
