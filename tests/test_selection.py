"""Algorithms 1 and 2 (PAPER.md §4) against brute-force references and hand-worked cases."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from collapse_utils.loop import selection as S


# ----------------------------------------------------------------------------------------- references
def naive_greedy(x: np.ndarray, n: int, first: int) -> np.ndarray:
    """Algorithm 1 verbatim, O(N * n) with exact float64 distances; ties -> lowest index."""
    x = x.astype(np.float64)
    picked = [first]
    for _ in range(n - 1):
        d = cdist(x, x[picked]).min(1)
        d[picked] = -np.inf
        picked.append(int(np.argmax(d)))
    return np.array(picked)


def first_of(seed: int, pool: int) -> int:
    return int(np.random.default_rng(seed).integers(pool))


def visiting_order(seed: int, pool: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(pool)


def place_in_visit_order(values, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """1-d features whose p-th visited candidate has value values[p]; also returns the visiting order."""
    order = visiting_order(seed, len(values))
    feats = np.zeros((len(values), 1), np.float32)
    feats[order, 0] = values
    return feats, order


# ----------------------------------------------------------------------------------------- greedy
@pytest.mark.parametrize("seed,dim", [(0, 2), (1, 16), (2, 64)])
def test_greedy_matches_naive_on_gaussian_data(seed, dim):
    x = np.random.default_rng(seed).normal(size=(300, dim)).astype(np.float32)
    got = S.greedy_selection(x, 80, seed=seed)
    assert got.dtype == np.int64 and len(got) == 80 and len(set(got.tolist())) == 80
    np.testing.assert_array_equal(got, naive_greedy(x, 80, first_of(seed, 300)))


def test_greedy_matches_naive_with_ties_and_duplicates():
    # Integer grid with repeated points: many exactly equal distances, broken by the lowest index.
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(120, 2)).astype(np.float32)
    got = S.greedy_selection(x, 120, seed=7)
    np.testing.assert_array_equal(got, naive_greedy(x, 120, first_of(7, 120)))


def test_greedy_pixel_scale_matches_naive():
    # uint8-valued 3072-d data, the paper's pixel space, where ||x||^2 + ||y||^2 - 2xy cancels badly.
    x = np.random.default_rng(3).integers(0, 256, size=(150, 3072)).astype(np.float32)
    np.testing.assert_array_equal(S.greedy_selection(x, 40, seed=11), naive_greedy(x, 40, first_of(11, 150)))


def test_greedy_hand_worked_line():
    # Points on a line; start at 0 -> farthest is 10, then 5 (distance 5) vs 4 (4) -> 5, then ties at
    # distance 2 ... the exact order below is worked by hand.
    values = np.array([0.0, 10.0, 5.0, 4.0, 7.0, 2.0])
    feats = values[:, None].astype(np.float32)
    seed = next(s for s in range(100) if first_of(s, 6) == 0)
    # after {0}: 10 (idx1); after {0,10}: 5 -> idx2; after {0,10,5}: d = [., ., ., 1, 2, 2] -> tie 7 vs 2,
    # lowest index wins -> idx4 (7); then d(2)=2 -> idx5; then 4 -> idx3.
    np.testing.assert_array_equal(S.greedy_selection(feats, 6, seed=seed), [0, 1, 2, 4, 5, 3])


def test_greedy_first_point_depends_on_seed_and_is_uniform():
    x = np.random.default_rng(0).normal(size=(10, 3))
    firsts = [int(S.greedy_selection(x, 1, seed=s)[0]) for s in range(400)]
    counts = np.bincount(firsts, minlength=10)
    assert counts.min() > 15  # 40 expected per point
    assert S.greedy_selection(x, 3, seed=1).tolist() == S.greedy_selection(x, 3, seed=1).tolist()


def test_greedy_increases_min_distance_over_random():
    x = np.random.default_rng(4).normal(size=(400, 8))
    g = S.greedy_selection(x, 50)
    r = S.random_selection(x, 50)
    pdist = lambda idx: np.sort(cdist(x[idx], x[idx]), 1)[:, 1].min()
    assert pdist(g) > pdist(r)


# ----------------------------------------------------------------------------------------- threshold filter
@pytest.mark.parametrize("schedule,passes", [("every_pass", 3), ("when_stalled", 5)])
def test_filter_hand_worked_both_schedules(schedule, passes):
    # Visiting order (positions) with values 0, 1, 5, 2, 9, 3; tau0 = 3, alpha = 0.5, n = 6.
    # every_pass:  pass 1 (tau 3): accept 0; 1 (d=1) no; 5 (d=5) yes; 2 (d=2) no; 9 (d=4) yes; 3 (d=2) no.
    #              tau -> 1.5. pass 2: 1 (d=1) no; 2 (d=2) yes; 3 (d=1) no. tau -> 0.75.
    #              pass 3: 1 (d=1) yes; 3 (d=1) yes -> 6 points, 3 passes.
    # when_stalled: pass 1 as above, tau stays 3; pass 2 (tau 3) adds nothing -> 1.5; pass 3 adds 2 only;
    #              pass 4 (tau 1.5) adds nothing -> 0.75; pass 5 adds 1 and 3 -> same picks, 5 passes.
    seed = 3
    feats, order = place_in_visit_order([0, 1, 5, 2, 9, 3], seed)
    idx, info = S.threshold_decay_filter(feats, 6, threshold=3, decay=0.5, seed=seed, schedule=schedule,
                                         return_info=True)
    np.testing.assert_array_equal(idx, order[[0, 2, 4, 3, 1, 5]])
    assert info["passes"] == passes
    assert info["final_threshold"] == pytest.approx(0.75)


@pytest.mark.parametrize("schedule", S.FILTER_SCHEDULES)
def test_filter_stops_at_n_and_checks_growing_pool(schedule):
    # n = 4 stops inside pass 2 (every_pass) right after accepting value 2; the 3 is never added.
    seed = 3
    feats, order = place_in_visit_order([0, 1, 5, 2, 9, 3], seed)
    idx = S.threshold_decay_filter(feats, 4, threshold=3, decay=0.5, seed=seed, schedule=schedule)
    np.testing.assert_array_equal(idx, order[[0, 2, 4, 3]])


@pytest.mark.parametrize("schedule", S.FILTER_SCHEDULES)
def test_filter_empty_passes_decay_until_something_fits(schedule):
    # Values 0, 10, 3 with tau0 = 100, alpha = 0.5: passes at 100, 50, 25, 12.5 add nothing; at 6.25 the 10
    # (d = 10) is accepted. 5 passes in both schedules.
    seed = 0
    feats, order = place_in_visit_order([0, 10, 3], seed)
    idx, info = S.threshold_decay_filter(feats, 2, threshold=100, decay=0.5, seed=seed, schedule=schedule,
                                         return_info=True)
    np.testing.assert_array_equal(idx, order[[0, 1]])
    assert info == {"passes": 5, "final_threshold": 6.25, "padded": 0}


def test_filter_uses_strict_inequality():
    # d = 2 is not > tau = 2: rejected in pass 1, accepted after decaying to 1.
    feats, order = place_in_visit_order([0, 2], 0)
    idx, info = S.threshold_decay_filter(feats, 2, threshold=2, decay=0.5, seed=0, return_info=True)
    np.testing.assert_array_equal(idx, order)
    assert info["passes"] == 2 and info["final_threshold"] == 1.0


def test_filter_pads_with_duplicates_instead_of_looping_forever():
    feats = np.zeros((4, 2), np.float32)
    with pytest.warns(UserWarning, match="duplicates"):
        idx, info = S.threshold_decay_filter(feats, 3, threshold=1, decay=0.5, seed=2, return_info=True)
    np.testing.assert_array_equal(idx, visiting_order(2, 4)[:3])
    assert info["padded"] == 2


def naive_filter(x, n, threshold, decay, seed, schedule):
    """Algorithm 2 written literally (pass by pass, no skipping), exact float64 distances."""
    x = x.astype(np.float64)
    order = list(visiting_order(seed, len(x)))
    picked, rest, tau = [order[0]], order[1:], float(threshold)
    while len(picked) < n:
        added, kept = False, []
        for j in rest:
            if len(picked) < n and cdist(x[[j]], x[picked]).min() > tau:
                picked.append(j)
                added = True
            else:
                kept.append(j)
        rest = kept
        if schedule == "every_pass" or not added:
            tau *= decay
    return np.array(picked)


@pytest.mark.parametrize("schedule", S.FILTER_SCHEDULES)
@pytest.mark.parametrize("seed", [0, 1])
def test_filter_matches_literal_algorithm(schedule, seed):
    x = np.random.default_rng(seed).normal(size=(200, 6)).astype(np.float32)
    got = S.threshold_decay_filter(x, 60, threshold=5.0, decay=0.9, seed=seed, schedule=schedule)
    np.testing.assert_array_equal(got, naive_filter(x, 60, 5.0, 0.9, seed, schedule))


def test_filter_schedules_agree_on_random_data():
    x = np.random.default_rng(9).normal(size=(500, 10)).astype(np.float32)
    a = S.threshold_decay_filter(x, 200, threshold=20, decay=0.8, seed=4, schedule="every_pass")
    b = S.threshold_decay_filter(x, 200, threshold=20, decay=0.8, seed=4, schedule="when_stalled")
    np.testing.assert_array_equal(a, b)


def test_filter_tau_bounds_pairwise_distances():
    # Every accepted point was > tau_final away from all earlier ones (tau only shrinks).
    x = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32)
    idx, info = S.threshold_decay_filter(x, 100, threshold=8, decay=0.9, return_info=True)
    d = cdist(x[idx], x[idx])
    np.fill_diagonal(d, np.inf)
    assert d.min() > info["final_threshold"]


@pytest.mark.parametrize("block", [3, 7])
def test_block_execution_matches_step_by_step(monkeypatch, block):
    """The blocked, masked device loop used on CUDA (here forced on CPU) gives the same picks."""
    monkeypatch.setattr(S, "_block_size", lambda device: block)
    x = np.random.default_rng(2).normal(size=(120, 5)).astype(np.float32)
    np.testing.assert_array_equal(S.greedy_selection(x, 50, seed=2), naive_greedy(x, 50, first_of(2, 120)))
    np.testing.assert_array_equal(S.greedy_selection(x, 120, seed=2), naive_greedy(x, 120, first_of(2, 120)))
    for schedule in S.FILTER_SCHEDULES:
        got = S.threshold_decay_filter(x, 40, threshold=4.0, decay=0.9, seed=1, schedule=schedule)
        np.testing.assert_array_equal(got, naive_filter(x, 40, 4.0, 0.9, 1, schedule))
    feats, order = place_in_visit_order([0, 1, 5, 2, 9, 3], 3)
    idx, info = S.threshold_decay_filter(feats, 6, threshold=3, decay=0.5, seed=3, return_info=True)
    np.testing.assert_array_equal(idx, order[[0, 2, 4, 3, 1, 5]])
    assert info["passes"] == 3


# ----------------------------------------------------------------------------------------- baselines, dispatcher
def test_none_and_random():
    x = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_array_equal(S.select("none", x, 7), np.arange(7))
    r = S.select("random", x, 20, seed=1)
    assert r.dtype == np.int64 and len(set(r.tolist())) == 20 and r.max() < 50
    np.testing.assert_array_equal(r, S.select("random", x, 20, seed=1))
    assert not np.array_equal(r, S.select("random", x, 20, seed=2))


def test_select_dispatches():
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    np.testing.assert_array_equal(S.select("greedy", x, 10, seed=3), S.greedy_selection(x, 10, seed=3))
    np.testing.assert_array_equal(
        S.select("threshold", x, 10, seed=3, threshold=3.0, decay=0.9),
        S.threshold_decay_filter(x, 10, threshold=3.0, decay=0.9, seed=3))


def test_select_accepts_uint8_images():
    imgs = np.random.default_rng(0).integers(0, 256, size=(30, 4, 4, 3), dtype=np.uint8)
    flat = imgs.reshape(30, -1).astype(np.float32)
    np.testing.assert_array_equal(S.select("greedy", imgs, 5), S.select("greedy", flat, 5))


def test_default_filter_params():
    assert S.default_filter_params("dinov2", "replace") == {"threshold": 60.0, "decay": 0.95}
    assert S.default_filter_params("dinov2", "accumulate") == {"threshold": 60.0, "decay": 0.80}
    assert S.default_filter_params("pixel", "replace") == {"threshold": 2000.0, "decay": 0.95}
    assert S.default_filter_params("pixel", "accumulate") == {"threshold": 2000.0, "decay": 0.95}
    assert S.default_filter_params("inception", "replace") == {"threshold": 10.0, "decay": 0.95}
    assert S.default_filter_params("inception", "accumulated") == {"threshold": 10.0, "decay": 0.80}
    with pytest.raises(ValueError, match="paradigm"):
        S.default_filter_params("pixel", "grow")
    with pytest.raises(ValueError, match="feature space"):
        S.default_filter_params("clip", "replace")


# ----------------------------------------------------------------------------------------- bad input
X = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
ALL = [("none", {}), ("random", {}), ("greedy", {}), ("threshold", {"threshold": 1.0, "decay": 0.9})]


@pytest.mark.parametrize("method,params", ALL)
def test_n_larger_than_pool(method, params):
    with pytest.raises(ValueError, match="pool of only 10"):
        S.select(method, X, 11, **params)


@pytest.mark.parametrize("method,params", ALL)
def test_empty_input(method, params):
    with pytest.raises(ValueError, match="empty"):
        S.select(method, np.zeros((0, 3), np.float32), 0, **params)


@pytest.mark.parametrize("method,params", ALL)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(method, params, bad):
    x = X.copy()
    x[4, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        S.select(method, x, 3, **params)


@pytest.mark.parametrize("threshold", [0.0, -1.0, np.nan])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        S.select("threshold", X, 3, threshold=threshold, decay=0.9)
    with pytest.raises(ValueError, match="threshold"):
        S.threshold_decay_filter(X, 3, threshold=threshold, decay=0.9)


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.2])
def test_bad_decay(decay):
    with pytest.raises(ValueError, match=r"decay must lie in the open interval \(0, 1\)"):
        S.select("threshold", X, 3, threshold=1.0, decay=decay)


def test_other_bad_input():
    with pytest.raises(ValueError, match="unknown selection method"):
        S.select("kmeans", X, 3)
    with pytest.raises(ValueError, match="needs `threshold` and `decay`"):
        S.select("threshold", X, 3)
    with pytest.raises(ValueError, match="unknown schedule"):
        S.select("threshold", X, 3, threshold=1.0, decay=0.5, schedule="sometimes")
    with pytest.raises(ValueError, match="takes no parameter"):
        S.select("greedy", X, 3, threshold=1.0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        S.select("greedy", X, -1)
    with pytest.raises(ValueError, match="one row per sample"):
        S.select("greedy", X[0], 1)


# ---------------------------------------------------------------------------------------------- matched tau_0
def test_matched_threshold_is_the_quantile_of_the_pools_nearest_neighbour_distances():
    from collapse_utils.loop.selection import matched_threshold, nearest_neighbour_distances

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    brute = d.min(axis=1)
    np.testing.assert_allclose(nearest_neighbour_distances(x, device="cpu", block=64), brute, rtol=1e-4)
    assert matched_threshold(x, 0.9, device="cpu") == pytest.approx(np.quantile(brute, 0.9), rel=1e-4)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="threshold_quantile"):
            matched_threshold(x, bad)


def test_threshold_quantile_starts_the_filter_at_the_matched_threshold():
    from collapse_utils.loop.selection import matched_threshold

    rng = np.random.default_rng(4)
    x = (rng.normal(size=(120, 8)) * 50).astype(np.float32)
    tau = matched_threshold(x, 0.8, device="cpu")
    got = S.select("threshold", x, 40, seed=2, threshold=1e6, decay=0.9, threshold_quantile=0.8, device="cpu")
    want = S.threshold_decay_filter(x, 40, threshold=tau, decay=0.9, seed=2, device="cpu")
    np.testing.assert_array_equal(got, want)
    # a fixed tau_0 far above the pool's scale picks differently: the option changes the selection
    fixed = S.select("threshold", x, 40, seed=2, threshold=1e6, decay=0.9, device="cpu")
    assert set(got.tolist()) != set(fixed.tolist())


def test_threshold_quantile_is_a_run_option_that_leaves_default_keys_alone():
    from collapse_utils.core.config import make_config

    base = make_config("smoke", selection="threshold", n=16)
    matched = make_config("smoke", selection="threshold", n=16, selection_params={"threshold_quantile": 0.9})
    assert matched.run_key() != base.run_key()
    assert make_config("smoke", selection="threshold", n=16, selection_params={}).run_key() == base.run_key()
