"""Entropy-raising data selection (PAPER.md §4): Greedy Selection (Algorithm 1) and the Threshold Decay
Filter (Algorithm 2), plus the "none" and "random" baselines, behind one dispatcher :func:`select`.

All return int64 indices into ``features`` in the order the points were picked. Distances are Euclidean,
computed in torch on ``device`` (``None`` -> the features' device for tensors, else CUDA if available).
Squared distances use ||x||^2 + ||y||^2 - 2 x.y in float32 on data centred by a rounded mean (exact for
integer-valued pixel data of typical images; see :func:`collapse_utils.metrics.centering_offset`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .metrics import as_features, centering_offset

SELECTION_METHODS = ("none", "random", "greedy", "threshold")
FILTER_SCHEDULES = ("every_pass", "when_stalled")
PARADIGMS = ("replace", "accumulate")
_PARADIGM_ALIASES = {"replace": "replace", "last": "replace", "accumulate": "accumulate",
                     "accumulated": "accumulate"}

# Initial threshold tau_0 and decay alpha per feature space and paradigm (PAPER.md §4.2 table, authors' code).
# "inception" (FID pool3, the offline stand-in for DINOv2) is our choice, not the authors': see
# default_filter_params.
_FILTER_DEFAULTS = {
    ("pixel", "replace"): (2000.0, 0.95),
    ("pixel", "accumulate"): (2000.0, 0.95),
    ("dinov2", "replace"): (60.0, 0.95),
    ("dinov2", "accumulate"): (60.0, 0.80),
    ("inception", "replace"): (30.0, 0.95),
    ("inception", "accumulate"): (30.0, 0.80),
}


# --------------------------------------------------------------------------------------------- validation
def _check_n(n, pool: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be an integer; got {n!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    if n > pool:
        raise ValueError(f"cannot select n={n} samples from a pool of only {pool}")
    return int(n)


def _prepare(features, n, device) -> tuple[torch.Tensor, int]:
    """Validated float32 features (centred by a rounded mean) on the device, and n."""
    x = as_features(features, device=device)
    n = _check_n(n, x.shape[0])
    return x - centering_offset(x), n


def _check_filter_params(threshold, decay, schedule: str) -> None:
    if threshold is None or decay is None:
        raise ValueError("the threshold filter needs `threshold` and `decay` (see default_filter_params)")
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a finite number > 0; got {threshold}")
    if not (0 < decay < 1):
        raise ValueError(f"decay must lie in the open interval (0, 1); got {decay}")
    if schedule not in FILTER_SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: {FILTER_SCHEDULES}")


# --------------------------------------------------------------------------------------------- baselines
def random_selection(features, n: int, *, seed: int = 0) -> np.ndarray:
    """n distinct indices drawn uniformly at random (seeded)."""
    pool = len(features)
    if pool == 0:
        raise ValueError("features is empty (0 samples)")
    n = _check_n(n, pool)
    return np.random.default_rng(seed).choice(pool, size=n, replace=False).astype(np.int64)


def first_n_selection(features, n: int) -> np.ndarray:
    """Selection "none": the first n samples (the vanilla paradigm)."""
    pool = len(features)
    if pool == 0:
        raise ValueError("features is empty (0 samples)")
    return np.arange(_check_n(n, pool), dtype=np.int64)


# --------------------------------------------------------------------------------------------- Algorithm 1
def _sq_dists_to(x: torch.Tensor, sq: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Squared distances from every row of x to row ``idx`` (a 1-element tensor: no host sync)."""
    y = x.index_select(0, idx)  # (1, D)
    d = torch.addmv(sq + sq.index_select(0, idx), x, y[0], beta=1, alpha=-2)
    return d.clamp_(min=0)


def greedy_selection(features, n: int, *, seed: int = 0,
                     device: str | torch.device | None = None) -> np.ndarray:
    """Algorithm 1 (Greedy Selection), PAPER.md §4.1: farthest-point sampling.

    The first point is drawn uniformly with ``seed``; then repeatedly the point whose distance to the
    selected set is largest is added (ties -> lowest index). One running min-distance vector; each new
    point's distances to all N points come from one matrix-vector product, O(N * D) per step.
    """
    x, n = _prepare(features, n, device)
    pool = x.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    sq = torch.einsum("ij,ij->i", x, x)
    first = int(np.random.default_rng(seed).integers(pool))
    idx = torch.tensor([first], device=x.device)
    mind = torch.full((pool,), float("inf"), device=x.device)
    picked = torch.empty(n, dtype=torch.int64, device=x.device)
    neg_inf = torch.tensor(float("-inf"), device=x.device)
    for t in range(n):
        picked[t:t + 1] = idx
        if t == n - 1:
            break
        torch.minimum(mind, _sq_dists_to(x, sq, idx), out=mind)
        mind.index_fill_(0, idx, neg_inf)  # selected points are never picked again
        idx = torch.argmax(mind).reshape(1)  # first maximum -> ties go to the lowest index
    return picked.cpu().numpy()


# --------------------------------------------------------------------------------------------- Algorithm 2
def _sq32(tau: float) -> float:
    """tau^2 rounded to float32, the precision of the squared min-distances it is compared with."""
    return float(np.float32(tau * tau))


