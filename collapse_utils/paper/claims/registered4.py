"""The fourth set of claims registered before their data (rows R16–R18): Appendix D.1, the generalization-to-
memorization collapse under the accumulate paradigm (docs/PAPER.md §1 D.1: "the conclusion remains valid" beyond
replace). The rows read figure D1's runs (accumulate-subsample, the size sweep of F2); they and their statistics were
committed before any run of the seeds that judge them (:data:`CONFIRM_SEEDS`) existed in any run store, and are not
changed afterwards (a test compares this file with its registered version). The rule is the table's
(rules.RULE_TEXT); the same statistic on :data:`EXPLORE_SEEDS` is shown beside the verdict as exploratory and is
never judged.

Under accumulate-subsample each generation still trains on some real images (an even share, 1/t of D_t), so the
collapse may be slower than under replace or may not happen within the demo's five generations; these rows ask
whether it happens at all. The cut-offs are R1 and R2's (ρ_1 ≥ 0.8 generalizes, ρ_1 < 0.5 memorizes, c_t ≥ 0.5
memorizing), with ρ_t and c_t against the real reference fixed per run (PAPER.md §3.7):

* R16 the transition under accumulate: every size with ρ_1 ≥ 0.8 has c_last − c_1 > 0;
* R17 GS decays under accumulate at every dataset size: ln GS_1 − ln GS_last > 0 for the smallest decline over the
  sizes (the catalogue's row 1, under accumulate);
* R18 small sets memorize from the start under accumulate: every size with ρ_1 < 0.5 has c_t ≥ 0.5 at every
  generation, although real images stay in every D_t (no value, hence not resolved, for a seed where no size has
  ρ_1 < 0.5).
"""

from __future__ import annotations

from .catalogue import Claim
from .registered import COPY, GENERALIZES, MEMORIZES, RHO

CONFIRM_SEEDS = (9, 10, 11)  # no demo run of any figure at these seeds existed when these rows were committed
EXPLORE_SEEDS = (0, 1, 2)  # D1's seed 0 was seen (its figure); seeds 1 and 2 were being trained, not yet read

STATISTICS: dict = {}  # the rows reuse R1/R2's statistics (registered.STATISTICS) and the catalogue's decline


def _registered() -> list[Claim]:
    kw = dict(seeds=CONFIRM_SEEDS, exploratory_seeds=EXPLORE_SEEDS)
    return [
        Claim("R16", "D1", f"The transition under accumulate: every dataset size that generalizes at generation 1 "
              f"(ρ_1 ≥ {GENERALIZES:g}, per seed) moves toward memorization: its copy rate against the real "
              "reference rises from generation 1 to the last (accumulate-subsample)",
              "the generalization-to-memorization collapse holds on the accumulate paradigm (App. D.1)",
              "transition", dict(rho=RHO, copy=COPY, cut=GENERALIZES), **kw),
        Claim("R17", "D1", "GS decays across generations under accumulate, at every dataset size",
              "GS falls over the iterations under accumulate too, more slowly than under replace (App. D.1)",
              "decline", dict(metric="gs_pixel", log=True), **kw),
        Claim("R18", "D1", f"Small sets memorize from the start under accumulate: every size with ρ_1 < "
              f"{MEMORIZES:g} has a copy rate against the real reference ≥ {MEMORIZES:g} at every generation, "
              "though real images stay in every training set (accumulate-subsample)",
              "smaller datasets memorize earlier, on the accumulate paradigm as on replace (App. D.1)",
              "memorize_from_start", dict(rho=RHO, copy=COPY, cut=MEMORIZES, level=MEMORIZES), **kw),
    ]


REGISTERED: list[Claim] = _registered()
