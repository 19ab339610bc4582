"""Claims registered before their data: each row and the statistic that judges it were committed before any run
of the seeds that judge it (:data:`CONFIRM_SEEDS`) existed, and are not changed afterwards (a test compares this
file with its registered version). The rule is the table's (rules.RULE_TEXT, a two-sided 95 % t interval of the
per-seed effects). The same statistic on :data:`EXPLORE_SEEDS`, whose runs were seen before these rows were
written, is shown beside the verdict as exploratory and is never judged.

The rows test what the memorization index of docs/PAPER.md §3.7 cannot say alone, with the metrics measured against
a real reference fixed per run (ρ_t, the real-referenced copy rate c_t; §3.7, `rho_pixel`,
`copy_rate_real_pixel`), and paper content that had no row (§6.1 "GS decays near-exponentially", Appendix D.2
"the GS–entropy link holds across paradigms", "accumulate degrades more slowly than replace"):

* R1 the transition: every dataset size that generalizes at generation 1 (ρ_1 ≥ 0.8, decided per seed from
  generation-1 data) moves toward memorization: c_last − c_1 > 0 for each such size;
* R2 small sets memorize from the start: every size with ρ_1 < 0.5 has c_t ≥ 0.5 at every generation;
* R3 a scale-free size order at generation 1: ρ_1 rises with the dataset size;
* R4 GS decays near-exponentially: ln GS is closer to a straight line in the generation than GS is;
* R5/R6 accumulate degrades more slowly than replace: the decline of ln GS (R5) and of the training-set entropy
  (R6) from generation 1 to the last is smaller under accumulate-subsample than under replace (vanilla runs);
* R7 the GS–entropy link holds across paradigms: r(entropy, ln GS) > 0, pooled over both paradigms' vanilla runs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .catalogue import Claim
from .statistics import Effect, _first, _last, _ln, _put, _value, matches

CONFIRM_SEEDS = (3, 4, 5)  # no run of these seeds existed in any run store when these rows were committed
EXPLORE_SEEDS = (0, 1, 2)  # the seeds of the figure set, seen before these rows were written

RHO = "rho_pixel"  # ρ_t: median NN distance of G_t to D_t ÷ that of held-out real images to D_1 (PAPER.md §3.7)
COPY = "copy_rate_real_pixel"  # c_t: share of G_t closer to D_t than 95 % of held-out real images are to D_1
GENERALIZES = 0.8  # ρ_1 ≥ this: the size generalizes at generation 1 (R1)
MEMORIZES = 0.5  # ρ_1 < this: the size memorizes from the start (R2), and c_t ≥ this counts as memorizing


def stat_transition(by_seed: Mapping[int, Sequence[Any]], rho: str = RHO, copy: str = COPY,
                    cut: float = GENERALIZES) -> Effect:
    """d_s = min over the sizes n with ρ_1(n) ≥ ``cut`` in seed s of [c_last(n) − c_1(n)] (no value for a seed
    where no size qualifies)."""
    eff = Effect(what=f"min over n with {rho} ≥ {cut:g} at gen 1 of [{copy}: last − gen 1]")
    for seed, runs in by_seed.items():
        per = {r.config.n: _last(r, copy) - _first(r, copy) for r in runs if _first(r, rho) >= cut}
        if per and all(math.isfinite(v) for v in per.values()):
            eff.values[seed] = min(per.values())
            for n, v in sorted(per.items()):
                _put(eff.parts, f"n={n}", seed, v)
    return eff


def stat_memorize_from_start(by_seed: Mapping[int, Sequence[Any]], rho: str = RHO, copy: str = COPY,
                             cut: float = MEMORIZES, level: float = MEMORIZES) -> Effect:
    """d_s = min over the sizes n with ρ_1(n) < ``cut`` in seed s and over generations t of [c_t(n) − ``level``]
    (no value for a seed where no size qualifies)."""
    eff = Effect(what=f"min over n with {rho} < {cut:g} at gen 1 and over generations of [{copy} − {level:g}]")
    for seed, runs in by_seed.items():
        per = {r.config.n: min((_value(g, copy) for g in r.generations), default=math.nan) - level
               for r in runs if _first(r, rho) < cut}
        if per and all(math.isfinite(v) for v in per.values()):
            eff.values[seed] = min(per.values())
            for n, v in sorted(per.items()):
                _put(eff.parts, f"n={n}", seed, v)
    return eff


def _r2(xs: Sequence[float], ys: Sequence[float]) -> float:
    """R² of the least-squares line of ``ys`` on ``xs`` (NaN for fewer than 3 points or no spread)."""
    k = len(xs)
    if k < 3 or not all(math.isfinite(v) for v in (*xs, *ys)):
        return math.nan
    mx, my = sum(xs) / k, sum(ys) / k
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return math.nan
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy * sxy / (sxx * syy)


def stat_log_linear(by_seed: Mapping[int, Sequence[Any]], metric: str = "gs_pixel") -> Effect:
    """d_s = min over sizes n of [R²(ln x_t on t) − R²(x_t on t)] over the generations t of the run: positive when
    the decay is closer to exponential than to linear."""
    eff = Effect(what=f"min over n of [R²(ln {metric} on generation) − R²({metric} on generation)]")
    for seed, runs in by_seed.items():
        per = {}
        for r in sorted(runs, key=lambda r: r.config.n):
            t = [float(g.generation) for g in r.generations]
            x = [_value(g, metric) for g in r.generations]
            per[r.config.n] = _r2(t, [_ln(v) for v in x]) - _r2(t, x)
        if per and all(math.isfinite(v) for v in per.values()):
            eff.values[seed] = min(per.values())
            for n, v in per.items():
                _put(eff.parts, f"n={n}", seed, v)
    return eff


def stat_decline_gap(by_seed: Mapping[int, Sequence[Any]], metric: str, a: Mapping[str, Any],
                     b: Mapping[str, Any], log: bool = False) -> Effect:
    """d_s = [x_last − x_1] of arm ``a`` − [x_last − x_1] of arm ``b`` (of ln x when ``log``): positive when ``a``
    declines less than ``b``."""
    eff = Effect(what=f"[{'ln ' if log else ''}{metric}: last − gen 1] of {a.get('paradigm')} − of "
                      f"{b.get('paradigm')}")
    f = _ln if log else float
    for seed, runs in by_seed.items():
        arms = {}
        for name, arm in (("a", a), ("b", b)):
            found = [r for r in runs if matches(r.config, arm)]
            if len(found) == 1:
                arms[name] = f(_last(found[0], metric)) - f(_first(found[0], metric))
        if len(arms) == 2 and all(math.isfinite(v) for v in arms.values()):
            eff.values[seed] = arms["a"] - arms["b"]
            _put(eff.parts, str(a.get("paradigm")), seed, arms["a"])
            _put(eff.parts, str(b.get("paradigm")), seed, arms["b"])
    return eff


STATISTICS = {"transition": stat_transition, "memorize_from_start": stat_memorize_from_start,
              "log_linear": stat_log_linear, "decline_gap": stat_decline_gap}

_VANILLA = (("F7", {"methods": ["none"]}),)  # F7's vanilla arms: replace and accumulate-subsample
_REPLACE = {"paradigm": "replace", "selection": "none"}
_ACCUMULATE = {"paradigm": "accumulate_subsample", "selection": "none"}


def _registered() -> list[Claim]:
    kw = dict(seeds=CONFIRM_SEEDS, exploratory_seeds=EXPLORE_SEEDS)
    return [
        Claim("R1", "F2", f"The transition: every dataset size that generalizes at generation 1 (ρ_1 ≥ "
              f"{GENERALIZES:g}, per seed) moves toward memorization: its copy rate against the real reference "
              "rises from generation 1 to the last (replace)",
              "generalization turns into memorization over the iterations (the title; §6.1)", "transition",
              dict(rho=RHO, copy=COPY, cut=GENERALIZES), **kw),
        Claim("R2", "F2", f"Small sets memorize from the start: every size with ρ_1 < {MEMORIZES:g} has a copy "
              f"rate against the real reference ≥ {MEMORIZES:g} at every generation (replace)",
              "1K memorizes from iteration 1 (§6.1)", "memorize_from_start",
              dict(rho=RHO, copy=COPY, cut=MEMORIZES, level=MEMORIZES), **kw),
        Claim("R3", "F2", "A scale-free size order at generation 1: ρ_1 rises with the dataset size",
              "smaller datasets memorize earlier (§6.1)", "size_order", dict(metric=RHO), **kw),
        Claim("R4", "F2", "GS decays near-exponentially: ln GS is closer to a straight line in the generation "
              "than GS is, at every dataset size (replace)",
              "GS decays near-exponentially (§6.1)", "log_linear", dict(metric="gs_pixel"), **kw),
        Claim("R5", "F7", "Accumulate degrades more slowly than replace: ln GS falls less from generation 1 to the "
              "last under accumulate-subsample (vanilla)",
              "accumulating real and synthetic data slows the collapse (§6.4, Fig. 7: vanilla accumulate above "
              "vanilla replace)", "decline_gap",
              dict(metric="gs_{fs}", a=_ACCUMULATE, b=_REPLACE, log=True), sources=_VANILLA, **kw),
        Claim("R6", "F9", "Accumulate degrades more slowly than replace: the training-set entropy falls less from "
              "generation 1 to the last under accumulate-subsample (vanilla)",
              "entropy stays higher under accumulate (§6.4, Fig. 9: vanilla accumulate above vanilla replace)",
              "decline_gap", dict(metric="entropy_{fs}", a=_ACCUMULATE, b=_REPLACE, log=False),
              sources=(("F9", {"methods": ["none"]}),), **kw),
        Claim("R7", "F7", "The GS–entropy link holds across paradigms: training-set entropy predicts ln GS, pooled "
              "over the replace and accumulate-subsample vanilla runs and their generations (r > 0)",
              "the relationship between GS and entropy is robust (App. D.2's title, PAPER.md §1; its text was not "
              "retrieved)", "pearson",
              dict(x="entropy_{fs}", y="gs_{fs}"), sources=_VANILLA, **kw),
    ]


REGISTERED: list[Claim] = _registered()
