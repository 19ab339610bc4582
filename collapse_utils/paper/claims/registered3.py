"""The third set of claims registered before their data (rows R13–R15): rows R1–R3 again, with the distances to the
fixed real reference taken in the bundled MNIST LeNet's features instead of pixels (docs/PAPER.md §3.7, "the same in
a network's feature space"). Each row and its statistic were committed before any run of the seeds that judge them
(:data:`CONFIRM_SEEDS`) existed, and before any LeNet-space value of any seed had been computed; they are not
changed afterwards (a test compares this file with its registered version). The rule is the table's
(rules.RULE_TEXT); the same statistic on :data:`EXPLORE_SEEDS` is shown beside the verdict as exploratory and is
never judged.

The question these rows answer: is the transition of R1–R3 a property of pixel distances between 8×8 digits, or
does it hold where distances measure digit shape (a one-pixel shift counts little)? The cut-offs are R1–R3's
(ρ_1 ≥ 0.8 generalizes, ρ_1 < 0.5 memorizes, c_t ≥ 0.5 memorizing); ρ and c are ratios to real images' own
distances, so the same cut-offs mean the same in any space.

* R13 the transition in LeNet space: every size with ρ_1 ≥ 0.8 has c_last − c_1 > 0;
* R14 small sets memorize from the start in LeNet space: every size with ρ_1 < 0.5 has c_t ≥ 0.5 at every
  generation (no value, hence not resolved, for a seed where no size has ρ_1 < 0.5);
* R15 a scale-free size order at generation 1 in LeNet space: ρ_1 rises with the dataset size.
"""

from __future__ import annotations

from .catalogue import Claim
from .registered import GENERALIZES, MEMORIZES

CONFIRM_SEEDS = (6, 7, 8)  # no demo run of these seeds existed when these rows were committed
EXPLORE_SEEDS = (0, 1, 2)  # the seeds of the figure set (their LeNet-space values not yet computed either)

RHO = "rho_lenet"  # ρ_t with distances between LeNet fc2 features (PAPER.md §3.7)
COPY = "copy_rate_real_lenet"  # c_t with the same distances

STATISTICS: dict = {}  # the rows reuse R1–R3's statistics (registered.STATISTICS, statistics.STATISTICS)


def _registered() -> list[Claim]:
    kw = dict(seeds=CONFIRM_SEEDS, exploratory_seeds=EXPLORE_SEEDS)
    return [
        Claim("R13", "F2", f"The transition in LeNet space: every dataset size that generalizes at generation 1 "
              f"(ρ_1 ≥ {GENERALIZES:g} in LeNet features, per seed) moves toward memorization: its copy rate against "
              "the real reference in LeNet features rises from generation 1 to the last (replace)",
              "generalization turns into memorization over the iterations (the title; §6.1)", "transition",
              dict(rho=RHO, copy=COPY, cut=GENERALIZES), **kw),
        Claim("R14", "F2", f"Small sets memorize from the start in LeNet space: every size with ρ_1 < {MEMORIZES:g} "
              f"(LeNet features) has a copy rate against the real reference ≥ {MEMORIZES:g} at every generation "
              "(replace)",
              "1K memorizes from iteration 1 (§6.1)", "memorize_from_start",
              dict(rho=RHO, copy=COPY, cut=MEMORIZES, level=MEMORIZES), **kw),
        Claim("R15", "F2", "A scale-free size order at generation 1 in LeNet space: ρ_1 (LeNet features) rises "
              "with the dataset size",
              "smaller datasets memorize earlier (§6.1)", "size_order", dict(metric=RHO), **kw),
    ]


REGISTERED: list[Claim] = _registered()
