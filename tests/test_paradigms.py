"""Training-set composition of every paradigm (sizes and sources), on small synthetic pools."""

import numpy as np
import pytest

from collapse_utils.core.config import make_config
from collapse_utils.loop.paradigms import Pool, build_training_set, even_counts, real_images_needed, subsample_evenly

N = 12


def _pool(size: int, source: int, labels: bool = False) -> Pool:
    images = np.full((size, 4, 4, 1), source, np.uint8)
    images[:, 0, 0, 0] = np.arange(size) % 256  # distinguishable images
    lab = (np.arange(size) % 10).astype(np.int64) if labels else None
    return Pool(images, np.full(size, source, np.int16), lab)


def _history(cfg, upto: int):
    return {g: _pool(cfg.samples_per_generation, g) for g in range(1, upto + 1)}


def _build(cfg, generation, *, select=None):
    real = _pool(real_images_needed(cfg), 0)
    hist = _history(cfg, generation - 1)
    return build_training_set(cfg, generation, real, hist.__getitem__, select=select)


def test_generation_one_is_real():
    cfg = make_config("smoke", n=N)
    t = _build(cfg, 1)
    assert len(t) == N and (t.sources == 0).all()


def test_replace_takes_the_first_n_of_the_previous_generation():
    cfg = make_config("smoke", n=N)
    t = _build(cfg, 3)
    assert len(t) == N and (t.sources == 2).all()
    np.testing.assert_array_equal(t.images[:, 0, 0, 0], np.arange(N))


def test_replace_2n_trains_on_2n_samples():
    cfg = make_config("smoke", n=N, paradigm="replace_2n")
    t = _build(cfg, 2)
    assert len(t) == 2 * N and (t.sources == 1).all()


def test_accumulate_subsample_draws_evenly_from_every_source():
    cfg = make_config("smoke", n=N, paradigm="accumulate_subsample")
    t = _build(cfg, 4)  # sources: real, 1, 2, 3
    assert len(t) == N
    np.testing.assert_array_equal(np.bincount(t.sources, minlength=4), [3, 3, 3, 3])
    t5 = _build(cfg.replace(n=10), 4)
    assert sorted(np.bincount(t5.sources, minlength=4)) == [2, 2, 3, 3]
    # no image is drawn twice
    keys = set(zip(t.sources.tolist(), t.images[:, 0, 0, 0].tolist()))
    assert len(keys) == N


def test_accumulate_grows_by_n_per_generation():
    cfg = make_config("smoke", n=N, paradigm="accumulate")
    for g in (2, 3, 4):
        t = _build(cfg, g)
        assert len(t) == N * g
        np.testing.assert_array_equal(np.bincount(t.sources), [N] * g)


def test_fresh_mixes_new_real_images_with_the_previous_generation():
    cfg = make_config("smoke", n=N, paradigm="fresh", fresh_fraction=0.25, generations=4)
    assert real_images_needed(cfg) == N + 3 * 3
    t2, t3 = _build(cfg, 2), _build(cfg, 3)
    for g, t in ((2, t2), (3, t3)):
        assert len(t) == N and (t.sources == 0).sum() == 3 and (t.sources == g - 1).sum() == N - 3
    # the fresh real images are new each generation, and never the initial n
    fresh2 = t2.images[t2.sources == 0, 0, 0, 0]
    fresh3 = t3.images[t3.sources == 0, 0, 0, 0]
    np.testing.assert_array_equal(fresh2, [12, 13, 14])
    np.testing.assert_array_equal(fresh3, [15, 16, 17])


def test_selection_pools_per_paradigm():
    seen = {}

    def spy(pool, k, seed, kind):
        seen["pool"], seen["k"], seen["kind"] = pool, k, kind
        return pool.take(np.arange(len(pool) - k, len(pool)))  # the last k

    cfg = make_config("smoke", n=N, selection="greedy")
    t = _build(cfg, 3, select=spy)
    assert seen["kind"] == "replace" and len(seen["pool"]) == 2 * N and (seen["pool"].sources == 2).all()
    assert len(t) == N

    cfg = make_config("smoke", n=N, paradigm="accumulate_subsample", selection="threshold")
    t = _build(cfg, 3, select=spy)
    assert seen["kind"] == "accumulate" and len(seen["pool"]) == 3 * N
    np.testing.assert_array_equal(np.bincount(seen["pool"].sources), [N, N, N])
    assert len(t) == N


def test_subsample_refuses_an_impossible_draw():
    with pytest.raises(ValueError, match="fewer than"):
        subsample_evenly([_pool(1, 0), _pool(1, 1)], 4, seed=0)


def test_even_counts():
    np.testing.assert_array_equal(even_counts(10, 4), [3, 3, 2, 2])
    assert even_counts(7, 7).sum() == 7
