"""The statistics that reduce one seed's runs to a claim's effect d_s (a decline, a size order, a
correlation, a difference of arms, ...), keyed by name in :data:`STATISTICS`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ...core.methods import short_label_of
from ...core.vocab import PARADIGM_SHORT_LABELS
from .rules import spread


# ---------------------------------------------------------------------------------------------- statistics


@dataclass
class Effect:
    """What a statistic gives for one claim: the per-seed effect d_s (``values``), named per-seed components
    shown beside it (``parts``), and for equivalence claims each arm's per-seed values (``arms``)."""

    values: dict[int, float] = field(default_factory=dict)
    parts: dict[str, dict[int, float]] = field(default_factory=dict)
    arms: dict[str, dict[int, float]] = field(default_factory=dict)
    what: str = "d"


def _value(g: Any, metric: str) -> float:
    v = g.metrics.get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _last(run: Any, metric: str) -> float:
    return _value(run.generations[-1], metric) if run.generations else math.nan


def _first(run: Any, metric: str) -> float:
    return _value(run.generations[0], metric) if run.generations else math.nan


def _ln(x: float) -> float:
    return math.log(x) if x > 0 else math.nan


def matches(cfg: Any, arm: Mapping[str, Any]) -> bool:
    """``cfg`` has every field value of ``arm``."""
    return all(getattr(cfg, k, None) == v for k, v in arm.items())


def _put(out: dict, key: Any, seed: int, value: float) -> None:
    if math.isfinite(value):
        out.setdefault(key, {})[seed] = value


def stat_decline(by_seed: Mapping[int, Sequence[Any]], metric: str, log: bool = False, rise: bool = False) -> Effect:
    """d = min over dataset sizes of [x_1 − x_last] (of ln x when ``log``; [x_last − x_1] when ``rise``)."""
    eff = Effect(what=f"min over n of [{'ln ' if log else ''}{metric}: "
                      f"{'last − gen 1' if rise else 'gen 1 − last'}]")
    for seed, runs in by_seed.items():
        per = {}
        for r in sorted(runs, key=lambda r: r.config.n):
            a, b = _first(r, metric), _last(r, metric)
            if log:
                a, b = _ln(a), _ln(b)
            per[r.config.n] = (b - a) if rise else (a - b)
        if per and all(math.isfinite(v) for v in per.values()):
            eff.values[seed] = min(per.values())
            for n, v in per.items():
                _put(eff.parts, f"n={n}", seed, v)
    return eff


def stat_size_order(by_seed: Mapping[int, Sequence[Any]], metric: str) -> Effect:
    """d = min over consecutive sizes n_i < n_{i+1} of [ln x_1(n_{i+1}) − ln x_1(n_i)] (generation 1)."""
    eff = Effect(what=f"min over consecutive n of [ln {metric} at gen 1: larger n − smaller n]")
    for seed, runs in by_seed.items():
        first = {r.config.n: _ln(_first(r, metric)) for r in runs}
        sizes = sorted(first)
        steps = {f"n={a}→{b}": first[b] - first[a] for a, b in zip(sizes, sizes[1:])}
        if steps and all(math.isfinite(v) for v in steps.values()):
            eff.values[seed] = min(steps.values())
            for k, v in steps.items():
                _put(eff.parts, k, seed, v)
    return eff


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    import numpy as np

    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return math.nan
    a, b = np.array(pairs, dtype=float).T
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _pooled(runs: Sequence[Any], x: str, y: str) -> float:
    """Pearson r of ``x`` with ln ``y`` pooled over the runs' generations."""
    points = [(_value(g, x), _ln(_value(g, y))) for r in runs for g in r.generations]
    return _pearson([p[0] for p in points], [p[1] for p in points])


def stat_pearson(by_seed: Mapping[int, Sequence[Any]], x: str, y: str) -> Effect:
    """d = Pearson r(x, ln y), pooled over dataset sizes and generations."""
    eff = Effect(what=f"Pearson r({x}, ln {y})")
    for seed, runs in by_seed.items():
        r = _pooled(runs, x, y)
        if math.isfinite(r):
            eff.values[seed] = r
    return eff


def stat_pearson_gap(by_seed: Mapping[int, Sequence[Any]], x: str, z: str, y: str) -> Effect:
    """d = |r(x, ln y)| − |r(z, ln y)|: how much better ``x`` predicts ln y than ``z``."""
    eff = Effect(what=f"|r({x}, ln {y})| − |r({z}, ln {y})|")
    for seed, runs in by_seed.items():
        rx, rz = _pooled(runs, x, y), _pooled(runs, z, y)
        _put(eff.parts, f"r({x})", seed, rx)
        _put(eff.parts, f"r({z})", seed, rz)
        if math.isfinite(rx) and math.isfinite(rz):
            eff.values[seed] = abs(rx) - abs(rz)
    return eff


def _one(runs: Sequence[Any], arm: Mapping[str, Any]) -> Any | None:
    found = [r for r in runs if matches(r.config, arm)]
    if len(found) > 1:
        raise ValueError(f"{len(found)} runs match the arm {dict(arm)}")
    return found[0] if found else None


def _arm_name(arm: Mapping[str, Any]) -> str:
    parts = []
    if "conditional" in arm:
        parts.append("CFG" if arm["conditional"] else "unconditional")
    if "paradigm" in arm:
        parts.append(PARADIGM_SHORT_LABELS.get(arm["paradigm"], arm["paradigm"]))
    if "selection" in arm:
        parts.append(short_label_of(arm["selection"]))
    return " ".join(parts)


def stat_difference(by_seed: Mapping[int, Sequence[Any]], metric: str, a: Mapping[str, Any],
                    b: Mapping[str, Any]) -> Effect:
    """d = metric at the last generation of arm ``a`` − that of arm ``b`` (same seed)."""
    na, nb = _arm_name(a), _arm_name(b)
    eff = Effect(what=f"{metric} at the last generation: {na} − {nb}")
    for seed, runs in by_seed.items():
        ra, rb = _one(runs, a), _one(runs, b)
        if ra is None or rb is None:
            continue
        va, vb = _last(ra, metric), _last(rb, metric)
        _put(eff.parts, na, seed, va)
        _put(eff.parts, nb, seed, vb)
        if math.isfinite(va) and math.isfinite(vb):
            eff.values[seed] = va - vb
    return eff


def stat_arms_by(by_seed: Mapping[int, Sequence[Any]], metric: str, where: Mapping[str, Any], by: str) -> Effect:
    """Equivalence: each value of the config field ``by`` among the runs matching ``where`` is an arm; its
    per-seed value is ``metric`` at the last generation."""
    eff = Effect(what=f"spread over {by} of {metric} at the last generation")
    for seed, runs in by_seed.items():
        for r in runs:
            if matches(r.config, where):
                _put(eff.arms, f"{by}={getattr(r.config, by)}", seed, _last(r, metric))
    return eff


def stat_first_generation(by_seed: Mapping[int, Sequence[Any]], metric: str, where: Mapping[str, Any]) -> Effect:
    """The value of ``metric`` at generation 1 (mean over the matching runs of a seed)."""
    eff = Effect(what=f"{metric} at generation 1")
    for seed, runs in by_seed.items():
        vals = [_first(r, metric) for r in runs if matches(r.config, where)]
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            eff.values[seed] = sum(vals) / len(vals)
    return eff


STATISTICS = {"decline": stat_decline, "size_order": stat_size_order, "pearson": stat_pearson,
              "pearson_gap": stat_pearson_gap, "difference": stat_difference, "arms_by": stat_arms_by,
              "first_generation": stat_first_generation}


