"""Entropy-raising data selection (PAPER.md §4): Greedy Selection (Algorithm 1) and the Threshold Decay
Filter (Algorithm 2), plus the "none" and "random" baselines, behind one dispatcher :func:`select` that
serves every method of the registry (collapse_utils.core.methods), plug-ins named ``"module:function"`` too.

All return int64 indices into ``features`` in the order the points were picked. Distances are Euclidean,
computed in torch on ``device`` (``None`` -> the features' device for tensors, else CUDA if available).
Squared distances use ||x||^2 + ||y||^2 - 2 x.y in float32 on data centred by a rounded mean (exact for
integer-valued pixel data of typical images; see :func:`collapse_utils.measure.metrics.centering_offset`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..measure.metrics import as_features, centering_offset
from ..core import methods as registry
from ..core.vocab import FILTER_SCHEDULES, POOL_KINDS

# float16 storage + float32-accumulating matmul for integer-valued data on CUDA (see _RowDistances);
# a switch so that benchmarks can compare against the plain float32 path.
USE_FP16_EXACT_MATMUL = True
# Replay blocks of GRAPH_BLOCK selection steps as CUDA graphs (see _StepBlocks).
USE_CUDA_GRAPHS = True
GRAPH_BLOCK = 64
_PARADIGM_ALIASES = {"replace": "replace", "last": "replace", "accumulate": "accumulate",
                     "accumulated": "accumulate"}

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
class _RowDistances:
    """Squared distances from every row of (centred) x to one row, as one matrix-vector product.

    On CUDA, integer-valued data within +-2048 (centred pixels) is stored in float16 -- exact for such
    integers -- and multiplied with float32 accumulation and output (``torch.mm(..., out_dtype=float32)``):
    the same numbers as float32 at half the memory traffic, which bounds greedy selection's speed.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self.sq = torch.einsum("ij,ij->i", x, x)
        self.half = None
        if USE_FP16_EXACT_MATMUL and x.is_cuda and bool((x == x.round()).all()) and float(x.abs().max()) <= 2048:
            try:
                h = x.half()
                torch.mm(h[:2], h[:1].T, out_dtype=torch.float32)  # is this matmul available here?
                self.half = h
            except (RuntimeError, TypeError):
                self.half = None

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: a 1-element int64 tensor on the device (no host sync)."""
        base = self.sq + self.sq.index_select(0, idx)
        if self.half is not None:
            dots = torch.mm(self.half, self.half.index_select(0, idx).T, out_dtype=torch.float32)[:, 0]
            d = base.sub_(dots, alpha=2)
        else:
            d = torch.addmv(base, self.x, self.x.index_select(0, idx)[0], beta=1, alpha=-2)
        return d.clamp_(min=0)


class _StepBlocks:
    """Runs ``step(j)`` for j = 0..k-1 per call, all state kept on the device (no host sync inside).

    On CUDA the block is captured once as a CUDA graph and replayed: one launch per k steps instead of ~10
    Python-dispatched kernels per step, which otherwise bound the speed for 384-d features. The first call
    runs eagerly (warm-up: cuBLAS handles, allocator); any capture failure falls back to eager execution.
    """

    def __init__(self, step, k: int, device: torch.device):
        self.step, self.k = step, k
        self.use_graph = USE_CUDA_GRAPHS and device.type == "cuda"
        self.graph = None
        self.calls = 0

    def run(self) -> None:
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return
        if self.use_graph and self.calls > 1:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):  # records, does not execute
                    self._eager()
            except Exception as exc:  # pragma: no cover - depends on the CUDA stack
                warnings.warn(f"CUDA graph capture failed ({exc}); running eagerly")
                self.use_graph = False
            else:
                self.graph = graph
                graph.replay()
                return
        self._eager()

    def _eager(self) -> None:
        for j in range(self.k):
            self.step(j)


def _block_size(device: torch.device) -> int:
    """Steps per block: many on CUDA (graph replays, no sync); 1 on CPU, where a sync costs nothing."""
    return GRAPH_BLOCK if device.type == "cuda" else 1


def greedy_selection(features, n: int, *, seed: int = 0,
                     device: str | torch.device | None = None) -> np.ndarray:
    """Algorithm 1 (Greedy Selection), PAPER.md §4.1: farthest-point sampling.

    The first point is drawn uniformly with ``seed``; then repeatedly the point whose distance to the
    selected set is largest is added (ties -> lowest index). One running min-distance vector; each new
    point's distances to all N points come from one matrix-vector product, O(N * D) per step, with no host
    synchronisation (blocks of steps are CUDA-graph replays on GPU).
    """
    x, n = _prepare(features, n, device)
    pool, dev = x.shape[0], x.device
    if n == 0:
        return np.zeros(0, np.int64)
    dist_to = _RowDistances(x)
    first = int(np.random.default_rng(seed).integers(pool))
    idx = torch.tensor([first], device=dev)  # the last point picked
    mind = torch.full((pool,), float("inf"), device=dev)  # squared distance to the selection
    k = _block_size(dev)
    block = torch.empty(k, dtype=torch.int64, device=dev)

    def step(j: int) -> None:
        torch.minimum(mind, dist_to(idx), out=mind)
        mind.index_fill_(0, idx, float("-inf"))  # never picked again (a Python scalar: a tensor would sync)
        idx.copy_(torch.argmax(mind).reshape(1))  # first maximum -> ties go to the lowest index
        block[j:j + 1].copy_(idx)

    picked = torch.empty(n + k, dtype=torch.int64, device=dev)
    picked[0] = first
    runner = _StepBlocks(step, k, dev)
    for t in range(1, n, k):  # a last partial block runs a few steps too many; they are cut off
        runner.run()
        picked[t:t + k].copy_(block)
    return picked[:n].cpu().numpy()


# --------------------------------------------------------------------------------------------- Algorithm 2
def _sq32(tau: float) -> float:
    """tau^2 rounded to float32, the precision of the squared min-distances it is compared with."""
    return float(np.float32(tau * tau))


def threshold_decay_filter(features, n: int, *, threshold: float, decay: float, seed: int = 0,
                           schedule: str = "every_pass", device: str | torch.device | None = None,
                           return_info: bool = False):
    """Algorithm 2 (Threshold Decay Filter), PAPER.md §4.2.

    Candidates are visited in a seeded random order (``np.random.default_rng(seed).permutation(N)``); the
    first one is accepted. Each pass visits the remaining candidates in that order and accepts x when its
    distance to *every* point selected so far (including those accepted earlier in the same pass) is > tau.
    Selection stops as soon as n points are in.

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

    Implementation: one step = "find the next candidate at or after the scan position whose min-distance
    exceeds tau, accept it, update all min-distances"; steps run on the device in blocks (CUDA graphs on
    GPU), each masked to a no-op once the pass is over, and the host reads the block's picks once per block.
    """
    _check_filter_params(threshold, decay, schedule)
    x, n = _prepare(features, n, device)
    pool, dev = x.shape[0], x.device
    order = torch.from_numpy(np.random.default_rng(seed).permutation(pool)).to(dev)
    dist_to = _RowDistances(x.index_select(0, order))  # row p is the p-th candidate visited
    del x
    tau, passes, padded = float(threshold), 0, 0
    if n == 0:
        empty = np.zeros(0, np.int64)
        return (empty, {"passes": 0, "final_threshold": tau, "padded": 0}) if return_info else empty
    # Squared min-distance to the selection; selected candidates are marked -1 (never > tau^2 > 0).
    mind = dist_to(torch.zeros(1, dtype=torch.int64, device=dev))
    mind[0] = -1.0
    accepted: list[int] = [0]
    positions = torch.arange(pool, device=dev)
    tau2 = torch.zeros((), device=dev)  # the current tau^2, read by the captured steps
    scan = torch.zeros(1, dtype=torch.int64, device=dev)  # next position to visit in this pass
    count = torch.ones(1, dtype=torch.int64, device=dev)
    k = max(1, _block_size(dev) // 2)  # a pass's end wastes up to k masked steps: keep k smaller
    rec = torch.zeros((2, k), dtype=torch.int64, device=dev)  # picked position, accepted?
    minus_one = torch.tensor([-1.0], device=dev)

    def step(j: int) -> None:
        ok = (mind > tau2) & (positions >= scan)
        p = torch.argmax(ok.to(torch.uint8)).reshape(1)  # first passing candidate at or after `scan`
        v = ok.index_select(0, p) & (count < n)
        mind.copy_(torch.where(v, torch.minimum(mind, dist_to(p)), mind))
        mind.index_copy_(0, p, torch.where(v, minus_one, mind.index_select(0, p)))
        scan.copy_(torch.where(v, p + 1, scan))
        count.add_(v.long())
        rec[0, j:j + 1].copy_(p)
        rec[1, j:j + 1].copy_(v.long())

    runner = _StepBlocks(step, k, dev)
    while len(accepted) < n:
        passes += 1
        tau2.fill_(_sq32(tau))
        scan.zero_()
        added = False
        while len(accepted) < n:
            runner.run()
            ps, vs = rec.tolist()
            new = [p for p, v in zip(ps, vs) if v]
            accepted.extend(new)
            added = added or bool(new)
            if len(new) < k:  # a step found nothing: this pass is over
                break
        if len(accepted) >= n:
            break
        if added:
            if schedule == "every_pass":
                tau *= decay
            continue  # "when_stalled": the next pass is provably empty and will decay tau
        largest = float(mind.max())
        if largest <= 0.0:
            taken = torch.zeros(pool, dtype=torch.bool, device=dev)
            taken[torch.tensor(accepted, device=dev)] = True
            rest = positions[~taken][: n - len(accepted)].tolist()
            padded = len(rest)
            warnings.warn(f"threshold filter: only exact duplicates of selected points remain; "
                          f"appending {padded} of them in visiting order")
            accepted.extend(rest)
            break
        tau *= decay  # end of this empty pass
        while _sq32(tau) >= largest:  # further passes would add nothing either: skip them
            tau *= decay
            passes += 1
    idx = order[torch.tensor(accepted[:n], dtype=torch.int64, device=dev)].cpu().numpy().astype(np.int64)
    if return_info:
        return idx, {"passes": passes, "final_threshold": tau, "padded": padded}
    return idx


# --------------------------------------------------------------------------------------------- defaults
def default_filter_params(space: str, paradigm: str) -> dict:
    """Initial threshold and decay of the filter (PAPER.md §4.2): DINOv2 60 with 0.95 (replace) / 0.80
    (accumulate); pixel 2000 with 0.95.

    ``inception`` (2048-d FID pool3, the offline stand-in for DINOv2) is not in the paper: we use 10 with the
    DINOv2 decays. Calibration, on 256 real CIFAR-10 cat/dog images (data/cifar10_catdog.npz): the authors'
    pixel tau_0 = 2000 is 0.41 x the median pairwise pixel distance (4838) and 0.66 x the median 1-NN
    distance (3008); the same ratios in pool3 space (median pairwise 19.4, median 1-NN 14.7) give 8.0 and
    9.8. Since empty passes are skipped, a tau_0 somewhat too large only shifts the tau grid.
    """
    kind = _PARADIGM_ALIASES.get(paradigm, paradigm)
    if kind not in POOL_KINDS:
        raise ValueError(f"unknown paradigm {paradigm!r}; valid: {POOL_KINDS}")
    method = registry.get_method("threshold")
    if not method.supports(space):
        raise ValueError(f"no filter defaults for feature space {space!r}; valid: {', '.join(method.spaces)}")
    return method.defaults_for(space, kind)


# --------------------------------------------------------------------------------------------- dispatcher
def select_none(features, n: int, *, seed: int = 0) -> np.ndarray:
    """The registry's "none": the features checked (shape, empty, finite), then the first n."""
    as_features(features, device="cpu" if not isinstance(features, torch.Tensor) else None)
    return first_n_selection(features, n)


