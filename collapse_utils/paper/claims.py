"""The paper's claims checked against the run store: ``python -m collapse_utils claims`` writes the claims table.

The table goes where ``--out`` says; by default beside the run store it was computed from, named by its preset
(``<run store>/CLAIMS-demo.md``), so checking a store never overwrites the table committed in the repository.
The committed docs/CLAIMS.md is rewritten only when asked for by name (``--out docs/CLAIMS.md``).

Each claim of docs/PAPER.md §6 (headline results) and §2 (the figures' read-off values) is one entry of
:data:`CLAIMS`: the figure whose runs it uses, the paper's value or finding, and a statistic that reduces the
runs of one seed to one number d_s, "the effect", oriented so that the paper's claim says d > 0. The verdict
rule (:data:`RULE_TEXT`, :func:`verdict`, :func:`equivalence_verdict`) was fixed before any number was seen and
is printed above the table verbatim. Nothing is trained here: runs missing from the store give the verdict
"not run" naming the figure command that makes them; metrics the stored runs lack are computed post-hoc from
their artifacts (:func:`collapse_utils.loop.run_metrics.ensure_figure_metrics`), which adds them to each
generation's metrics.json and writes nothing else there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..core.methods import short_label_of
from ..core.vocab import FID_MODES, PARADIGM_SHORT_LABELS

# ---------------------------------------------------------------------------------------------- the rule
# FD claims use the preset's Fréchet distance (presets.Scale.fid_mode: the Inception FID needs 299x299 inputs and
# means little on 8x8 MNIST, so the CPU presets use fd_lenet, a LeNet trained on MNIST).

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_RESOLVED = "not resolved at this scale"
NOT_RESOLVED_ONE_SEED = "not resolved (1 seed)"
NOT_RUN = "not run"

RULE_TEXT = """\
Every claim is reduced to a per-seed scalar d_s ("the effect"), oriented so that the paper's claim says d > 0.
Let k = number of seeds with a value, m = mean(d_s), sd = sample sd (ddof=1), se = sd/√k. For claims on a
Fréchet distance, f = the FD noise floor (FD between two disjoint held-out real sets of the size used); for
other claims f = 0.
- k ≥ 2: **holds** if m > 0 and m > max(2·se, f); **does not hold** if m < 0 and |m| > max(2·se, f);
  otherwise **not resolved at this scale**.
- k = 1: for FD claims, holds if d > 2f > 0, does not hold if d < −2f < 0, else not resolved; for non-FD claims
  always **not resolved (1 seed)**.
- Equivalence claims (the paper says "almost identical"): d is the spread D = max − min over the arms of their
  per-seed-mean values, noise N = 2·max(se over arms) + f; holds if D ≤ N, does not hold if D > 2N, else not
  resolved (k = 1: not resolved).
- A metric that cannot be computed here (e.g. fd_dinov2 without DINOv2 weights) → "not resolved: <reason>".
- Paper-scale-only headline numbers (iteration-1 baselines): "not resolved at this scale" unless the preset is
  paper; there the claim holds if the mean over seeds lies within ±10% of the paper's value (of the ends of the
  paper's range when it gives one), and does not hold otherwise.
- Runs missing or unfinished in the run store: "not run", with the figure command that makes them."""


@dataclass(frozen=True)
class Summary:
    """The per-seed effects of one claim: k, mean, sample sd and standard error (NaN where undefined)."""

    k: int
    mean: float
    sd: float
    se: float


def summarize(values: Sequence[float]) -> Summary:
    """k, m = mean, sd (ddof=1; NaN for k < 2), se = sd/√k of the finite ``values``."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    k = len(xs)
    if k == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    m = sum(xs) / k
    if k < 2:
        return Summary(k, m, math.nan, math.nan)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (k - 1))
    return Summary(k, m, sd, sd / math.sqrt(k))


def verdict(values: Sequence[float], *, fd: bool = False, floor: float | None = None) -> str:
    """The verdict of an effect claim from its per-seed effects ``values`` (the rule in :data:`RULE_TEXT`).

    ``fd``: a claim on a Fréchet distance, whose noise floor ``floor`` (f) must be given; other claims use f = 0.
    """
    s = summarize(values)
    if s.k == 0:
        return "not resolved: no value"
    if fd and (floor is None or not math.isfinite(floor)):
        return "not resolved: no noise floor"
    f = float(floor) if fd else 0.0
    if s.k == 1:
        if not fd:
            return NOT_RESOLVED_ONE_SEED
        d = s.mean
        if d > 2 * f > 0:
            return HOLDS
        if d < -2 * f < 0:
            return DOES_NOT_HOLD
        return NOT_RESOLVED_ONE_SEED
    bar = max(2 * s.se, f)
    if s.mean > 0 and s.mean > bar:
        return HOLDS
    if s.mean < 0 and abs(s.mean) > bar:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def spread(arms: Mapping[str, Sequence[float]], *, fd: bool = False, floor: float | None = None
           ) -> tuple[float, float, int]:
    """``(D, N, k)`` of an equivalence claim: the spread D = max − min of the arms' per-seed means, the noise
    N = 2·max(se over arms) + f, and k = the fewest seeds any arm has (NaN where undefined)."""
    stats = [summarize(v) for v in arms.values()]
    stats = [s for s in stats if s.k > 0]
    if len(stats) < 2:
        return math.nan, math.nan, 0
    means = [s.mean for s in stats]
    k = min(s.k for s in stats)
    f = float(floor) if fd and floor is not None else 0.0
    noise = 2 * max(s.se for s in stats) + f if k >= 2 else math.nan
    return max(means) - min(means), noise, k


