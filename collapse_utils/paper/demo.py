"""The CPU demo: ``python -m collapse_utils demo`` shows the paper's findings, with numbers, in minutes.

It trains the demo's runs through the run store (:func:`collapse_utils.loop.store.ensure_runs`), using the same
configuration lists as the figure notebooks (:func:`~collapse_utils.loop.experiments.size_sweep` and
:func:`~collapse_utils.loop.experiments.selection_grid`), so runs made here are reused by ``figures --preset demo``
and vice versa. Then it checks the paper's four findings on its seed by fixed rules stated in :data:`RULES`,
gives each finding the verdicts of its rows of the claims table (:data:`FINDING_CLAIMS`, judged by the claims
rule, collapse_utils.paper.claims.rules, over the demo's runs: the package has one verdict system), prints them,
writes them to ``summary.txt`` / ``summary.json`` and draws F2, F3, F4 and the selection comparison with
:mod:`collapse_utils.paper.plotting`.

The rules were fixed before the demo's scale was chosen and are not tuned to pass: a finding that does not
appear at the demo's seed is printed as "not seen at seed s" (benchmarks/demo_findings.md records every
experiment). A verdict needs several seeds: the claims rule (a two-sided 95 % t interval of per-seed effects)
leaves every claim "not resolved (1 seed)" on the demo's one seed; docs/CLAIMS.md judges the same rows over the
figure set's three seeds.

Runs of the demo (``--preset demo``; see ``presets.SCALES["demo"]`` and ``presets._demo``):

* replace, vanilla, at the sweep sizes, ≥ 5 generations (findings 1–3, F2–F4);
* at the selection size: replace with the Threshold Decay Filter and with Greedy Selection (pixel space, the
  next training set picked from 2n samples), and vanilla accumulate (the authors' accumulate-subsample)
  (finding 4, the selection comparison). Vanilla replace at that size is shared with the sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.config import RunConfig
from ..core.io import json_default
from ..core.methods import NO_SELECTION, colour_of, method_names, short_label_of
from ..core.paths import run_dir_for
from ..core.vocab import MEMORIZATION_METRICS, PARADIGM_SHORT_LABELS
from ..diffusion.models import build_unet, count_parameters
from ..loop import experiments as E, rundir
from ..loop.rundir import load_run
from ..loop.run import format_duration
from ..loop.run_metrics import ensure_figure_metrics, ensure_metrics
from ..loop.store import default_run_root, ensure_runs
from . import analysis as A, drawing as D, plotting as P
from .analysis import log_fit
from .claims import check_claims
from .figures import default_fig_dir

DEMO_METRICS = ("gs_pixel", "entropy_pixel", "cov_trace", "mnnd", "mem_ratio")
PAPER_R = 0.91
R_THRESHOLD = 0.7
SELECTION_ARMS = (("replace", "threshold"), ("replace", "greedy"), ("accumulate_subsample", "none"))

# The rows of the claims table (collapse_utils.paper.claims.catalogue) that judge each finding: replace's GS decay
# and size order; the entropy decay; entropy vs covariance trace as predictors of ln GS; TDF and Greedy vs vanilla
# under replace, on GS and entropy (accumulate vs replace has only registered rows, judged on other seeds); the
# memorization index and copy rate. Finding 5 (the 1/3 rule) has no row.
FINDING_CLAIMS = {1: ("1", "2"), 2: ("3",), 3: ("4", "5"), 4: ("6", "7", "10", "11"), 5: (), 6: ("29", "30")}

RULES = {
    1: "holds if, for every size, GS at the last generation is below generation 1, and, for every pair of "
       "neighbouring sizes, the smaller one starts lower (GS at generation 1) or falls faster (smaller "
       "per-generation factor (GS_last/GS_1)^(1/(G-1)))",
    2: "holds if, for every size, the training-set entropy at the last generation is below generation 1",
    3: f"holds if Pearson r(entropy, log GS) over all (size, generation) points of vanilla replace is >= "
       f"{R_THRESHOLD} (the paper reports {PAPER_R})",
    4: "holds if, at the last generation and the selection size, Greedy and TDF (replace) both have higher GS "
       "and higher entropy than vanilla replace, and vanilla accumulate has higher GS and higher entropy than "
       "vanilla replace (all three arms share generation 1, so higher at the end = degraded less)",
    5: "extra, not one of the paper's four: the share of samples that copy a training image (1/3 rule: NN "
       "distance < 1/3 of the 2nd-NN distance; not the paper's metric). Holds if the smallest size has a "
       "higher memorized share than the largest at generation 1 (memorization regime from the start)",
    6: "extra, the move to memorization across generations (memorization index, PAPER.md §3.7: median NN distance "
       "to the training set of 1,000 held-out samples of the model ÷ that of 1,000 fresh draws from the training "
       "set's source; 1 = as novel as fresh draws, 0 = copies). Holds if, for every size, the index at the last "
       "generation is below generation 1 and the copy rate (share of samples closer than 95 % of the fresh draws) "
       "at the last generation is above generation 1",
}


# ---------------------------------------------------------------------------------------------- the runs
@dataclass
class DemoPlan:
    """The demo's run configurations: the size sweep and the selection arms (sharing vanilla replace)."""

    preset: str
    sweep: list[RunConfig]
    selection: list[RunConfig]

    @property
    def configs(self) -> list[RunConfig]:
        """Every distinct configuration, the most expensive first (so two workers finish close together)."""
        seen: dict[str, RunConfig] = {}
        for c in self.sweep + self.selection:
            seen.setdefault(c.run_key(), c)
        return sorted(seen.values(), key=lambda c: -c.generations * c.samples_per_generation)

    @property
    def selection_n(self) -> int:
        return self.selection[0].n


