"""Metrics of PAPER.md §3 against brute-force references (numpy / scipy) and analytic values."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.special import digamma, gammaln

from collapse_utils.measure import metrics as M


def brute_knn(q, r, k, exclude_self=False):
    d = cdist(q.astype(np.float64), r.astype(np.float64))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]  # stable: ties -> lowest index
    return np.take_along_axis(d, idx, 1), idx


@pytest.fixture
def small_blocks(monkeypatch):
    """Force many query / reference chunks so the chunking code paths are exercised on small data."""
    monkeypatch.setattr(M, "_BLOCK_ELEMS", 700)


# ----------------------------------------------------------------------------------------- kNN
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbors_matches_cdist(k, exclude_self, small_blocks):
    rng = np.random.default_rng(k)
    r = rng.normal(size=(157, 11)).astype(np.float32)
    q = r if exclude_self else rng.normal(size=(61, 11)).astype(np.float32)
    d, i = M.nearest_neighbors(q, r, k=k, exclude_self=exclude_self)
    bd, bi = brute_knn(q, r, k, exclude_self)
    assert d.shape == (len(q), k) and d.dtype == np.float32 and i.dtype == np.int64
    np.testing.assert_allclose(d, bd, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(i, bi)


def test_nearest_neighbors_pixel_scale_duplicates_and_ties(small_blocks):
    # uint8-valued 3072-d rows with exact duplicates: their distance must be exactly 0 (float32
    # ||x||^2 + ||y||^2 - 2xy alone would leave an error of several units), ties -> lowest index.
    rng = np.random.default_rng(0)
    r = rng.integers(0, 256, size=(40, 3072)).astype(np.float32)
    r[[7, 21, 33]] = r[3]
    d, i = M.nearest_neighbors(r, r, k=2, exclude_self=True)
    bd, bi = brute_knn(r, r, 2, exclude_self=True)
    np.testing.assert_allclose(d, bd, rtol=1e-6)
    np.testing.assert_array_equal(i, bi)
    assert d[3, 0] == 0.0 and i[3].tolist() == [7, 21]
    assert d[21, 0] == 0.0 and i[21].tolist() == [3, 7]


def test_nearest_neighbors_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k=5"):
        M.nearest_neighbors(x, x, k=5, exclude_self=True)
    with pytest.raises(ValueError, match="dimensions"):
        M.nearest_neighbors(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="empty"):
        M.nearest_neighbors(np.zeros((0, 2)), x)
    with pytest.raises(ValueError, match="non-finite"):
        M.nearest_neighbors(np.array([[np.nan, 0.0]]), x)
    with pytest.raises(ValueError, match="same number of rows"):
        M.nearest_neighbors(x[:3], x, exclude_self=True)


# ----------------------------------------------------------------------------------------- GS, MNND, mem ratio
def test_generalization_score_matches_brute_force(small_blocks):
    rng = np.random.default_rng(1)
    gen, train = rng.normal(size=(70, 9)), rng.normal(size=(130, 9))
    assert M.generalization_score(gen, train) == pytest.approx(cdist(gen, train).min(1).mean(), rel=1e-5)
    # A model that copies its training set scores 0.
    assert M.generalization_score(train[:20], train) == 0.0


def test_generalization_score_of_uint8_images():
    rng = np.random.default_rng(2)
    gen = rng.integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)
    train = rng.integers(0, 256, size=(30, 8, 8, 3), dtype=np.uint8)
    ref = cdist(gen.reshape(20, -1).astype(float), train.reshape(30, -1).astype(float)).min(1).mean()
    assert M.generalization_score(gen, train) == pytest.approx(ref, rel=1e-6)


def test_mean_nn_distance_matches_brute_force():
    x = np.random.default_rng(3).normal(size=(90, 5))
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    assert M.mean_nn_distance(x) == pytest.approx(d.min(1).mean(), rel=1e-5)
    assert M.mean_nn_distance(np.vstack([x, x])) == 0.0  # every sample has an exact twin


def test_memorization_ratio_matches_brute_force():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(50, 4))
    gen = np.vstack([train[:10] + 1e-3 * rng.normal(size=(10, 4)), rng.normal(size=(30, 4))])
    d = np.sort(cdist(gen, train), 1)
    expected = np.mean(d[:, 0] < d[:, 1] / 3)
    got = M.memorization_ratio(gen, train)
    assert got == pytest.approx(expected) and got >= 10 / 40
    assert M.memorization_ratio(gen, train, ratio=0.9) == pytest.approx(np.mean(d[:, 0] < 0.9 * d[:, 1]))
    # Exact copies of a duplicated training image count as memorized although 1-NN = 2-NN = 0.
    assert M.memorization_ratio(train[:1], np.vstack([train[:1], train[:1], train[1:]])) == 1.0


# ----------------------------------------------------------------------------------------- entropy
def brute_kl(x, k=1, log_eps=1e-10):
    n, d = x.shape
    dist = cdist(x.astype(np.float64), x.astype(np.float64))
    np.fill_diagonal(dist, np.inf)
    eps_k = np.sort(dist, 1)[:, k - 1]
    log_cd = d / 2 * np.log(np.pi) - gammaln(d / 2 + 1)
    return digamma(n) - digamma(k) + log_cd + d * np.mean(np.log(eps_k + log_eps))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_knn_entropy_matches_formula(k):
    x = np.random.default_rng(k).normal(size=(200, 7))
    assert M.knn_entropy(x, k=k) == pytest.approx(brute_kl(x, k), rel=1e-6)


def test_knn_entropy_duplicates_use_log_eps():
    x = np.random.default_rng(0).integers(0, 256, size=(60, 3072)).astype(np.float32)
    x[10] = x[11]
    h = M.knn_entropy(x)
    assert h == pytest.approx(brute_kl(x), rel=1e-6)
    # Each of the two duplicates contributes log(1e-10) instead of log(~6000): the estimate drops by
    # d/n * 2 * (log(nn) - log(1e-10)), a lot.
    unique = x.copy()
    unique[10] = np.random.default_rng(1).integers(0, 256, size=3072)
    assert M.knn_entropy(unique) - h > 3072 / 60 * 2 * 20
    assert M.knn_entropy(x, log_eps=0.0) == -math.inf


def test_log_unit_ball_volume_in_high_dimension():
    assert M.log_unit_ball_volume(2) == pytest.approx(np.log(np.pi))
    assert M.log_unit_ball_volume(3) == pytest.approx(np.log(4 / 3 * np.pi))
    v = M.log_unit_ball_volume(3072)  # c_d itself underflows float64
    assert np.isfinite(v) and v == pytest.approx(1536 * np.log(np.pi) - gammaln(1537))


@pytest.mark.parametrize("d,tol", [(1, 0.06), (2, 0.08), (5, 0.15), (10, 0.45)])
def test_knn_entropy_of_gaussians(d, tol):
    """Against the analytic entropy 0.5 d log(2 pi e) + sum log sigma (nats), n = 8000.

    Tolerances are honest: the k=1 estimator's s.d. is ~0.015 here, but its finite-sample bias grows with
    the dimension (measured ~+0.06 to +0.32 at d=10 for anisotropic Gaussians with n = 8000).
    """
    rng = np.random.default_rng(d)
    sigma = rng.uniform(0.5, 3.0, size=d)
    x = (rng.normal(size=(8000, d)) * sigma).astype(np.float32)
    truth = 0.5 * d * np.log(2 * np.pi * np.e) + np.log(sigma).sum()
    assert M.knn_entropy(x) == pytest.approx(truth, abs=tol)


def test_knn_entropy_scale_equivariance():
    # H(aX) = H(X) + d log a, exactly for the estimator (up to log_eps).
    x = np.random.default_rng(0).normal(size=(300, 4))
    assert M.knn_entropy(3 * x) == pytest.approx(M.knn_entropy(x) + 4 * np.log(3), abs=1e-6)


# ----------------------------------------------------------------------------------------- FD, trace, SVD
def test_frechet_distance_analytic_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    shift = np.arange(6.0)
    # Same covariance: FD = ||shift||^2.
    assert M.frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-6)
    # b = 2a: S_b = 4 S_a, sqrtm(S_a S_b) = 2 S_a -> FD = ||mu_a||^2 + tr S_a.
    expected = a.mean(0) @ a.mean(0) + np.trace(np.cov(a, rowvar=False))
    assert M.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-6)
    # 1-d: (mu_a - mu_b)^2 + (sd_a - sd_b)^2.
    u, v = rng.normal(1, 2, size=(300, 1)), rng.normal(-1, 0.5, size=(300, 1))
    ref = (u.mean() - v.mean()) ** 2 + (u.std(ddof=1) - v.std(ddof=1)) ** 2
    assert M.frechet_distance(u, v) == pytest.approx(ref, rel=1e-8)
    assert abs(M.frechet_distance(a, a)) < 1e-8


@pytest.mark.parametrize("n_a,n_b", [(500, 400), (12, 9)])  # D-space eigh route and the low-rank route
def test_frechet_distance_methods_agree(n_a, n_b):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(n_a, 40)), rng.normal(size=(n_b, 40)) * 1.5 + 0.2
    assert M.frechet_distance(a, b, method="eigh") == pytest.approx(M.frechet_distance(a, b), rel=1e-7)
    with pytest.raises(ValueError, match="method"):
        M.frechet_distance(a, b, method="svd")
    with pytest.raises(ValueError, match="dimensions differ"):
        M.frechet_distance(a, b[:, :3])


def test_covariance_trace_matches_numpy():
    x = np.random.default_rng(2).integers(0, 256, size=(50, 4, 4, 3), dtype=np.uint8)
    flat = x.reshape(50, -1).astype(np.float64)
    assert M.covariance_trace(x, chunk=7) == pytest.approx(np.trace(np.cov(flat, rowvar=False)), rel=1e-10)


def test_svd_projection_matches_reference():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(80, 12)) * np.linspace(5, 1, 12)
    gen = rng.normal(size=(30, 12))
    r2, g2 = M.svd_projection(real, gen)
    mean = real.mean(0)
    _, _, vt = np.linalg.svd(real - mean)
    for j, comp in enumerate((1, 2)):  # the authors' Vt[[1, 2]]: 2nd and 3rd singular vectors, up to sign
        ref_r, ref_g = (real - mean) @ vt[comp], (gen - mean) @ vt[comp]
        sign = np.sign(ref_r @ r2[:, j])
        np.testing.assert_allclose(r2[:, j], sign * ref_r, atol=1e-9)
        np.testing.assert_allclose(g2[:, j], sign * ref_g, atol=1e-9)
    r3, _ = M.svd_projection(real, gen, components=(0, 1, 2))
    assert r3.shape == (80, 3)
    assert np.var(r3[:, 0]) > np.var(r3[:, 1]) > np.var(r3[:, 2])
    with pytest.raises(ValueError, match="components"):
        M.svd_projection(real, gen, components=(12,))


# ----------------------------------------------------------------------------------------- generation_metrics
def test_generation_metrics_pixel_defaults():
    rng = np.random.default_rng(5)
    train = rng.integers(0, 256, size=(40, 6, 6, 3), dtype=np.uint8)
    gen = rng.integers(0, 256, size=(30, 6, 6, 3), dtype=np.uint8)
    out = M.generation_metrics(train, gen)
    assert set(out) == {"gs_pixel", "entropy_pixel", "cov_trace", "mnnd", "mem_ratio"}
    assert all(isinstance(v, float) for v in out.values())
    ft, fg = train.reshape(40, -1).astype(np.float32), gen.reshape(30, -1).astype(np.float32)
    assert out["gs_pixel"] == pytest.approx(M.generalization_score(fg, ft))
    assert out["entropy_pixel"] == pytest.approx(brute_kl(ft), rel=1e-6)
    assert out["cov_trace"] == pytest.approx(M.covariance_trace(ft))
    assert out["mnnd"] == pytest.approx(M.mean_nn_distance(ft))
    assert out["mem_ratio"] == pytest.approx(M.memorization_ratio(fg, ft))


def test_generation_metrics_errors():
    imgs = np.zeros((4, 2, 2, 1), np.uint8)
    with pytest.raises(ValueError, match="unknown metric"):
        M.generation_metrics(imgs, imgs, names=("gs_pixel", "precision"))
    with pytest.raises(ValueError, match="real_images"):
        M.generation_metrics(imgs, imgs, names=("fid",))
    assert set(M.METRIC_NAMES) >= {"gs_pixel", "gs_dinov2", "gs_inception", "entropy_inception", "fid",
                                   "fd_dinov2", "cov_trace", "mnnd", "mem_ratio"}