def equivalence_verdict(arms: Mapping[str, Sequence[float]], *, fd: bool = False, floor: float | None = None) -> str:
    """The verdict of an equivalence claim (the paper: "almost identical") from each arm's per-seed values."""
    if fd and (floor is None or not math.isfinite(floor)):
        return "not resolved: no noise floor"
    d, noise, k = spread(arms, fd=fd, floor=floor)
    if k == 0:
        return "not resolved: fewer than two arms with a value"
    if k < 2:
        return NOT_RESOLVED_ONE_SEED
    if d <= noise:
        return HOLDS
    if d > 2 * noise:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def headline_verdict(values: Sequence[float], paper: tuple[float, float], preset: str) -> str:
    """A paper-scale-only number: within ±10% of the paper's value (range ``paper`` = (low, high)) at paper scale."""
    if preset != "paper":
        return NOT_RESOLVED
    s = summarize(values)
    if s.k == 0:
        return "not resolved: no value"
    low, high = paper
    return HOLDS if 0.9 * low <= s.mean <= 1.1 * high else DOES_NOT_HOLD


# ---------------------------------------------------------------------------------------------- the claims
@dataclass(frozen=True)
class Claim:
    """One claim of the paper, as checked here.

    ``statistic`` names the function of :data:`STATISTICS` that gives the per-seed effects from the claim's runs
    with ``params``; metric names in ``params`` may hold ``{fs}`` (the preset's feature space, GS/entropy of the
    selection figures), ``{fd}`` (the preset's Fréchet distance, presets.Scale.fid_mode). ``sources`` are the figures
    (with figure_configs overrides) whose configurations hold the runs; default: ``figure`` alone. ``kind``:
    ``effect`` (:func:`verdict`), ``equivalence`` (:func:`equivalence_verdict`) or ``headline``
    (:func:`headline_verdict`, with ``paper_value``). ``fd``: the claim is on a Fréchet distance (noise floor).
    """

    id: str
    figure: str
    claim: str
    paper: str
    statistic: str
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "effect"
    fd: bool = False
    sources: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    paper_value: tuple[float, float] | None = None

    def figure_sources(self) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        return self.sources or ((self.figure, {}),)


def _arm(paradigm: str | None = None, selection: str | None = None, **fields: Any) -> dict[str, Any]:
    """The config fields that pick one arm of a figure's runs (``None`` fields are not compared)."""
    out = dict(paradigm=paradigm, selection=selection, **fields)
    return {k: v for k, v in out.items() if v is not None}


_METHOD = {m: short_label_of(m) for m in ("threshold", "greedy")}  # the registry's short labels: TDF, Greedy
_PARADIGM = PARADIGM_SHORT_LABELS
# PAPER.md §2 F7/F9 read-off at it8 (CIFAR rows): vanilla, TDF, Greedy.
_F7_PAPER = {"replace": (18.9, 29.3, 30.8), "accumulate_subsample": (27.8, 35.1, 37.5)}
_F9_PAPER = {"replace": (524, 685, 699), "accumulate_subsample": (673, 737, 745)}
# PAPER.md §6.3 (CIFAR rows, it8): vanilla, TDF, Greedy.
_F8_PAPER = {"replace": (188.5, 112, 113), "accumulate_subsample": (87, 55.5, 53)}
_IDX = {"threshold": 1, "greedy": 2}