def demo_plan(preset: str = "demo", *, seed: int | None = None, generations: int | None = None,
              sizes: Sequence[int] | None = None, selection_n: int | None = None) -> DemoPlan:
    """The runs of the demo at ``preset``: ``size_sweep`` plus the :data:`SELECTION_ARMS` of ``selection_grid``.

    ``seed``, ``generations``, ``sizes`` (of the sweep) and ``selection_n`` (the size of the selection
    comparison, one of the sweep sizes) replace the preset's values; left out (None), the plan is the preset's.
    """
    common: dict[str, Any] = {"progress": False}
    if seed is not None:
        common["seeds"] = (seed,)
    if generations is not None:
        common["generations"] = generations
    sweep_sizes: dict[str, Any] = {}
    if sizes is not None:
        sizes = tuple(sorted(set(int(x) for x in sizes)))
        if not sizes or min(sizes) <= 0:
            raise ValueError(f"the demo's sizes must be positive integers, got {sizes}")
        sweep_sizes["sizes"] = sizes
        scale_of = E.scale(preset)
        if selection_n is None and scale_of.selection_n[scale_of.selection_datasets[0]] not in sizes:
            selection_n = sizes[len(sizes) // 2]  # the middle size (the upper one of an even count)
    at_n = {"n": selection_n} if selection_n is not None else {}
    sweep = E.size_sweep(preset, **sweep_sizes, **common)
    vanilla = E.selection_grid(preset, paradigms=("replace",), methods=("none",), **at_n, **common)
    arms = [c for p, m in SELECTION_ARMS
            for c in E.selection_grid(preset, paradigms=(p,), methods=(m,), **at_n, **common)]
    if vanilla[0].run_key() not in {c.run_key() for c in sweep}:
        raise ValueError(f"the selection size n={vanilla[0].n} of preset {preset!r} is not one of the sweep sizes "
                         f"{[c.n for c in sweep]}; vanilla replace would be trained twice (choose the selection "
                         "size among the sizes)")
    return DemoPlan(preset, sweep, vanilla + arms)


def describe_arm(cfg: RunConfig) -> str:
    """A short human label: 'replace n=256', 'replace + Greedy n=256', 'accumulate n=256'."""
    par = PARADIGM_SHORT_LABELS.get(cfg.paradigm, cfg.paradigm)
    sel = "" if cfg.selection == NO_SELECTION else f" + {short_label_of(cfg.selection)}"
    return f"{par}{sel} n={cfg.n}"


# ---------------------------------------------------------------------------------------------- progress
class ProgressMonitor:
    """Prints a line whenever a generation of a demo run finishes (the run store's ``on_generation`` callback),
    and samples the load average while the runs train."""

    def __init__(self, configs: Sequence[RunConfig], root: Path, *, interval: float = 2.0,
                 out: Callable[[str], None] = print) -> None:
        self.total = sum(c.generations for c in configs)
        self.reused = sum(rundir.is_done(run_dir_for(c, root), g) for c in configs for g in range(1, c.generations + 1))
        self.finished = self.reused
        self.interval, self.out = interval, out
        self.loads: list[float] = []  # 1-minute load average, sampled while the runs train
        self.start = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_load, daemon=True)

    def on_generation(self, cfg: RunConfig, gen: Any) -> None:
        with self._lock:
            self.finished += 1
            self.out(self._line(cfg, gen.generation, gen.metrics))

    def _line(self, cfg: RunConfig, g: int, m: dict[str, Any]) -> str:
        elapsed = time.perf_counter() - self.start
        try:
            nums = f"GS {m['gs_pixel']:.1f}, entropy {m['entropy_pixel']:.1f}"
        except (KeyError, TypeError, ValueError):
            nums = "metrics unreadable"
        computed, left = self.finished - self.reused, self.total - self.finished
        eta = f" · about {format_duration(elapsed / computed * left)} left" if computed > 0 and left > 0 else ""
        return (f"[{_mmss(elapsed)}] {self.finished:2d}/{self.total} generations · "
                f"{describe_arm(cfg)} generation {g}/{cfg.generations}: {nums}{eta}")

    def _sample_load(self) -> None:
        while not self._stop.wait(self.interval):
            self.loads.append(os.getloadavg()[0])

    def __enter__(self) -> "ProgressMonitor":
        self.out(f"{self.total - self.reused} of {self.total} generations to compute "
                 f"({self.reused} reused from the run store)")
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _mmss(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


# ---------------------------------------------------------------------------------------------- findings
@dataclass
class Finding:
    """One finding: the numbers, the demo's rule and whether it is met at the demo's seed (``holds``), and the
    verdicts of the finding's rows of the claims table (``claims``)."""

    number: int
    title: str
    rule: str
    holds: bool
    headline: str
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    claims: dict[str, str] = field(default_factory=dict)  # claims-table row id -> its verdict on the demo's runs

    @property
    def verdict(self) -> str:
        """What the demo's rule says at its one seed (``holds``: the rule is met there); not a verdict on the
        finding, which is the claims rows' (:attr:`claims`)."""
        return f"seen at seed {self.seed}" if self.holds else f"not seen at seed {self.seed}"

    def text(self) -> str:
        body = "\n".join(f"    {line}" for line in self.lines)
        rows = ("; ".join(f"row {i} {v}" for i, v in self.claims.items()) if self.claims else
                "no row of the claims table")
        return (f"({self.number}) {self.title}: {self.verdict.upper()}\n    {self.headline}\n{body}\n"
                f"    rule at this seed: {self.rule}\n    verdict (the claims rule, docs/CLAIMS.md): {rows}")


def series(run: Any, metric: str) -> list[float]:
    """One metric of a run, generation by generation."""
    return [float(g.metrics[metric]) for g in run.generations]


def per_generation_factor(values: Sequence[float]) -> float:
    """Geometric-mean change per generation, (last / first)^(1 / (G - 1)); 1.0 for a single generation."""
    if len(values) < 2 or values[0] <= 0 or values[-1] <= 0:
        return float("nan") if len(values) >= 2 else 1.0
    return (values[-1] / values[0]) ** (1.0 / (len(values) - 1))


def _fmt_series(values: Sequence[float], digits: int = 1) -> str:
    return " → ".join(f"{v:.{digits}f}" for v in values)


def finding_gs_decay(sweep: Sequence[Any]) -> Finding:
    """Finding 1: GS falls across generations under replace, faster or from lower for smaller datasets."""
    runs = sorted(sweep, key=lambda r: r.config.n)
    gs = {r.config.n: series(r, "gs_pixel") for r in runs}
    factors = {n: per_generation_factor(v) for n, v in gs.items()}
    falls = {n: v[-1] < v[0] for n, v in gs.items()}
    sizes = list(gs)
    pairs = []
    for small, large in zip(sizes, sizes[1:]):
        lower = gs[small][0] < gs[large][0]
        faster = factors[small] < factors[large]
        pairs.append({"smaller": small, "larger": large, "starts_lower": lower, "falls_faster": faster,
                      "ok": lower or faster})
    holds = all(falls.values()) and all(p["ok"] for p in pairs)
    lines = [f"n={n:>5}: GS {_fmt_series(v)}  (×{factors[n]:.2f} per generation)" for n, v in gs.items()]
    for p in pairs:
        how = [w for w, ok in (("starts lower", p["starts_lower"]), ("falls faster", p["falls_faster"])) if ok]
        lines.append(f"n={p['smaller']} vs n={p['larger']}: " + (" and ".join(how) if how else
                     "neither starts lower nor falls faster"))
    headline = "GS gen 1 → last: " + "; ".join(f"n={n} {v[0]:.0f}→{v[-1]:.0f}" for n, v in gs.items())
    return Finding(1, "Replace: the generalization score falls, faster or from lower for smaller datasets",
                   RULES[1], holds, headline, lines,
                   {"gs": gs, "factor_per_generation": factors, "falls": falls, "pairs": pairs})


def finding_entropy_decay(sweep: Sequence[Any]) -> Finding:
    """Finding 2: the training set's entropy falls across generations under replace."""
    runs = sorted(sweep, key=lambda r: r.config.n)
    ent = {r.config.n: series(r, "entropy_pixel") for r in runs}
    falls = {n: v[-1] < v[0] for n, v in ent.items()}
    lines = [f"n={n:>5}: entropy {_fmt_series(v)}  (change {v[-1] - v[0]:+.1f} nats)" for n, v in ent.items()]
    headline = "entropy gen 1 → last: " + "; ".join(f"n={n} {v[0]:.0f}→{v[-1]:.0f}" for n, v in ent.items())
    return Finding(2, "Replace: the training set's entropy falls", RULES[2], all(falls.values()), headline,
                   lines, {"entropy": ent, "falls": falls})


def finding_correlation(sweep: Sequence[Any]) -> Finding:
    """Finding 3: Pearson r between training-set entropy and log GS over every (size, generation) point."""
    ent = np.concatenate([series(r, "entropy_pixel") for r in sweep])
    gs = np.concatenate([series(r, "gs_pixel") for r in sweep])
    cov = np.concatenate([series(r, "cov_trace") for r in sweep])
    fit, fit_cov = log_fit(ent, gs), log_fit(cov, gs)
    r = fit["pearson_r"]
    holds = r is not None and r >= R_THRESHOLD
    r_txt = "undefined" if r is None else f"{r:.3f}"
    within = {}
    for run in sorted(sweep, key=lambda x: x.config.n):
        f = log_fit(np.array(series(run, "entropy_pixel")), np.array(series(run, "gs_pixel")))
        within[run.config.n] = f["pearson_r"]
    lines = [f"Pearson r(entropy, log GS) = {r_txt} over {fit['points']} points"
             + (f" (p = {fit['p_value']:.1e})" if fit["p_value"] is not None else "") + f"; paper: {PAPER_R}",
             "within each size: " + ", ".join(f"n={n} r={v:.2f}" if v is not None else f"n={n} r=undefined"
                                              for n, v in within.items()),
             "variance instead of entropy (F4b): r(trace of covariance, log GS) = "
             + ("undefined" if fit_cov["pearson_r"] is None else f"{fit_cov['pearson_r']:.3f}")]
    return Finding(3, "Entropy predicts the generalization score", RULES[3], holds,
                   f"r = {r_txt} (paper {PAPER_R})", lines,
                   {"entropy_vs_log_gs": fit, "cov_trace_vs_log_gs": fit_cov, "within_size_r": within})


def _arm(selection_runs: Sequence[Any], paradigm: str, selection: str) -> Any:
    for r in selection_runs:
        if r.config.paradigm == paradigm and r.config.selection == selection:
            return r
    raise ValueError(f"the demo has no {paradigm}/{selection} run")


def finding_selection(selection_runs: Sequence[Any]) -> Finding:
    """Finding 4: Greedy and TDF keep entropy and GS above vanilla replace; accumulate degrades more slowly."""
    vanilla = _arm(selection_runs, "replace", "none")
    arms = {"Greedy": _arm(selection_runs, "replace", "greedy"), "TDF": _arm(selection_runs, "replace", "threshold"),
            "accumulate": _arm(selection_runs, "accumulate_subsample", "none")}
    base = {m: series(vanilla, m) for m in ("gs_pixel", "entropy_pixel")}
    checks: dict[str, dict[str, Any]] = {}
    lines = [f"vanilla replace     : GS {_fmt_series(base['gs_pixel'])} | entropy {_fmt_series(base['entropy_pixel'])}"]
    for name, run in arms.items():
        vals = {m: series(run, m) for m in base}
        ok = {m: vals[m][-1] > base[m][-1] for m in base}
        checks[name] = {"gs_last": vals["gs_pixel"][-1], "entropy_last": vals["entropy_pixel"][-1],
                        "gs_above": ok["gs_pixel"], "entropy_above": ok["entropy_pixel"],
                        "gs": vals["gs_pixel"], "entropy": vals["entropy_pixel"]}
        label = {"Greedy": "replace + Greedy", "TDF": "replace + TDF", "accumulate": "vanilla accumulate"}[name]
        lines.append(f"{label:<20}: GS {_fmt_series(vals['gs_pixel'])} | entropy {_fmt_series(vals['entropy_pixel'])}"
                     f"  -> last generation GS {'above' if ok['gs_pixel'] else 'NOT above'}, entropy "
                     f"{'above' if ok['entropy_pixel'] else 'NOT above'} vanilla replace")
    holds = all(c["gs_above"] and c["entropy_above"] for c in checks.values())
    g_last = len(base["gs_pixel"])
    headline = (f"n={vanilla.config.n}, generation {g_last}, GS / entropy: vanilla replace "
                f"{base['gs_pixel'][-1]:.0f} / {base['entropy_pixel'][-1]:.0f}; "
                + "; ".join(f"{k} {c['gs_last']:.0f} / {c['entropy_last']:.0f}" for k, c in checks.items()))
    return Finding(4, "Selection keeps entropy and GS up; accumulate degrades more slowly than replace", RULES[4],
                   holds, headline, lines,
                   {"n": vanilla.config.n, "vanilla_replace": base, "arms": checks})


def finding_memorization(sweep: Sequence[Any]) -> Finding:
    """Extra finding 5: the memorized share (1/3 rule) by size and generation, and GS relative to MNND."""
    runs = sorted(sweep, key=lambda r: r.config.n)
    mem = {r.config.n: series(r, "mem_ratio") for r in runs}
    ratio = {r.config.n: [a / b if b > 0 else float("nan") for a, b in zip(series(r, "gs_pixel"), series(r, "mnnd"))]
             for r in runs}
    sizes = list(mem)
    holds = mem[sizes[0]][0] > mem[sizes[-1]][0]
    rises = {n: v[-1] > v[0] for n, v in mem.items()}
    lines = [f"n={n:>5}: memorized share {_fmt_series(v, 2)}; GS/MNND {_fmt_series(ratio[n], 2)}"
             for n, v in mem.items()]
    mnnd = {r.config.n: series(r, "mnnd") for r in runs}
    lines.append("memorized share rises from generation 1 to the last for: "
                 + (", ".join(f"n={n}" for n, ok in rises.items() if ok) or "no size"))
    lines.append("training-set MNND, generation 1 → last: "
                 + "; ".join(f"n={n} {v[0]:.0f}→{v[-1]:.0f}" for n, v in mnnd.items())
                 + " (once the training set holds near-duplicates, the 1/3 rule no longer counts copies of them)")
    headline = "memorized share at generation 1: " + "; ".join(f"n={n} {v[0]:.2f}" for n, v in mem.items())
    return Finding(5, "Extra: small datasets start in the memorization regime", RULES[5], holds, headline, lines,
                   {"mem_ratio": mem, "gs_over_mnnd": ratio, "rises": rises, "mnnd": mnnd})


def finding_memorization_index(sweep: Sequence[Any]) -> Finding:
    """Extra finding 6: the memorization index and copy rate per generation, by size (held-out draws)."""
    runs = sorted(sweep, key=lambda r: r.config.n)
    index = {r.config.n: series(r, "mem_index_pixel") for r in runs}
    copies = {r.config.n: series(r, "copy_rate_pixel") for r in runs}
    falls = {n: v[-1] < v[0] for n, v in index.items()}
    rises = {n: v[-1] > v[0] for n, v in copies.items()}
    holds = all(falls.values()) and all(rises.values())
    lines = [f"n={n:>5}: memorization index {_fmt_series(index[n], 2)}; copy rate {_fmt_series(copies[n], 2)}"
             for n in index]
    lines.append("index falls from generation 1 to the last for: "
                 + (", ".join(f"n={n}" for n, ok in falls.items() if ok) or "no size")
                 + "; copy rate rises for: " + (", ".join(f"n={n}" for n, ok in rises.items() if ok) or "no size"))
    headline = "memorization index, generation 1 → last: " + "; ".join(
        f"n={n} {v[0]:.2f}→{v[-1]:.2f}" for n, v in index.items())
    return Finding(6, "Extra: samples move towards copies of their training set across generations", RULES[6],
                   holds, headline, lines, {"mem_index_pixel": index, "copy_rate_pixel": copies,
                                            "falls": falls, "rises": rises})


def judge_by_claims(findings: Sequence[Finding], preset: str, run_root: Any, seed: int) -> None:
    """Give each finding the verdicts of its rows of the claims table (:data:`FINDING_CLAIMS`), evaluated by the
    claims rule on the demo's runs at ``seed`` (a plan the figure set does not share gives "not run")."""
    ids = [i for f in findings for i in FINDING_CLAIMS.get(f.number, ())]
    rows, _ = check_claims(preset, run_root=run_root, seeds=(seed,), ids=ids)
    verdict = {r.claim.id: r.verdict.split(":")[0] for r in rows}
    for f in findings:
        f.seed = seed
        f.claims = {i: verdict.get(i, "not evaluated") for i in FINDING_CLAIMS.get(f.number, ())}


def judge_findings(sweep: Sequence[Any], selection_runs: Sequence[Any]) -> list[Finding]:
    """The paper's four findings (plus the memorization extras), judged by :data:`RULES`."""
    return [finding_gs_decay(sweep), finding_entropy_decay(sweep), finding_correlation(sweep),
            finding_selection(selection_runs), finding_memorization(sweep), finding_memorization_index(sweep)]


# ---------------------------------------------------------------------------------------------- figures
def draw_figures(plan_runs: dict[str, list[Any]], fig_dir: Path) -> dict[str, str]:
    """F2, F3, F4 (size sweep) and the selection comparison, through :mod:`collapse_utils.paper.plotting`."""
    import matplotlib  # the backend is chosen here, when figures are drawn

    matplotlib.use("Agg")
    sweep, selection = plan_runs["sweep"], plan_runs["selection"]
    out = {"F2": P.plot_f2(sweep, fig_dir), "F3": P.plot_f3(sweep, fig_dir), "F4": P.plot_f4(sweep, fig_dir),
           "selection": plot_selection(selection, fig_dir)}
    return {k: str(v.png) for k, v in out.items()}


def plot_selection(runs: Sequence[Any], fig_dir: Path) -> Any:
    """The selection comparison: GS and entropy vs generation for vanilla / TDF / Greedy replace and vanilla
    accumulate at one dataset size (the demo's view of the paper's F7 and F9)."""
    import matplotlib.pyplot as plt

    D.theme()
    wide = A.metrics_frame(runs)
    metrics = ("gs_pixel", "entropy_pixel")
    fig, axes = D.new_figure(D.TWO_COLUMNS, 3.1, 1, len(metrics))
    for ax, metric in zip(axes[0], metrics):
        for r in runs:
            c = r.config
            ax.plot([g.generation for g in r.generations], series(r, metric), marker="o", markeredgewidth=0,
                    color=colour_of(c.selection) if c.paradigm == "replace" else "tab:purple",
                    linestyle="--" if c.selection == "none" else "-",
                    label=("Accumulate, vanilla" if c.paradigm != "replace"
                           else f"Replace, {A.method_label(c.selection)}"))
        ax.set_xlabel(D.GEN_LABEL)
        ax.set_ylabel(D.metric_label(metric))
        D.integer_generations(ax)
    axes[0, 0].set_title("(a) Generalization score")
    axes[0, 1].set_title("(b) Training-set entropy")
    order = [A.method_label(m) for m in method_names()]
    D.shared_legend(fig, axes[0], key=lambda lab: (lab.startswith("Accumulate"),
                                                    next((i for i, m in enumerate(order) if lab.endswith(m)), 9)))
    seeds = sorted({r.config.seed for r in runs})
    D.figure_title(fig, "selection", f"data selection and accumulate vs vanilla replace, n = {runs[0].config.n:,}",
                   wide, seeds=f"one line per run: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    return D.save_figure(fig, fig_dir, "selection", A.long_table(wide, list(metrics), "selection"))


# ---------------------------------------------------------------------------------------------- the command
def plan_folder(changes: dict[str, Any]) -> str:
    """``demo`` for the preset's plan, ``demo-seed3-gen2-n64_256`` for a changed one (the figure folder's name)."""
    short = {"seed": "seed", "generations": "gen", "sizes": "n", "selection_n": "sel"}
    parts = [short[k] + ("_".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v))
             for k, v in changes.items() if v is not None]
    return "-".join(["demo", *parts])


def scale_lines(plan: DemoPlan, workers: int) -> list[str]:
    """What the demo runs, in words (printed first and kept in the summary)."""
    c = plan.sweep[0]
    params = count_parameters(build_unet(c.model, resolution=c.resolution or 28, channels=c.channels or 1))
    arms = ", ".join(describe_arm(x) for x in plan.selection[1:])
    return [
        f"preset {plan.preset!r}: {c.dataset.upper()} (bundled), {c.resolution}x{c.resolution} {c.resize_method}-downsampled; "
        f"UNet {c.model!r} ({params / 1e6:.2f} M parameters)",
        f"{c.train_steps} training steps per generation (batch {c.batch_size}, lr {c.lr:g}); "
        f"DDPM sampling with {c.num_inference_steps} of {c.num_train_timesteps} steps (the paper uses all 1000)",
        f"replace, vanilla: n = {', '.join(str(x.n) for x in plan.sweep)}, {c.generations} generations"
        + (f", seed {c.seed}" if c.seed else ""),
        f"selection comparison at n = {plan.selection_n}: {arms} (selection picks n of "
        f"{plan.selection[1].effective_pool_factor}n samples, pixel space)",
        f"{len(plan.configs)} runs, {sum(x.generations for x in plan.configs)} generations, {workers} worker process(es)",
    ]


def run_demo(preset: str = "demo", out: str | os.PathLike | None = None, fig_dir: str | os.PathLike | None = None,
             workers: int = 2, echo: Callable[[str], None] = print, *, seed: int | None = None,
             generations: int | None = None, sizes: Sequence[int] | None = None,
             selection_n: int | None = None) -> dict[str, Any]:
    """Run (or reuse) the demo's runs, judge the findings, draw the figures; returns the summary dict.

    ``seed``, ``generations``, ``sizes`` and ``selection_n`` change the plan (:func:`demo_plan`); with any of them
    the figures go to a folder of their own by default (``figures/demo-seed3-gen2``), beside the preset's."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()
    changes = {"seed": seed, "generations": generations, "sizes": sizes, "selection_n": selection_n}
    plan = demo_plan(preset, **changes)
    out = Path(out) if out is not None else default_run_root()
    # figures/demo, or figures/smoke/demo: a smoke demo must not overwrite the real demo's figures;
    # a changed plan must not overwrite the preset's
    fig_dir = Path(fig_dir) if fig_dir is not None else default_fig_dir(preset) / plan_folder(changes)
    head = scale_lines(plan, workers)
    echo("Model collapse, CPU demo: " + head[0])
    for line in head[1:]:
        echo("  " + line)
    with ProgressMonitor(plan.configs, out, out=echo) as monitor:
        ensure_runs(plan.configs, out, workers=workers, on_generation=monitor.on_generation)
    t_runs = time.perf_counter() - t0
    sweep = [ensure_metrics(r, DEMO_METRICS) for r in ensure_runs(plan.sweep, out)]
    selection = [ensure_metrics(r, DEMO_METRICS) for r in ensure_runs(plan.selection, out)]
    t_mem = time.perf_counter()
    echo("memorization index: drawing held-out samples of each generation of the size sweep …")
    ensure_figure_metrics(sweep, MEMORIZATION_METRICS, workers=workers)
    sweep = [load_run(r.run_dir) for r in sweep]
    t_mem = time.perf_counter() - t_mem
    findings = judge_findings(sweep, selection)
    judge_by_claims(findings, preset, out, plan.sweep[0].seed)
    t1 = time.perf_counter()
    figures = draw_figures({"sweep": sweep, "selection": selection}, fig_dir)
    t_fig = time.perf_counter() - t1
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = {
        "preset": preset, "scale": head, "run_root": str(out), "fig_dir": str(fig_dir), "workers": workers,
        "findings": [asdict(f) | {"verdict": f.verdict} for f in findings], "figures": figures,
        "timing": {"wall_s": wall, "runs_wall_s": t_runs, "memorization_index_wall_s": t_mem, "figures_wall_s": t_fig,
                   "cpu_main_s": time.process_time() - cpu0,
                   "cpu_workers_s": children.ru_utime + children.ru_stime,
                   "load_average_start": load0, "load_average_end": os.getloadavg(),
                   "load_average_during_runs": {"mean": float(np.mean(monitor.loads)) if monitor.loads else None,
                                                "max": float(np.max(monitor.loads)) if monitor.loads else None},
                   "cpus": os.cpu_count()},
    }
    text = summary_text(findings, summary)
    echo("")
    echo(text)
    fig_dir.mkdir(parents=True, exist_ok=True)
    (fig_dir / "summary.txt").write_text(text + "\n")
    (fig_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default) + "\n")
    return summary


def summary_text(findings: Sequence[Finding], summary: dict[str, Any]) -> str:
    """The printed summary: the scale, each finding with its numbers and verdict, timings and figure paths."""
    t = summary["timing"]
    lines = ["=" * 100, "FINDINGS (GS = generalization score, pixel L2 on 0-255 values; entropy = KL estimator, "
             "k=1, of the training set, in nats)", "=" * 100]
    if summary["preset"] == "smoke":
        lines.append("NOTE: preset 'smoke' checks the code path only; its numbers mean nothing.")
    lines += [f.text() + "\n" for f in findings]
    main = [f for f in findings if f.number <= 4]
    seed = main[0].seed if main else 0
    lines.append(f"{sum(f.holds for f in main)} of {len(main)} findings of the paper are seen at seed {seed}"
                 + ("" if all(f.holds for f in main) else
                    f"; not seen: {', '.join(str(f.number) for f in main if not f.holds)}") + ".")
    verdicts = [v for f in main for v in f.claims.values()]
    lines.append(f"Verdicts are the claims table's: {len(verdicts)} rows judged on this one seed, "
                 + ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
                 + " (one seed resolves no claim); docs/CLAIMS.md judges them over seeds 0, 1, 2.")
    lines.append(f"scale: {'; '.join(summary['scale'])}")
    lines.append(f"wall time {_mmss(t['wall_s'])} (runs {_mmss(t['runs_wall_s'])}, memorization index "
                 f"{t.get('memorization_index_wall_s', 0):.0f} s, figures {t['figures_wall_s']:.0f} s); "
                 f"CPU time {t['cpu_main_s'] + t['cpu_workers_s']:.0f} s on {t['cpus']} cores; load average at start "
                 f"{t['load_average_start'][0]:.1f}, during the runs {_fmt_load(t['load_average_during_runs'])}")
    if t["cpus"] and (t["load_average_during_runs"]["mean"] or 0) > 1.5 * t["cpus"]:
        lines.append("the machine was busy with other work during the demo, so its wall time is longer than on an idle "
                     "machine (compare the CPU time)")
    lines.append("figures: " + ", ".join(summary["figures"].values()))
    return "\n".join(lines)


def _fmt_load(load: dict[str, Any]) -> str:
    if load.get("mean") is None:
        return "not sampled"
    return f"mean {load['mean']:.1f}, max {load['max']:.1f}"


def plan_options(args: argparse.Namespace) -> dict[str, Any]:
    """The plan changes a ``demo`` command line asks for (None: the preset's value)."""
    return {"seed": args.seed, "generations": args.generations, "sizes": args.sizes, "selection_n": args.selection_n}


def _cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    run_demo(args.preset, args.out, args.fig_dir, args.workers, echo=lambda s: print(s, flush=True),
             **plan_options(args))
    return 0

