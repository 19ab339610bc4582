"""Held-out sets and the memorization index (PAPER.md §3.7): brute-force references, the draws' determinism, and
that drawing them leaves a run as it was."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from collapse_utils.loop import heldout, rundir
from collapse_utils.core.config import make_config
from collapse_utils.measure.metrics import memorization_index
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