def select_random(features, n: int, *, seed: int = 0) -> np.ndarray:
    """The registry's "random": the features checked (shape, empty, finite), then n drawn at random."""
    as_features(features, device="cpu" if not isinstance(features, torch.Tensor) else None)
    return random_selection(features, n, seed=seed)


def nearest_neighbour_distances(features, device=None, block: int = 1024) -> np.ndarray:
    """Each row's Euclidean distance to its nearest *other* row (float64, on the host), in blocks of ``block``
    rows so that a large pool never holds its whole distance matrix."""
    x = as_features(features, device=device)
    x = x - centering_offset(x)
    pool = x.shape[0]
    if pool < 2:
        raise ValueError(f"a pool of {pool} row(s) has no nearest neighbours")
    out = np.empty(pool, dtype=np.float64)
    for lo in range(0, pool, block):
        d = torch.cdist(x[lo:lo + block], x)
        rows = torch.arange(lo, min(lo + block, pool), device=x.device)
        d[rows - lo, rows] = float("inf")
        out[lo:lo + len(rows)] = d.min(dim=1).values.double().cpu().numpy()
    return out


def matched_threshold(features, quantile: float, device=None) -> float:
    """A starting threshold matched to the pool's own scale (ours, not the authors'): the ``quantile`` of its rows'
    nearest-neighbour distances (:func:`nearest_neighbour_distances`). The authors' fixed tau_0 (2000 in pixels,
    PAPER.md §4.2) is several times the 1-NN distances of an 8x8 pool (100–300), so the filter skips ~37 empty
    decays and then accepts the farthest candidates first, like Greedy; a tau_0 at a high quantile of the pool's
    1-NN distances starts the filter where it rejects near-duplicates and keeps the rest."""
    if not (0 < quantile < 1):
        raise ValueError(f"threshold_quantile must lie in the open interval (0, 1); got {quantile}")
    tau = float(np.quantile(nearest_neighbour_distances(features, device=device), quantile))
    if not tau > 0:
        raise ValueError(f"the pool's {quantile} quantile of nearest-neighbour distances is {tau}: the pool is "
                         "mostly exact duplicates; give a fixed threshold")
    return tau


