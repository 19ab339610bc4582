"""Evaluating the catalogue against a run store or results bundle and writing the claims table (the `claims`
command)."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...core import io as cio
from ...core.devices import resolve_device
from ...core.paths import default_run_root, repo_root
from ...core.presets import scale
from ...core.provenance import git_commit
from ...core.vocab import FID_MODES
from ...loop import rundir, store
from ...loop.run_metrics import dinov2_unavailable_reason, ensure_figure_metrics, fd_noise_floor
from ...loop.shadow import shadow_run, writable
from ...loop.store import run_state
from ...measure.features import FeatureSpaceUnavailableError
from ..figures import figure_configs
from ..results import check_unchanged, common_seeds, read_bundle, store_dir
from .rules import (NOT_RESOLVED, NOT_RUN, RULE_TEXT, RULE_V1_TEXT, TOST_ALPHA, equivalence_verdict, headline_verdict,
                    paired_differences, spread, summarize, t_interval, t_verdict, tost_verdict, verdict)
from .catalogue import CLAIMS, Claim
from . import registered, registered2, registered3, registered4
from .statistics import Effect, STATISTICS, matches


@dataclass(frozen=True)
class Registration:
    """One set of claims registered before their data: the module that holds the rows and their statistics, its
    path in the repository, and the commit that registered it before any run of its judged seeds existed
    (tests/test_claims.py checks that the file is unchanged since)."""

    module: Any
    path: str
    commit: str

    @property
    def claims(self) -> list[Claim]:
        return list(self.module.REGISTERED)

    @property
    def name(self) -> str:
        """"claims registered before their data", with the rows' ids after the first set's (its section's title and
        its runs' entry in a bundle)."""
        ids = "" if self is REGISTRATIONS[0] else f" ({self.claims[0].id}–{self.claims[-1].id})"
        return "claims registered before their data" + ids


REGISTRATIONS = (
    Registration(registered, "collapse_utils/paper/claims/registered.py", "9be81fd9455c93feb7c0eb84e9ccde2819ed7219"),
    Registration(registered2, "collapse_utils/paper/claims/registered2.py",
                 "99feadc5dde98aa6eb0e14ca6266382d161afb42"),
    Registration(registered3, "collapse_utils/paper/claims/registered3.py",
                 "47c19e463534d11ffae607794abd5cfa82d78f68"),
    Registration(registered4, "collapse_utils/paper/claims/registered4.py",
                 "72f6bd0d04de2b9a5dbf5fabaac8eda82fef91ba"),
)
REGISTERED: list[Claim] = [c for reg in REGISTRATIONS for c in reg.claims]
REGISTERED_IN = REGISTRATIONS[0].commit  # the first registration's commit (rows R1–R7)

# Every statistic a claim can name: the catalogue's and those registered with their claims.
_STATISTICS = {**STATISTICS, **{k: v for reg in REGISTRATIONS for k, v in reg.module.STATISTICS.items()}}


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass
class Context:
    """What every claim of one report shares: the preset, the seeds, the run store and the metric names."""

    preset: str
    seeds: tuple[int, ...]
    run_root: Any
    device: str | None = None
    run_root_given: bool = False
    figure_seeds: Mapping[str, tuple[int, ...]] | None = None  # a bundle's seeds per figure, where they differ

    def seeds_of(self, claim: Claim) -> tuple[int, ...]:
        """The seeds a catalogue claim is judged on: its figure's seeds in the bundle read, else the report's."""
        if self.figure_seeds and claim.figure in self.figure_seeds:
            return tuple(self.figure_seeds[claim.figure])
        return self.seeds

    def seeds_text(self) -> str:
        """The report's seeds, and each figure's where a bundle holds it at others (``0, 1, 2 (F8: 0, …, 5)``)."""
        text = _seed_list(self.seeds)
        other = {f: s for f, s in (self.figure_seeds or {}).items() if tuple(s) != tuple(self.seeds)}
        if other:
            text += " (" + "; ".join(f"{f}: {_seed_list(s)}" for f, s in
                                     sorted(other.items(), key=lambda kv: (kv[0][0], int(kv[0][1:])))) + ")"
        return text

    @property
    def feature_space(self) -> str:
        return scale(self.preset).feature_space

    @property
    def fd_metric(self) -> str:
        return FID_MODES[scale(self.preset).fid_mode]


@dataclass
class Row:
    """One line of the table: the claim, what we measured, the verdict and the command that makes its runs."""

    claim: Claim
    ours: str
    verdict: str
    regenerate: str
    floor: tuple[str, int, float | None, str | None] | None = None  # (metric, count, f, why not)
    verdict_v1: str = ""  # the first rule's verdict (rules.RULE_V1_TEXT), shown in its own column
    exploratory: str = ""  # a registered claim's statistic on its exploratory seeds (not judged)


def _format(value: Any, ctx: Context) -> Any:
    if isinstance(value, str):
        return value.format(fs=ctx.feature_space, fd=ctx.fd_metric)
    if isinstance(value, Mapping):
        return {k: _format(v, ctx) for k, v in value.items()}
    return value


def claim_params(claim: Claim, ctx: Context) -> dict[str, Any]:
    """The claim's statistic parameters with ``{fs}`` / ``{fd}`` filled in for the preset."""
    return {k: _format(v, ctx) for k, v in claim.params.items()}


# The statistic parameters that name a per-generation metric (the others name arms, a config field, or numbers).
METRIC_PARAMS = ("metric", "x", "z", "y", "rho", "copy")


def claim_metric_names(claim: Claim, ctx: Context) -> list[str]:
    """The per-generation metrics the claim's statistic reads (computed post hoc where the runs lack them)."""
    p = claim_params(claim, ctx)
    return [p[k] for k in METRIC_PARAMS if k in p]


def _arms(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [params[k] for k in ("a", "b", "where") if k in params]


def claim_configs(claim: Claim, ctx: Context) -> list[Any]:
    """The run configurations the claim reads: its figures' configurations at the preset and seeds (deduplicated
    by run key), only the arms it compares, and one dataset (CIFAR-10 where the figure has several, as the
    paper's numbers cited here are its CIFAR rows)."""
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
        self.shadows: dict[str, Any] = {}  # run key -> its writable shadow (a run on read-only media), None: writable
        self.scratch: Any = None  # the folder of the shadows, removed by close()

    def close(self) -> None:
        """Remove the shadows of read-only runs (their metrics are kept in the runs read)."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch, self.shadows = None, {}

    def _writable(self, run: Any) -> Any:
        """``run`` where its folder can be written; else its shadow (collapse_utils.loop.shadow), made once, in
        which post-hoc metrics are computed without touching the read-only original."""
        key = run.config.run_key()
        if key not in self.shadows:  # probed once per run and report
            if writable(run.run_dir):
                self.shadows[key] = None
            else:
                if self.scratch is None:
                    self.scratch = Path(tempfile.mkdtemp(prefix="collapse-claims-"))
                self.shadows[key] = rundir.load_run(shadow_run(run.run_dir, self.scratch / run.run_dir.name))
        shadow = self.shadows[key]
        return run if shadow is None else shadow

    def floor(self, cfg: Any, metric: str, count: int) -> tuple[float | None, str | None]:
        """:func:`noise_floor`, once per (run, metric, count)."""
        key = (cfg.run_key(), metric, count)
        if key not in self.floors:
            self.floors[key] = noise_floor(cfg, metric, count)
        return self.floors[key]

    def get(self, cfg: Any) -> Any | None:
        """The finished run of ``cfg`` in the store, or None (missing, unfinished or damaged)."""
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
                work = [self._writable(r) for r in todo]
                ensure_figure_metrics(work, [name], device=self.ctx.device)
            except (ValueError, KeyError, NotImplementedError, FeatureSpaceUnavailableError, OSError,
                    RuntimeError) as exc:
                self.failed[name] = f"metric {name} not available ({_first_line(str(exc)) or type(exc).__name__})"
                return self.failed[name]
            for r, w in zip(todo, work):  # a shadow's metrics, into the run the statistics read
                if w is not r:
                    for g, gw in zip(r.generations, w.generations):
                        g.metrics.update(gw.metrics)
            self.done.update((r.config.run_key(), name) for r in todo)
        return None


def _shown_path(path: Any) -> str:
    """A run store as the table shows it: relative to the repository when it lies inside it."""
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


def describe(eff: Effect, kind: str, floor: float | None = None, margin: float | None = None) -> str:
    """The ``ours`` cell: the effect's mean ± sd over seeds, the number of seeds, its 95 % t interval, what it is,
    its components; for an equivalence claim each arm, the spread D of their means and the margin δ."""
    if kind == "equivalence":
        d, noise, k = spread({a: list(v.values()) for a, v in eff.arms.items()}, fd=floor is not None, floor=floor)
        arms = ", ".join(f"{a} {_mean_sd(v)}" for a, v in sorted(eff.arms.items()))
        text = f"{eff.what}: D = {_num(d)}, N = {_num(noise)} ({_seeds(k)}); arms: {arms}"
        if margin is not None:
            worst = max((max(abs(lo), abs(hi)) for lo, hi in
                         (t_interval(x, 1 - 2 * TOST_ALPHA) for x in paired_differences(eff.arms).values())),
                        default=math.nan)
            text += f"; margin δ = {_num(margin)}, largest |end| of the pairs' 90 % intervals {_num(worst)}"
    else:
        values = list(eff.values.values())
        s = summarize(values)
        text = f"{eff.what} = {_mean_sd(eff.values)} ({_seeds(s.k)})"
        if s.k >= 2:
            low, high = t_interval(values)
            text += f", 95 % CI [{_num(low)}, {_num(high)}]"
        if eff.parts:
            text += "; " + ", ".join(f"{name} {_mean_sd(v)}" for name, v in eff.parts.items())
    if floor is not None:
        text += f"; real-vs-real floor f = {_num(floor)}"
    return text


def evaluate(claim: Claim, ctx: Context, cache: RunCache) -> Row:
    """One claim's row: its runs read from the store, missing metrics computed post-hoc, the verdict by the rule.
    A claim registered before its data (``claim.seeds``) is judged on its own seeds, and its statistic on its
    exploratory seeds is shown in :attr:`Row.exploratory`."""
    if claim.seeds is None:
        return _evaluate(claim, replace(ctx, seeds=ctx.seeds_of(claim)), cache)
    row = _evaluate(claim, replace(ctx, seeds=tuple(claim.seeds)), cache)
    if claim.exploratory_seeds:
        row.exploratory = _evaluate(claim, replace(ctx, seeds=tuple(claim.exploratory_seeds)), cache).ours
    return row


def _evaluate(claim: Claim, ctx: Context, cache: RunCache) -> Row:
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
        eff = _STATISTICS[claim.statistic](complete, **params)
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
        v = tost_verdict(eff.arms, claim.margin)
        v1 = equivalence_verdict({a: list(x.values()) for a, x in eff.arms.items()}, fd=claim.fd, floor=floor)
    elif claim.kind == "headline":
        v = v1 = headline_verdict(list(eff.values.values()), claim.paper_value or (math.nan, math.nan), ctx.preset)
    else:
        v = t_verdict(list(eff.values.values()))
        v1 = verdict(list(eff.values.values()), fd=claim.fd, floor=floor)
    return Row(claim, describe(eff, claim.kind, floor, claim.margin) + note, v, regen, floor_info, v1)



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
    seeds = ctx.seeds_text()
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
        f"Written by `{cmd}` (collapse_utils/paper/claims/); do not edit by hand. The paper's values are those of "
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
        "The column *rule v1* gives each row's verdict by the first rule, which this table used before (below); it",
        "is kept so that no row is silently re-judged.",
        "",
        "<details><summary>Rule v1 (m > 2·se, or the FD noise floor)</summary>",
        "",
        RULE_V1_TEXT,
        "",
        "</details>",
        "",
        "## Claims",
        "",
        "| # | claim | figure | paper | ours | verdict | rule v1 | regenerate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.claim
        if c.seeds is not None:
            continue
        v1 = r.verdict_v1 or r.verdict
        lines.append("| " + " | ".join(_cell(x) for x in (c.id, c.claim, c.figure, c.paper, r.ours, r.verdict, v1,
                                                           f"`{r.regenerate}`")) + " |")
    for reg in REGISTRATIONS:
        ids = {c.id for c in reg.claims}
        mine = [r for r in rows if r.claim.seeds is not None and r.claim.id in ids]
        if mine:
            lines += _render_registered(reg, mine)
    return "\n".join(lines) + "\n"


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(map(str, seeds))


def _render_registered(reg: Registration, rows: Sequence[Row]) -> list[str]:
    """The section of one set of claims registered before their data (``reg.path``)."""
    judged = sorted({tuple(r.claim.seeds) for r in rows})
    seen = sorted({tuple(r.claim.exploratory_seeds) for r in rows})
    when = f"(commit `{reg.commit}`)" if reg.commit else "(not yet committed)"
    lines = ["", "## " + reg.name[0].upper() + reg.name[1:], ""]
    if len(judged) == 1 and len(seen) == 1:
        j, x = _seed_list(judged[0]), _seed_list(seen[0])
        lines += [
            f"These rows and the statistics that reduce them to per-seed effects were committed {when} in",
            f"`{reg.path}`, before any run of seeds {j} existed in a run store;",
            "the file is unchanged since (a test compares it with that commit). Each is judged by the rule above on",
            f"seeds {j} only. The column *exploratory* gives the same statistic on seeds {x}, whose runs may have",
            "been seen before the rows were written (the file says which were); it is not judged.",
            "",
            f"| # | claim | figure | paper | ours (seeds {j}) | verdict | exploratory (seeds {x}; not judged) | "
            "regenerate |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            c = r.claim
            lines.append("| " + " | ".join(_cell(x) for x in (c.id, c.claim, c.figure, c.paper, r.ours, r.verdict,
                                                               r.exploratory or "—", f"`{r.regenerate}`")) + " |")
        return lines
    lines += [
        f"These rows and the statistics that reduce them to per-seed effects were committed {when} in",
        f"`{reg.path}`, before any run of a row's judged seeds existed for the arms the row compares; the",
        "file is unchanged since (a test compares it with that commit). Each row is judged by the rule above on its",
        "own seeds only (column *judged seeds*). The column *exploratory* gives the same statistic on seeds whose",
        "runs may have been seen before the rows were written (the file says which were); it is not",
        "judged.",
        "",
        "| # | claim | figure | paper | judged seeds | ours (judged seeds) | verdict | exploratory (not judged) | "
        "regenerate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.claim
        shown = f"seeds {_seed_list(c.exploratory_seeds)}: {r.exploratory}" if r.exploratory else "—"
        lines.append("| " + " | ".join(_cell(x) for x in (c.id, c.claim, c.figure, c.paper, _seed_list(c.seeds),
                                                           r.ours, r.verdict, shown, f"`{r.regenerate}`")) + " |")
    return lines


def check_claims(preset: str = "demo", *, run_root: Any = None, seeds: Sequence[int] = (0, 1, 2),
                 device: str | None = None, only: Sequence[str] | None = None,
                 show_run_root: bool | None = None, ids: Sequence[str] | None = None,
                 figure_seeds: Mapping[str, Sequence[int]] | None = None) -> tuple[list[Row], Context]:
    """Every claim's row (those of the figures ``only``, or the claims ``ids``, when given) from the run store
    ``run_root``; ``show_run_root``: whether the regenerate commands name it (None: when it was given);
    ``figure_seeds``: the seeds of each figure where they differ from ``seeds`` (a bundle's, each catalogue claim
    judged on its figure's)."""
    shown = run_root is not None if show_run_root is None else show_run_root
    per_figure = {f: tuple(int(x) for x in v) for f, v in (figure_seeds or {}).items()} or None
    ctx = Context(preset, tuple(int(s) for s in seeds), Path(run_root) if run_root else default_run_root(), device,
                  shown, per_figure)
    cache = RunCache(ctx)
    claims = [c for c in (*CLAIMS, *REGISTERED) if (only is None or c.figure in only) and (ids is None or c.id in ids)]
    try:
        return [evaluate(c, ctx, cache) for c in claims], ctx
    finally:
        cache.close()


def registered_run_sets(preset: str) -> dict[str, tuple[list[int], list[Any]]]:
    """The runs of the claims registered before their data at ``preset``, one entry per registration:
    ``{name: (seeds, configs)}``, the configurations of every registered claim at its judged seeds (bundled beside
    the figures' runs, results.write_bundle)."""
    out: dict[str, tuple[list[int], list[Any]]] = {}
    for reg in REGISTRATIONS:
        seen: dict[str, Any] = {}
        seeds: set[int] = set()
        for claim in reg.claims:
            seeds.update(claim.seeds or ())
            ctx = Context(preset, tuple(claim.seeds or ()), None)
            for c in claim_configs(claim, ctx):
                seen.setdefault(c.run_key(), c)
        out[reg.name] = (sorted(seeds), list(seen.values()))
    return out


def default_claims_path(preset: str, run_root: Any = None) -> Any:
    """Where the table goes unless ``--out`` says otherwise: beside the run store, named by the preset
    (``<run store>/CLAIMS-<preset>.md``), never the committed docs/CLAIMS.md."""
    return Path(run_root if run_root is not None else default_run_root()) / f"CLAIMS-{preset}.md"


def write_claims(out: Any = None, preset: str = "demo", from_results: Any = None, **kw: Any) -> tuple[Any, list[Row]]:
    """Check the claims and write the markdown report to ``out`` (None: :func:`default_claims_path`); returns its
    path and the rows. ``from_results``: read the runs of a results bundle (collapse_utils.paper.results) instead of a
    run store, with its preset, seeds, commits and date, so the same bundle always gives the same table."""
    commit, date, source = git_commit(), time.strftime("%Y-%m-%d %H:%M %Z"), None
    if from_results is not None:  # the bundle's runs, commits and date: the same bundle gives the same table
        record = read_bundle(from_results)
        preset, kw["run_root"] = record["preset"], store_dir(from_results)
        per_figure = {fig: tuple(f["seeds"]) for fig, f in record["figures"].items()}
        kw["seeds"], kw["figure_seeds"] = common_seeds(per_figure), per_figure  # each claim reads its figure's
        kw["show_run_root"] = False  # its rows' commands retrain into the user's own store, not the bundle's
        commit, date = ", ".join(record["trained_by_commit"]), record["written"]
        source = _shown_path(Path(from_results).resolve())
    rows, ctx = check_claims(preset, **kw)
    if from_results is not None:
        check_unchanged(from_results, record)  # a metric the bundle lacked would have been written into it
    shown = None if out is None else _shown_path(Path(out).resolve())
    out = Path(out) if out is not None else default_claims_path(preset, kw.get("run_root"))
    text = render(rows, ctx, commit=commit, date=date, out=shown, source=source)
    cio.atomic_write_bytes(out, text.encode("utf-8"))  # a full disk keeps the previous report whole
    return out, rows



# ---------------------------------------------------------------------------------------------- CLI
def _cmd_claims(args: Any) -> int:
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    out = args.out  # None: beside the run store (default_claims_path), never docs/CLAIMS.md unless named
    only = [f.strip().upper() for f in args.only.split(",") if f.strip()] if args.only else None
    known = sorted({c.figure for c in (*CLAIMS, *REGISTERED)}, key=lambda f: (len(f), f))
    unknown = [f for f in only or () if f not in known]
    if unknown or only == []:
        raise ValueError(f"--only: no claims for figure(s) {unknown or [args.only]}; the claims are of "
                         f"{', '.join(known)}")
    if args.from_results and args.run_root:
        raise ValueError("--from-results reads the bundle's own store; leave out --run-root")
    if args.run_root:
        root = Path(args.run_root)
        if not root.is_dir():
            raise ValueError(f"--run-root {root}: no such run store ({'a file' if root.exists() else 'not found'}); "
                             "name the folder the runs were made in")
    if args.device is not None:
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