def _claims() -> list[Claim]:
    out: list[Claim] = [
        Claim("1", "F2", "GS decays across generations under replace, at every dataset size",
              "GS decays near-exponentially (§6.1; CIFAR-10 32768: ≈1810 → ≈615 over 10 iterations)",
              "decline", dict(metric="gs_pixel", log=True)),
        Claim("2", "F2", "Smaller datasets memorize earlier: generation-1 GS grows with the dataset size",
              "1K memorizes from iteration 1; sizes ≤4096 by iteration 2–3 (§6.1; it1 GS ≈105 at 1024 … ≈1810 at "
              "32768)", "size_order", dict(metric="gs_pixel")),
        Claim("3", "F3", "Training-set entropy falls under replace, at every dataset size",
              "pixel entropy falls monotonically for every size (§6.1; e.g. 15.7 → 14.07 ×10³ at 32768)",
              "decline", dict(metric="entropy_pixel", log=False)),
        Claim("4", "F4", "Training-set entropy predicts ln GS (pooled over sizes and generations)",
              "Pearson r = 0.91 between entropy and log GS (§6.2, Fig. 4a)", "pearson",
              dict(x="entropy_pixel", y="gs_pixel")),
        Claim("5", "F4", "The covariance trace is a weaker predictor of ln GS than entropy",
              "variance is a much weaker predictor (§6.2, Fig. 4b; no number given)", "pearson_gap",
              dict(x="entropy_pixel", z="cov_trace", y="gs_pixel")),
    ]
    n = 6
    for figure, metric, table, what in (("F7", "gs_{fs}", _F7_PAPER, "GS"), ("F9", "entropy_{fs}", _F9_PAPER,
                                                                            "training-set entropy")):
        for paradigm in ("replace", "accumulate_subsample"):
            for method in ("threshold", "greedy"):
                p = table[paradigm]
                out.append(Claim(
                    str(n), figure, f"{_METHOD[method]} raises {what} at the last generation vs vanilla "
                    f"({_PARADIGM[paradigm]})",
                    f"selection keeps {what} higher (§6.4; CIFAR {_PARADIGM[paradigm]} it8: vanilla {p[0]:g}, "
                    f"{_METHOD[method]} {p[_IDX[method]]:g})", "difference",
                    dict(metric=metric, a=_arm(paradigm, method), b=_arm(paradigm, "none"))))
                n += 1
    for paradigm in ("replace", "accumulate_subsample"):
        p = _F7_PAPER[paradigm]
        out.append(Claim(
            str(n), "F7", f"Greedy ≥ TDF on GS at the last generation ({_PARADIGM[paradigm]})",
            f"Greedy ≥ TDF on Gen in all four settings (§6.4; CIFAR {_PARADIGM[paradigm]} it8: TDF {p[1]:g}, "
            f"Greedy {p[2]:g})", "difference",
            dict(metric="gs_{fs}", a=_arm(paradigm, "greedy"), b=_arm(paradigm, "threshold"))))
        n += 1
    for paradigm in ("replace", "accumulate_subsample"):
        for method in ("threshold", "greedy"):
            p = _F8_PAPER[paradigm]
            out.append(Claim(
                str(n), "F8", f"{_METHOD[method]} lowers FD at the last generation vs vanilla ({_PARADIGM[paradigm]})",
                f"FID it8, CIFAR {_PARADIGM[paradigm]}: vanilla ≈{p[0]:g}, {_METHOD[method]} ≈{p[_IDX[method]]:g} "
                "(§6.3; FFHQ replace shows no FID gain)", "difference",
                dict(metric="{fd}", a=_arm(paradigm, "none"), b=_arm(paradigm, method)), fd=True))
            n += 1
    for method in ("threshold", "greedy"):
        out.append(Claim(
            str(n), "F10", f"{_METHOD[method]} keeps more real images in the training set than vanilla (accumulate)",
            "≈64% real at it8 with FFHQ+Greedy vs 12.5% under even subsampling (§6.5; CIFAR+Greedy ≈45% at it8, "
            "CIFAR+Filter ≈37%)", "difference",
            dict(metric="real_share", a=_arm("accumulate_subsample", method), b=_arm("accumulate_subsample", "none")),
            sources=(("F10", {}), ("F7", {"paradigms": ["accumulate_subsample"], "methods": ["none"]}))))
        n += 1
    for method in ("threshold", "greedy"):
        out.append(Claim(
            str(n), "F12", f"Selecting N from 2N ({_METHOD[method]}) beats training on 2N unselected images (replace)",
            "2N unselected helps less than selecting N from 2N (§6.6; CIFAR replace it6 FID: 2N 134, "
            f"{_METHOD[method]} {95.5 if method == 'threshold' else 97:g}, vanilla 155.5)", "difference",
            dict(metric="{fd}", a=_arm("replace_2n", "none"), b=_arm("replace", method)), fd=True))
        n += 1
    out.append(Claim(
        str(n), "F13", "The TDF decay factor barely matters (accumulate; FD at the last generation)",
        "TDF with α 0.80–0.98 gives almost identical FID, ≈53–55.5 at it8 on CIFAR accumulate (§6.7)",
        "arms_by", dict(metric="{fd}", where=_arm("accumulate_subsample", "threshold"), by="decay"),
        kind="equivalence", fd=True))
    n += 1
    # F11's figure plots the training-set entropy in pixels (entropy_pixel) for all three settings; its
    # within-digit MNND panel exists only for the conditional runs, so the unconditional comparison uses entropy.
    out += [
        Claim(str(n), "F11", "CFG collapses diversity: training-set entropy (entropy_pixel) at the last generation "
              "is lower with CFG than unconditional",
              "with CFG, diversity collapses (§6.8; CFG entropy ≈3.93 → ≈3.67 ×10³)", "difference",
              dict(metric="entropy_pixel", a=_arm(selection="none", conditional=False),
                   b=_arm(selection="none", conditional=True))),
        Claim(str(n + 1), "F11", "Selection restores diversity under CFG: training-set entropy (entropy_pixel) at the "
              "last generation is higher with CFG + TDF than with CFG",
              "TDF restores diversity; entropy rises instead of falling (§6.8; ≈3.93 → ≈3.99–4.00 ×10³)", "difference",
              dict(metric="entropy_pixel", a=_arm(selection="threshold", conditional=True),
                   b=_arm(selection="none", conditional=True))),
    ]
    n += 2
    for paradigm, (v, g) in (("replace", (1800, 1128)), ("accumulate_subsample", (1131, 860))):
        out.append(Claim(
            str(n), "F15", f"Greedy lowers FD_DINO at the last generation ({_PARADIGM[paradigm]})",
            f"FD_DINO at it7: vanilla ≈{v} → Greedy ≈{g} (§6.9)", "difference",
            dict(metric="fd_dinov2", a=_arm(paradigm, "none"), b=_arm(paradigm, "greedy")), fd=True))
        n += 1
    out += [
        Claim(str(n), "F2", "Memorization across generations: the memorization index falls under replace, at every "
              "dataset size", "generalization turns into memorization over the iterations (the title; §6.1)",
              "decline", dict(metric="mem_index_pixel", log=False)),
        Claim(str(n + 1), "F2", "The copy rate rises across generations under replace, at every dataset size",
              "by iteration 8 generated images are copies of their training neighbours (§2 F2, F17)",
              "decline", dict(metric="copy_rate_pixel", log=False, rise=True)),
    ]
    n += 2
    for dataset, label, metric, value, fig in (
            ("cifar10", "CIFAR-10 (32,768)", "fid", (27.5, 27.5), "F8"),
            ("ffhq32", "FFHQ (8,192)", "fid", (21.5, 22.0), "F8"),
            ("cifar10", "CIFAR-10", "gs_dinov2", (38.7, 38.7), "F7"),
            ("ffhq32", "FFHQ", "gs_dinov2", (30.2, 30.2), "F7")):
        what = "FID" if metric == "fid" else "DINO Gen"
        shown = f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}–{value[1]:g}"
        out.append(Claim(
            str(n), fig, f"Iteration-1 baseline: {what} of the model trained on real {label}",
            f"{what} ≈{shown} at iteration 1 (§6.10)", "first_generation",
            dict(metric=metric, where=_arm(selection="none", dataset=dataset)), kind="headline",
            fd=metric == "fid", paper_value=value))
        n += 1
    return out