def select_threshold(features, n: int, *, seed: int = 0, threshold: float | None = None,
                     decay: float | None = None, schedule: str = "every_pass", threshold_quantile: float | None = None,
                     device=None) -> np.ndarray:
    """The registry's "threshold": the filter's parameters checked, then Algorithm 2. ``threshold_quantile``
    (ours; None: the authors' fixed ``threshold``) starts at :func:`matched_threshold` of the pool instead."""
    _check_filter_params(threshold, decay, schedule)
    if threshold_quantile is not None:
        threshold = matched_threshold(features, float(threshold_quantile), device=device)
    return threshold_decay_filter(features, n, threshold=threshold, decay=decay, seed=seed, schedule=schedule,
                                  device=device)


def _checked_picks(name: str, idx, n: int, pool: int) -> np.ndarray:
    """A plug-in's answer as int64 indices: n distinct ones in [0, pool), else a ValueError naming it."""
    out = np.asarray(idx)
    if out.ndim != 1 or len(out) != n or (len(out) and not np.issubdtype(out.dtype, np.integer)):
        raise ValueError(f"selection {name!r} must return {n} integer indices, got {out.dtype} of shape {out.shape}")
    out = out.astype(np.int64)
    if len(out) and (out.min() < 0 or out.max() >= pool or len(np.unique(out)) != n):
        raise ValueError(f"selection {name!r} must return {n} distinct indices in [0, {pool}), got {out.tolist()[:10]}…")
    return out


def select(method: str, features, n: int, *, seed: int = 0, **params) -> np.ndarray:
    """Pick n of the rows of ``features`` with a registered method or a ``"module:function"`` plug-in
    (collapse_utils.core.methods; the loop's selection hook).

    ``params``: the method's parameters (:class:`~collapse_utils.core.methods.Param`): ``device`` for
    greedy/threshold; ``threshold``, ``decay`` (required) and ``schedule`` for threshold. Input is validated
    (empty or non-finite features, n larger than the pool, threshold <= 0, decay outside (0, 1), unknown method
    or parameter) with ValueErrors; a plug-in's answer must be n distinct indices into ``features``.
    """
    spec = registry.get_method(method)
    allowed = spec.param_names
    extra = set(params) - allowed
    if extra:
        raise ValueError(f"selection {method!r} takes no parameter(s) {sorted(extra)}; allowed: {sorted(allowed)}")
    if spec.builtin:
        return spec.resolve()(features, n, seed=seed, **params)
    _check_n(n, len(features))
    return _checked_picks(method, spec.resolve()(features, n, seed=seed, **params), n, len(features))