def threshold_decay_filter(features, n: int, *, threshold: float, decay: float, seed: int = 0,
                           schedule: str = "every_pass", device: str | torch.device | None = None,
                           return_info: bool = False):
    """Algorithm 2 (Threshold Decay Filter), PAPER.md §4.2.

    Candidates are visited in a seeded random order; the first one is accepted. Each pass visits the
    remaining candidates in that order and accepts x when its distance to *every* point selected so far
    (including those accepted earlier in the same pass) is > tau. Selection stops as soon as n points are in.

    * ``schedule="every_pass"``  -- the authors' code: tau <- decay * tau after every pass.
    * ``schedule="when_stalled"`` -- the pseudo-code: tau <- decay * tau only after a pass that added nothing.

    The two give the **same selection**: a candidate rejected during a pass has min-distance <= tau, and
    min-distances only shrink as points are added, so the pass after a productive one at the same tau is
    always empty; "when_stalled" just spends one extra (empty) pass before the same decay. Only the number
    of passes differs (reported with ``return_info=True``).

    Empty passes are skipped arithmetically (tau is decayed until it is below the largest remaining
    min-distance), which changes nothing in the result. If only exact duplicates of selected points remain
    (min-distance 0; the authors' loop would never end), they are appended in visiting order with a warning.
    Returns indices in acceptance order, plus ``{"passes", "final_threshold", "padded"}`` if ``return_info``.
    """
    _check_filter_params(threshold, decay, schedule)
    x, n = _prepare(features, n, device)
    pool = x.shape[0]
    order = torch.from_numpy(np.random.default_rng(seed).permutation(pool)).to(x.device)
    x = x.index_select(0, order)  # row p of x is the p-th candidate visited
    sq = torch.einsum("ij,ij->i", x, x)
    mind = torch.full((pool,), float("inf"), device=x.device)  # squared min-distance to the selection
    alive = torch.ones(pool, dtype=torch.bool, device=x.device)
    accepted: list[int] = []
    tau, passes, padded = float(threshold), 0, 0

    def accept(p: int) -> None:
        accepted.append(p)
        alive[p] = False
        torch.minimum(mind, _sq_dists_to(x, sq, torch.tensor([p], device=x.device)), out=mind)

    if n > 0:
        accept(0)
    positions = torch.arange(pool, device=x.device)
    while len(accepted) < n:
        passes += 1
        added, start = False, 0
        while len(accepted) < n:
            ok = alive & (mind > _sq32(tau)) & (positions >= start)
            p = int(torch.argmax(ok.to(torch.uint8)))  # first candidate at or after `start` that passes
            if not bool(ok[p]):
                break
            accept(p)
            added, start = True, p + 1
        if len(accepted) == n:
            break
        if added:
            if schedule == "every_pass":
                tau *= decay
            continue  # "when_stalled": the next pass is provably empty and will decay tau
        largest = float(mind[alive].max()) if bool(alive.any()) else 0.0
        if largest <= 0.0:
            rest = positions[alive][: n - len(accepted)].tolist()
            padded = len(rest)
            warnings.warn(f"threshold filter: only exact duplicates of selected points remain; "
                          f"appending {padded} of them in visiting order")
            accepted.extend(rest)
            break
        tau *= decay  # end of this empty pass
        while _sq32(tau) >= largest:  # further passes would add nothing either: skip them
            tau *= decay
            passes += 1
    idx = order[torch.tensor(accepted, dtype=torch.int64, device=x.device)].cpu().numpy().astype(np.int64)
    if return_info:
        return idx, {"passes": passes, "final_threshold": tau, "padded": padded}
    return idx


# --------------------------------------------------------------------------------------------- defaults
def default_filter_params(space: str, paradigm: str) -> dict:
    """Initial threshold and decay of the filter (PAPER.md §4.2): DINOv2 60 with 0.95 (replace) / 0.80
    (accumulate); pixel 2000 with 0.95.

    ``inception`` (2048-d FID pool3, the offline stand-in for DINOv2) is not in the paper: we use 30 with the
    DINOv2 decays. Rationale: like DINOv2's 60, it sits above the typical 1-NN distance between real images
    in that space, so the first passes spread points out as greedy would, and since empty passes are skipped
    an over-large tau_0 costs nothing but a slightly different tau grid.
    """
    key = (space, _PARADIGM_ALIASES.get(paradigm, paradigm))
    if key[1] not in PARADIGMS:
        raise ValueError(f"unknown paradigm {paradigm!r}; valid: {PARADIGMS}")
    if key not in _FILTER_DEFAULTS:
        raise ValueError(f"no filter defaults for feature space {space!r}; valid: pixel, dinov2, inception")
    threshold, decay = _FILTER_DEFAULTS[key]
    return {"threshold": threshold, "decay": decay}


# --------------------------------------------------------------------------------------------- dispatcher
def select(method: str, features, n: int, *, seed: int = 0, **params) -> np.ndarray:
    """Pick n of the rows of ``features`` with one of :data:`SELECTION_METHODS` (the loop's selection hook).

    ``params``: ``device`` for greedy/threshold; ``threshold``, ``decay`` (required) and ``schedule`` for
    threshold. Input is validated (empty or non-finite features, n larger than the pool, threshold <= 0,
    decay outside (0, 1), unknown method or parameter) with ValueErrors.
    """
    if method not in SELECTION_METHODS:
        raise ValueError(f"unknown selection method {method!r}; valid: {SELECTION_METHODS}")
    allowed = {"none": set(), "random": set(), "greedy": {"device"},
               "threshold": {"device", "threshold", "decay", "schedule"}}[method]
    extra = set(params) - allowed
    if extra:
        raise ValueError(f"selection {method!r} takes no parameter(s) {sorted(extra)}; allowed: {sorted(allowed)}")
    if method == "greedy":
        return greedy_selection(features, n, seed=seed, **params)
    if method == "threshold":
        _check_filter_params(params.get("threshold"), params.get("decay"), params.get("schedule", "every_pass"))
        return threshold_decay_filter(features, n, seed=seed, **params)
    as_features(features, device="cpu" if not isinstance(features, torch.Tensor) else None)  # shape, empty, finite
    if method == "random":
        return random_selection(features, n, seed=seed)
    return first_n_selection(features, n)