CLAIMS: list[Claim] = _claims()


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
        parts.append(_PARADIGM.get(arm["paradigm"], arm["paradigm"]))
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


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass
class Context:
    """What every claim of one report shares: the preset, the seeds, the run store and the metric names."""

    preset: str
    seeds: tuple[int, ...]
    run_root: Any
    device: str | None = None
    run_root_given: bool = False

    @property
    def feature_space(self) -> str:
        from ..core.presets import scale

        return scale(self.preset).feature_space

    @property
    def fd_metric(self) -> str:
        from ..core.presets import scale

        return FID_MODES[scale(self.preset).fid_mode]


@dataclass
class Row:
    """One line of the table: the claim, what we measured, the verdict and the command that makes its runs."""

    claim: Claim
    ours: str
    verdict: str
    regenerate: str
    floor: tuple[str, int, float | None, str | None] | None = None  # (metric, count, f, why not)


def _format(value: Any, ctx: Context) -> Any:
    if isinstance(value, str):
        return value.format(fs=ctx.feature_space, fd=ctx.fd_metric)
    if isinstance(value, Mapping):
        return {k: _format(v, ctx) for k, v in value.items()}
    return value


def claim_params(claim: Claim, ctx: Context) -> dict[str, Any]:
    """The claim's statistic parameters with ``{fs}`` / ``{fd}`` filled in for the preset."""
    return {k: _format(v, ctx) for k, v in claim.params.items()}


def claim_metric_names(claim: Claim, ctx: Context) -> list[str]:
    """The per-generation metrics the claim's statistic reads."""
    p = claim_params(claim, ctx)
    return [p[k] for k in ("metric", "x", "z", "y") if k in p]


