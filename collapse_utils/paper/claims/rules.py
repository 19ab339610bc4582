"""The verdict rules of the claims table: a claim's per-seed effects d_s (oriented so that the paper's claim says
d > 0) reduced to holds / does not hold / not resolved.

Two rules, each fixed before the numbers it judged were seen and printed above the table verbatim:

* :data:`RULE_TEXT` (:func:`t_verdict`, :func:`tost_verdict`), the table's verdict: a two-sided 95 % t interval
  of the per-seed effects with k − 1 degrees of freedom; equivalence by two one-sided t tests (TOST, 5 %) against
  a margin stated in the claim; one seed never resolves a claim.
* :data:`RULE_V1_TEXT` (:func:`verdict`, :func:`equivalence_verdict`), the first rule (m > 2·se, or the FD noise
  floor), kept in its own column so that no row is silently re-judged. With k = 3 seeds, m > 2·se is a one-sided
  test at p ≈ 0.09, weaker than it reads; and the FD noise floor (the FD between two real sets) is a
  "distinguishable from real" line, not the noise of a difference between two models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Sequence

# ---------------------------------------------------------------------------------------------- the rule
# FD claims use the preset's Fréchet distance (presets.Scale.fid_mode: the Inception FID needs 299x299 inputs and
# means little on 8x8 MNIST, so the CPU presets use fd_lenet, a LeNet trained on MNIST).

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_RESOLVED = "not resolved at this scale"
NOT_RESOLVED_ONE_SEED = "not resolved (1 seed)"
NOT_RUN = "not run"

LEVEL = 0.95  # the t interval's two-sided confidence level (RULE_TEXT)
TOST_ALPHA = 0.05  # each one-sided test of an equivalence claim (RULE_TEXT)

RULE_TEXT = """\
Every claim is reduced to per-seed effects d_s, each computed within one seed (the arms of a seed are paired),
oriented so that the paper's claim says d > 0. Let k = number of seeds with a value, m = mean(d_s), sd = sample
sd (ddof=1), se = sd/√k, and t(q, k−1) the q-quantile of Student's t with k−1 degrees of freedom.
- Effect claims, k ≥ 2: the two-sided 95 % interval m ± t(0.975, k−1)·se. **holds** if its lower end is > 0;
  **does not hold** if its upper end is < 0; otherwise **not resolved at this scale**. (The claims are
  directional; the two-sided level was chosen so that each direction is a one-sided test at 2.5 %.)
- k = 1: **not resolved (1 seed)**, for every claim, Fréchet-distance claims included.
- Fréchet-distance claims use the same rule: the noise of a difference between two models is the seed spread of
  that difference. The FD noise floor f (FD between two disjoint held-out real sets of the size used) is shown
  beside the value as the "distinguishable from real" line; it is not part of the verdict.
- Equivalence claims (the paper says "almost identical") state a margin δ in the claim's units, fixed with the
  claim. For every pair of arms, the per-seed paired differences give m ± t(0.95, k−1)·se, the 90 % interval of
  two one-sided tests at 5 % (TOST): **holds** if every pair's 90 % interval lies inside (−δ, δ); **does not
  hold** if some pair's 95 % two-sided interval lies wholly outside [−δ, δ]; otherwise not resolved at this scale.
- A metric that cannot be computed here (e.g. fd_dinov2 without DINOv2 weights) → "not resolved: <reason>".
- Paper-scale-only headline numbers (iteration-1 baselines): "not resolved at this scale" unless the preset is
  paper; there the claim holds if the mean over seeds lies within ±10% of the paper's value (of the ends of the
  paper's range when it gives one), and does not hold otherwise.
- Runs missing or unfinished in the run store: "not run", with the figure command that makes them."""

RULE_V1_TEXT = """\
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
    """The first rule's verdict of an effect claim from its per-seed effects ``values`` (:data:`RULE_V1_TEXT`).

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
    """The first rule's verdict of an equivalence claim (the paper: "almost identical") from each arm's per-seed
    values (:data:`RULE_V1_TEXT`)."""
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


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t distribution with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(q, df))


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The two-sided ``level`` t interval m ± t((1 + level)/2, k−1)·se of the finite ``values`` (NaN for k < 2)."""
    s = summarize(values)
    if s.k < 2:
        return math.nan, math.nan
    half = t_quantile(0.5 + level / 2, s.k - 1) * s.se
    return s.mean - half, s.mean + half


def t_verdict(values: Sequence[float]) -> str:
    """The verdict of an effect claim from its per-seed effects ``values`` (the rule in :data:`RULE_TEXT`)."""
    s = summarize(values)
    if s.k == 0:
        return "not resolved: no value"
    if s.k == 1:
        return NOT_RESOLVED_ONE_SEED
    low, high = t_interval(values)
    if low > 0:
        return HOLDS
    if high < 0:
        return DOES_NOT_HOLD
    return NOT_RESOLVED


def paired_differences(arms: Mapping[str, Mapping[int, float]]) -> dict[tuple[str, str], list[float]]:
    """For every pair of arms (a, b), the per-seed differences a_s − b_s over the seeds both have a value for."""
    out = {}
    for a, b in combinations(sorted(arms), 2):
        seeds = sorted(set(arms[a]) & set(arms[b]))
        out[(a, b)] = [float(arms[a][s]) - float(arms[b][s]) for s in seeds
                       if arms[a][s] is not None and arms[b][s] is not None
                       and math.isfinite(float(arms[a][s])) and math.isfinite(float(arms[b][s]))]
    return out


def tost_verdict(arms: Mapping[str, Mapping[int, float]], margin: float | None) -> str:
    """The verdict of an equivalence claim from each arm's per-seed values (seed → value) and its margin δ: two
    one-sided t tests at :data:`TOST_ALPHA` on every pair's paired differences (the rule in :data:`RULE_TEXT`)."""
    if margin is None or not math.isfinite(margin) or margin <= 0:
        return "not resolved: no equivalence margin"
    pairs = paired_differences(arms)
    if not pairs:
        return "not resolved: fewer than two arms with a value"
    k = min(len(d) for d in pairs.values())
    if k == 0:
        return "not resolved: no seed with a value in every arm"
    if k < 2:
        return NOT_RESOLVED_ONE_SEED
    inside = all(-margin < lo and hi < margin
                 for lo, hi in (t_interval(d, 1 - 2 * TOST_ALPHA) for d in pairs.values()))
    if inside:
        return HOLDS
    if any(lo > margin or hi < -margin for lo, hi in (t_interval(d, LEVEL) for d in pairs.values())):
        return DOES_NOT_HOLD
    return NOT_RESOLVED
