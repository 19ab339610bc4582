"""The paradigms: how each generation's training set is built from the real data and earlier samples (PAPER.md §4.4).

Generation 1 trains on real data. Generation g ≥ 2 trains on a set built by the paradigm from the real
data and the samples of generations 1 … g−1, optionally through a selection step that picks n images from a
candidate pool (Greedy Selection, Threshold Decay Filter; collapse_utils.loop.selection):

================== ======================================================= ===============================
paradigm           training set of generation g ≥ 2                         pool when selecting
================== ======================================================= ===============================
replace            n samples of generation g−1 (the first n)               pool_factor·n samples of g−1
replace_2n         2n samples of generation g−1 (appendix C.1)             (no selection)
accumulate_subsample n images drawn evenly from real, 1, …, g−1 (authors')   real ∪ all earlier samples
accumulate         real ∪ all samples of 1 … g−1 (grows by n per generation) real ∪ all earlier samples
fresh              ⌊f·n⌉ new real images + the rest from generation g−1     pool_factor·n samples of g−1
================== ======================================================= ===============================

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..measure import features as feats
from . import selection as sel
from ..core.config import RunConfig, derive_seed
from ..core.methods import NO_SELECTION, check_selection

SelectFn = Callable[..., np.ndarray]


@dataclass
class Pool:
    """Candidate images with where each came from (0 = real, k = generation k) and optional labels."""

    images: np.ndarray
    sources: np.ndarray
    labels: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "Pool":
        idx = np.asarray(idx, dtype=np.int64)
        return Pool(self.images[idx], self.sources[idx], None if self.labels is None else self.labels[idx])

    @staticmethod
    def concat(pools: list["Pool"]) -> "Pool":
        labels = None if any(p.labels is None for p in pools) else np.concatenate([p.labels for p in pools])
        return Pool(np.concatenate([p.images for p in pools]), np.concatenate([p.sources for p in pools]), labels)

    def __len__(self) -> int:
        return len(self.images)


def even_counts(total: int, parts: int) -> np.ndarray:
    """Split ``total`` into ``parts`` counts differing by at most one (earlier parts get the remainder)."""
    counts = np.full(parts, total // parts, dtype=np.int64)
    counts[: total % parts] += 1
    return counts


def subsample_evenly(sources: list[Pool], n: int, seed: int) -> Pool:
    """The authors' accumulate-subsample: n images drawn evenly at random from each source.

    The authors take n//t + 1 per source and train on the slightly larger union (PAPER.md §4.4 quirk);
    here exactly n are taken, per-source counts differing by at most one.
    """
    rng = np.random.default_rng(seed)
    picked = []
    for pool, k in zip(sources, even_counts(n, len(sources))):
        if k > len(pool):
            raise ValueError(f"a source holds {len(pool)} images, fewer than the {k} to draw from it")
        picked.append(pool.take(np.sort(rng.choice(len(pool), size=k, replace=False))))
    return Pool.concat(picked)


def select_from_pool(
    pool: Pool,
    n: int,
    cfg: RunConfig,
    seed: int,
    *,
    features_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    select_fn: SelectFn | None = None,
    paradigm_kind: str = "replace",
) -> Pool:
    """Pick ``n`` of ``pool`` with ``cfg.selection`` in ``cfg.feature_space``: the method of the registry
    (collapse_utils.core.methods) with its parameters for this configuration and pool kind
    (:meth:`~collapse_utils.core.methods.SelectionMethod.config_params`), a plug-in's too.

    Conditional runs with ``class_selection='per_class'`` select within each class, keeping the class
    counts of a balanced set (so guidance still sees every digit); ``'global'`` ignores labels.
    """
    if n > len(pool):
        raise ValueError(f"cannot select {n} images from a pool of {len(pool)}")
    if cfg.selection == NO_SELECTION:
        return pool.take(np.arange(n))
    features_fn = features_fn or (lambda imgs: feats.extract_features(imgs, cfg.feature_space, device=cfg.device))
    select_fn = select_fn or sel.select
    params: dict[str, Any] = check_selection(cfg).config_params(cfg, paradigm_kind)
    features = features_fn(pool.images)
    if not (cfg.conditional and cfg.class_selection == "per_class" and pool.labels is not None):
        return pool.take(select_fn(cfg.selection, features, n, seed=seed, **params))
    chosen: list[np.ndarray] = []
    for c, k in zip(range(cfg.num_classes), even_counts(n, cfg.num_classes)):
        members = np.flatnonzero(pool.labels == c)
        if len(members) < k:
            raise ValueError(f"class {c} has {len(members)} candidates, fewer than the {k} to select")
        local = select_fn(cfg.selection, features[members], int(k), seed=seed + c, **params)
        chosen.append(members[local])
    return pool.take(np.concatenate(chosen))


def fresh_count(cfg: RunConfig) -> int:
    """Paradigm 'fresh': how many new real images each later generation takes."""
    return int(round(cfg.fresh_fraction * cfg.n)) if cfg.paradigm == "fresh" else 0


def real_images_needed(cfg: RunConfig) -> int:
    """Real images the run draws: n, plus the fresh images of every later generation (paradigm 'fresh')."""
    return cfg.n + fresh_count(cfg) * (cfg.generations - 1)


def build_training_set(
    cfg: RunConfig,
    generation: int,
    real: Pool,
    samples_of: Callable[[int], Pool],
    *,
    select: Callable[[Pool, int, int, str], Pool] | None = None,
) -> Pool:
    """The training set of ``generation`` (1-based) under ``cfg.paradigm`` (see the module table)."""
    n = cfg.n
    initial_real = real.take(np.arange(n))
    if generation == 1:
        return initial_real
    seed = derive_seed(cfg.seed, generation, "select")
    select = select or (lambda pool, k, s, kind: select_from_pool(pool, k, cfg, s, paradigm_kind=kind))
    previous = samples_of(generation - 1)
    p = cfg.paradigm
    if p == "replace":
        return select(previous, n, seed, "replace")
    if p == "replace_2n":
        return previous.take(np.arange(min(2 * n, len(previous))))
    if p == "fresh":
        k = fresh_count(cfg)
        start = n + k * (generation - 2)
        new_real = real.take(np.arange(start, start + k))
        return Pool.concat([new_real, select(previous, n - k, seed, "replace")])
    history = [initial_real] + [samples_of(g) for g in range(1, generation)]
    if cfg.selection != "none":
        return select(Pool.concat(history), n, seed, "accumulate")
    if p == "accumulate_subsample":
        return subsample_evenly(history, n, seed)
    if p == "accumulate":
        return Pool.concat(history)
    raise ValueError(f"unknown paradigm {p!r}")