def _arms(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [params[k] for k in ("a", "b", "where") if k in params]


def claim_configs(claim: Claim, ctx: Context) -> list[Any]:
    """The run configurations the claim reads: its figures' configurations at the preset and seeds (deduplicated
    by run key), only the arms it compares, and one dataset (CIFAR-10 where the figure has several, as the
    paper's numbers cited here are its CIFAR rows)."""
    from .figures import figure_configs

    seen: dict[str, Any] = {}
    for figure, overrides in claim.figure_sources():
        for c in figure_configs(figure, ctx.preset, seeds=list(ctx.seeds), **dict(overrides)):
            seen.setdefault(c.run_key(), c)
    arms = _arms(claim_params(claim, ctx))
    configs = [c for c in seen.values() if not arms or any(matches(c, a) for a in arms)]
    datasets = sorted({c.dataset for c in configs})
    if len(datasets) > 1 and not any("dataset" in a for a in arms):
        keep = "cifar10" if "cifar10" in datasets else datasets[0]
        configs = [c for c in configs if c.dataset == keep]
    return configs


def regenerate_command(claim: Claim, ctx: Context) -> str:
    """The figure command that makes (and plots) the claim's runs."""
    figures = list(dict.fromkeys(f for f, _ in claim.figure_sources()))
    cmd = f"python -m collapse_utils figures --preset {ctx.preset} --only {','.join(figures)}"
    if list(ctx.seeds) != [0]:
        cmd += f" --param 'seeds={list(ctx.seeds)}'"
    if ctx.run_root_given:
        cmd += f" --run-root {ctx.run_root}"
    return cmd


class RunCache:
    """Finished runs read from the store once per report (nothing is trained), and the metrics computed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.runs: dict[str, Any] = {}
        self.failed: dict[str, str] = {}  # metric -> why it cannot be computed here
        self.done: set[tuple[str, str]] = set()  # (run key, metric) computed or found
        self.floors: dict[tuple[str, str, int], tuple[float | None, str | None]] = {}

    def floor(self, cfg: Any, metric: str, count: int) -> tuple[float | None, str | None]:
        """:func:`noise_floor`, once per (run, metric, count)."""
        key = (cfg.run_key(), metric, count)
        if key not in self.floors:
            self.floors[key] = noise_floor(cfg, metric, count)
        return self.floors[key]

    def get(self, cfg: Any) -> Any | None:
        """The finished run of ``cfg`` in the store, or None (missing, unfinished or damaged)."""
        from ..loop import rundir, store

        key = cfg.run_key()
        if key not in self.runs:
            run = None
            if store.is_finished(cfg, self.ctx.run_root):
                run = rundir.load_run(store.run_dir_for(cfg, self.ctx.run_root))
                if len(run.generations) < cfg.generations:
                    run = None
            self.runs[key] = run
        run = self.runs[key]
        # One run may be asked for under several spellings (F13's default-decay arm is F8's run): show the one asked.
        return None if run is None else store.as_requested(run, cfg)

    def ensure(self, runs: Sequence[Any], names: Sequence[str]) -> str | None:
        """Compute the metrics ``names`` the runs lack (post-hoc, into each generation's metrics.json); the
        reason when one cannot be computed here, else None."""
        from ..measure.features import FeatureSpaceUnavailableError
        from ..loop.run_metrics import dinov2_unavailable_reason, ensure_figure_metrics

        for name in [n for n in names if n not in ("real_share",)]:
            if name in ("fd_dinov2", "gs_dinov2", "entropy_dinov2"):
                why = dinov2_unavailable_reason(self.ctx.device)
                if why:
                    # the loader's own error differs with the environment (HF_HUB_OFFLINE, cache): not in the table
                    return ("DINOv2 unavailable (could not load 'facebook/dinov2-small': not in the Hugging Face "
                            "cache and COLLAPSE_DINOV2_PATH unset, or no connection)")
            if name in self.failed:
                return self.failed[name]
            todo = [r for r in runs if (r.config.run_key(), name) not in self.done]
            try:
                ensure_figure_metrics(todo, [name], device=self.ctx.device)
            except (ValueError, KeyError, NotImplementedError, FeatureSpaceUnavailableError, OSError,
                    RuntimeError) as exc:
                self.failed[name] = f"metric {name} not available ({_first_line(str(exc)) or type(exc).__name__})"
                return self.failed[name]
            self.done.update((r.config.run_key(), name) for r in todo)
        return None


def _shown_path(path: Any) -> str:
    """A run store as the table shows it: relative to the repository when it lies inside it."""
    from pathlib import Path

    from ..core.paths import repo_root

    try:
        return str(Path(path).relative_to(repo_root()))
    except ValueError:
        return str(path)


def _first_line(text: str, limit: int = 120) -> str:
    """The first sentence of a message, at most ``limit`` characters."""
    line = (text.strip().splitlines() or [""])[0]
    line = line.split("; ")[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def noise_floor(cfg: Any, metric: str, count: int) -> tuple[float | None, str | None]:
    """The FD noise floor f of ``metric`` at ``count`` images (``run_metrics.fd_noise_floor``), or the reason."""
    from ..loop.run_metrics import fd_noise_floor

    try:
        f = float(fd_noise_floor(cfg, metric, count))
    except (NotImplementedError, AttributeError, ValueError, OSError, RuntimeError) as exc:
        return None, f"no noise floor ({type(exc).__name__}: {_first_line(str(exc))})"
    return (f, None) if math.isfinite(f) else (None, "no noise floor (not finite)")


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{x:.3g}" if abs(x) < 1e5 else f"{x:.3e}"


def _mean_sd(values: Mapping[int, float]) -> str:
    s = summarize(list(values.values()))
    return _num(s.mean) if s.k < 2 else f"{_num(s.mean)} ± {_num(s.sd)}"


def _seeds(k: int) -> str:
    return f"{k} seed" + ("" if k == 1 else "s")


def describe(eff: Effect, kind: str, floor: float | None = None) -> str:
    """The ``ours`` cell: the effect's mean ± sd over seeds, the number of seeds, what it is, its components."""
    if kind == "equivalence":
        d, noise, k = spread(eff.arms, fd=floor is not None, floor=floor)
        arms = ", ".join(f"{a} {_mean_sd(v)}" for a, v in sorted(eff.arms.items()))
        text = f"{eff.what}: D = {_num(d)}, N = {_num(noise)} ({_seeds(k)}); arms: {arms}"
    else:
        s = summarize(list(eff.values.values()))
        text = f"{eff.what} = {_mean_sd(eff.values)} ({_seeds(s.k)})"
        if eff.parts:
            text += "; " + ", ".join(f"{name} {_mean_sd(v)}" for name, v in eff.parts.items())
    if floor is not None:
        text += f"; f = {_num(floor)}"
    return text


def evaluate(claim: Claim, ctx: Context, cache: RunCache) -> Row:
    """One claim's row: its runs read from the store, missing metrics computed post-hoc, the verdict by the rule."""
    from ..loop.store import run_state

    regen = regenerate_command(claim, ctx)
    if claim.kind == "headline" and ctx.preset != "paper":
        return Row(claim, "— (a paper-scale number)", NOT_RESOLVED, regen)
    configs = claim_configs(claim, ctx)
    if not configs:
        return Row(claim, "—", f"not resolved: the {ctx.preset} preset has no runs for this claim", regen)
    by_seed: dict[int, list[Any]] = {}
    missing: dict[int, list[str]] = {}
    for c in configs:
        run = cache.get(c)
        if run is None:
            missing.setdefault(c.seed, []).append(run_state(c, ctx.run_root)[1])
        else:
            by_seed.setdefault(c.seed, []).append(run)
    complete = {s: runs for s, runs in by_seed.items() if s not in missing}
    note = ""
    if missing:
        states = [st for v in missing.values() for st in v]
        shown = ", ".join(f"{st} ×{states.count(st)}" for st in sorted(set(states)))
        note = (f" ({len(states)} of {len(configs)} runs missing, seed{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(str, sorted(missing)))}: "
                f"{shown})")
    if not complete:
        return Row(claim, "—" + note, f"{NOT_RUN}: `{regen}`", regen)
    runs = [r for rs in complete.values() for r in rs]
    why = cache.ensure(runs, claim_metric_names(claim, ctx))
    if why:
        return Row(claim, "—" + note, f"not resolved: {why}", regen)
    params = claim_params(claim, ctx)
    try:
        eff = STATISTICS[claim.statistic](complete, **params)
    except ValueError as exc:
        return Row(claim, "—" + note, f"not resolved: {exc}", regen)
    floor_info, floor = None, None
    if claim.fd and claim.kind != "headline":
        metric = params["metric"]
        counts = [int(r.generations[-1].metrics.get(f"{metric}_samples") or r.config.n) for r in runs]
        count = max(counts)
        floor, why = cache.floor(runs[0].config, metric, count)
        floor_info = (metric, count, floor, why)
    if claim.kind == "equivalence":
        v = equivalence_verdict({a: list(x.values()) for a, x in eff.arms.items()}, fd=claim.fd, floor=floor)
    elif claim.kind == "headline":
        v = headline_verdict(list(eff.values.values()), claim.paper_value or (math.nan, math.nan), ctx.preset)
    else:
        v = verdict(list(eff.values.values()), fd=claim.fd, floor=floor)
    return Row(claim, describe(eff, claim.kind, floor) + note, v, regen, floor_info)


# ---------------------------------------------------------------------------------------------- the report
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(rows: Sequence[Row], ctx: Context, *, commit: str | None, date: str, out: str | None = None,
           source: str | None = None) -> str:
    """The claims table (docs/CLAIMS.md when asked for): the provenance, the Fréchet metric and its noise floor,
    the rule verbatim, the table. ``out``: the file as the command that rewrites it names it (``--out``), or None
    for the default file beside the run store; ``source``: the results bundle it was read from (``--from-results``)
    instead of a run store."""
    floors = {}
    for r in rows:
        if r.floor is not None:
            floors.setdefault((r.floor[0], r.floor[1]), r.floor)
    if floors:
        floor_text = "; ".join(f"`{m}` at {c} images: f = {_num(f)}" if f is not None else
                               f"`{m}` at {c} images: {why}" for (m, c), (_, _, f, why) in sorted(floors.items()))
    else:
        floor_text = "not computed (no FD claim had both its runs and its metric; see the FD rows)"
    seeds = ", ".join(map(str, ctx.seeds))
    cmd = f"python -m collapse_utils claims --preset {ctx.preset} --seeds {','.join(map(str, ctx.seeds))}"
    if source is not None:
        cmd = f"python -m collapse_utils claims --from-results {source}"
    elif ctx.run_root_given:
        cmd += f" --run-root {ctx.run_root}"
    if out is not None:
        cmd += f" --out {out}"
    lines = [
        "# The paper's claims, checked against the run store",
        "",
        f"Written by `{cmd}` (collapse_utils/paper/claims.py); do not edit by hand. The paper's values are those of "
        "docs/PAPER.md §6 and §2. Nothing is trained by this command; metrics missing from the stored runs are "
        "computed from their artifacts.",
        "",
        f"- preset: `{ctx.preset}`",
        f"- run store: `{_shown_path(ctx.run_root)}`",
        f"- seeds: {seeds}",
        f"- git commit: `{commit or 'unknown'}`",
        f"- date: {date}",
        f"- Fréchet distance of the FD claims: `{ctx.fd_metric}` (F15: `fd_dinov2`); noise floor (FD between two "
        f"disjoint held-out real sets of the size used): {floor_text}",
        f"- feature space of GS/entropy in the selection figures: `{ctx.feature_space}`",
        "- units: `gs_*` mean nearest-training-image L2 distance of the samples (pixel values 0–255 in `pixel`); "
        "`entropy_*` Kozachenko–Leonenko 1-NN entropy estimate of the training set (nats); `cov_trace` trace of "
        "its covariance; `real_share` fraction of real images in the training set; Fréchet distances in squared "
        "feature units; r is Pearson's r; \"ln\" is the natural log; \"last\" is the run's last generation",
        "",
        "## Verdict rule",
        "",
        RULE_TEXT,
        "",
        "## Claims",
        "",
        "| # | claim | figure | paper | ours | verdict | regenerate |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.claim
        lines.append("| " + " | ".join(_cell(x) for x in (c.id, c.claim, c.figure, c.paper, r.ours, r.verdict,
                                                           f"`{r.regenerate}`")) + " |")
    return "\n".join(lines) + "\n"


def check_claims(preset: str = "demo", *, run_root: Any = None, seeds: Sequence[int] = (0, 1, 2),
                 device: str | None = None, only: Sequence[str] | None = None,
                 show_run_root: bool | None = None) -> tuple[list[Row], Context]:
    """Every claim's row (those of the figures ``only`` when given) from the run store ``run_root``;
    ``show_run_root``: whether the regenerate commands name it (None: when it was given)."""
    from pathlib import Path

    from ..core.paths import default_run_root

    shown = run_root is not None if show_run_root is None else show_run_root
    ctx = Context(preset, tuple(int(s) for s in seeds), Path(run_root) if run_root else default_run_root(), device,
                  shown)
    cache = RunCache(ctx)
    claims = [c for c in CLAIMS if only is None or c.figure in only]
    return [evaluate(c, ctx, cache) for c in claims], ctx


def default_claims_path(preset: str, run_root: Any = None) -> Any:
    """Where the table goes unless ``--out`` says otherwise: beside the run store, named by the preset
    (``<run store>/CLAIMS-<preset>.md``), never the committed docs/CLAIMS.md."""
    from pathlib import Path

    from ..core.paths import default_run_root

    return Path(run_root if run_root is not None else default_run_root()) / f"CLAIMS-{preset}.md"


def write_claims(out: Any = None, preset: str = "demo", from_results: Any = None, **kw: Any) -> tuple[Any, list[Row]]:
    """Check the claims and write the markdown report to ``out`` (None: :func:`default_claims_path`); returns its
    path and the rows. ``from_results``: read the runs of a results bundle (collapse_utils.paper.results) instead of a
    run store, with its preset, seeds, commits and date, so the same bundle always gives the same table."""
    import time
    from pathlib import Path

    from ..core.provenance import git_commit

    commit, date, source = git_commit(), time.strftime("%Y-%m-%d %H:%M %Z"), None
    if from_results is not None:  # the bundle's runs, commits and date: the same bundle gives the same table
        from .results import read_bundle, store_dir

        record = read_bundle(from_results)
        preset, kw["run_root"] = record["preset"], store_dir(from_results)
        kw["seeds"] = sorted({s for f in record["figures"].values() for s in f["seeds"]})
        kw["show_run_root"] = False  # its rows' commands retrain into the user's own store, not the bundle's
        commit, date = ", ".join(record["trained_by_commit"]), record["written"]
        source = _shown_path(Path(from_results).resolve())
    rows, ctx = check_claims(preset, **kw)
    if from_results is not None:
        from .results import check_unchanged

        check_unchanged(from_results, record)  # a metric the bundle lacked would have been written into it
    shown = None if out is None else _shown_path(Path(out).resolve())
    out = Path(out) if out is not None else default_claims_path(preset, kw.get("run_root"))
    text = render(rows, ctx, commit=commit, date=date, out=shown, source=source)
    from ..core import io as cio

    cio.atomic_write_bytes(out, text.encode("utf-8"))  # a full disk keeps the previous report whole
    return out, rows


# ---------------------------------------------------------------------------------------------- CLI
CLAIMS_DESCRIPTION = """\
Check the paper's claims (docs/PAPER.md §6) against the finished runs of the run store and write one
markdown table: per claim the paper's value, ours (mean ± sd over seeds), the verdict by a rule fixed in
advance (printed above the table) and the figure command that makes its runs. Nothing is trained:
claims whose runs are missing say "not run" and name that command. Metrics the runs lack are computed
from their stored samples (added to each generation's metrics.json).

The table goes beside the run store as CLAIMS-<preset>.md (runs/CLAIMS-demo.md by default); the table
committed in the repository, docs/CLAIMS.md, is rewritten only when --out names it.

examples:
  python -m collapse_utils claims --preset demo --seeds 0,1,2        -> runs/CLAIMS-demo.md
  python -m collapse_utils claims --preset demo --out docs/CLAIMS.md  (rewrite the committed table)
"""


def add_cli(sub: Any) -> None:
    import argparse

    from ..core.cli_common import add_preset_option

    p = sub.add_parser("claims", help="check the paper's claims against the run store and write the claims table",
                       description=CLAIMS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_preset_option(p, "demo", "the scale of the runs (run --help describes the presets)")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds [default: 0,1,2]")
    p.add_argument("--out", help="the markdown file to write; docs/CLAIMS.md rewrites the committed table "
                                 "[default: <run store>/CLAIMS-<preset>.md]")
    p.add_argument("--only", help="comma-separated figure ids: only their claims (default: every claim)")
    p.add_argument("--device", help="torch device for post-hoc metrics (default: CUDA if available)")
    p.add_argument("--from-results", metavar="DIR", help="read a results bundle (e.g. results/demo) instead of a "
                   "run store: its preset and seeds; trains and computes nothing (docs/CLAIMS.md: "
                   "--from-results results/demo --out docs/CLAIMS.md)")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args: Any) -> int:
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    out = args.out  # None: beside the run store (default_claims_path), never docs/CLAIMS.md unless named
    only = [f.strip().upper() for f in args.only.split(",") if f.strip()] if args.only else None
    known = sorted({c.figure for c in CLAIMS}, key=lambda f: (len(f), f))
    unknown = [f for f in only or () if f not in known]
    if unknown or only == []:
        raise ValueError(f"--only: no claims for figure(s) {unknown or [args.only]}; the claims are of "
                         f"{', '.join(known)}")
    if args.from_results and args.run_root:
        raise ValueError("--from-results reads the bundle's own store; leave out --run-root")
    if args.run_root:
        from pathlib import Path

        root = Path(args.run_root)
        if not root.is_dir():
            raise ValueError(f"--run-root {root}: no such run store ({'a file' if root.exists() else 'not found'}); "
                             "name the folder the runs were made in")
    if args.device is not None:
        from ..core.devices import resolve_device

        try:
            resolve_device(args.device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"--device {args.device!r}: {exc}") from None
    path, rows = write_claims(out, args.preset, from_results=args.from_results, run_root=args.run_root, seeds=seeds,
                              device=args.device, only=only)
    counts: dict[str, int] = {}
    for r in rows:
        key = r.verdict.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {path}: {len(rows)} claims (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
    return 0
