"""The paper's claims checked against the run store: ``python -m collapse_utils claims`` writes the claims table.

Five parts: the verdict rule (:mod:`.rules`), the catalogue of claims (:mod:`.catalogue`), the statistics that
reduce one seed's runs to an effect (:mod:`.statistics`), the claims registered before their data with their own
statistics (:mod:`.registered`, :mod:`.registered2`, :mod:`.registered3`, :mod:`.registered4`, each judged only on
seeds never run when it was written; report.REGISTRATIONS lists them with their commits) and the evaluation and
report (:mod:`.report`).

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
generation's metrics.json (and its content record) and writes nothing else there.
"""

from .rules import (DOES_NOT_HOLD, HOLDS, LEVEL, NOT_RESOLVED, NOT_RESOLVED_ONE_SEED, NOT_RUN, RULE_TEXT,
    RULE_V1_TEXT, Summary, TOST_ALPHA, equivalence_verdict, headline_verdict, paired_differences, spread, summarize,
    t_interval, t_quantile, t_verdict, tost_verdict, verdict)  # noqa: F401
from .catalogue import (CLAIMS, Claim)  # noqa: F401
from .registered import CONFIRM_SEEDS, EXPLORE_SEEDS  # noqa: F401
from .statistics import (Effect, STATISTICS, matches, stat_arms_by, stat_decline, stat_difference,
    stat_first_generation, stat_pearson, stat_pearson_gap, stat_size_order)  # noqa: F401
from .report import (Context, Row, RunCache, check_claims, claim_configs,
    claim_metric_names, claim_params, default_claims_path, registered_run_sets, REGISTERED, REGISTERED_IN,
    REGISTRATIONS, Registration,
    describe, evaluate, noise_floor, regenerate_command,
    render, write_claims, _cmd_claims)  # noqa: F401
