"""The claims report: the verdict rule on chosen per-seed values (each branch, with values a wrong inequality
would misjudge), the claims registry, and the command end to end on a small smoke run store (one row per claim,
the rule printed, "not run" where runs are absent, nothing written into the runs but post-hoc metrics)."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pytest

from collapse_utils.paper import claims as C
from collapse_utils.paper.claims import registered as _registered, report as _report  # noqa: F401  (C.registered, C.report)
from collapse_utils.paper import figures
from collapse_utils.loop import run_metrics
from collapse_utils.core import vocab
from collapse_utils.__main__ import build_parser, main

from conftest import CLAIMS_STORE_SEEDS


# ---------------------------------------------------------------------------------------------- the rule
def test_summary_uses_the_sample_sd_and_drops_missing_values():
    s = C.summarize([1.0, 2.5, float("nan"), None])
    assert s.k == 2 and s.mean == pytest.approx(1.75)
    assert s.sd == pytest.approx(math.sqrt(((1 - 1.75) ** 2 + (2.5 - 1.75) ** 2) / 1))  # ddof = 1
    assert s.se == pytest.approx(s.sd / math.sqrt(2))


def test_holds_when_the_mean_exceeds_twice_the_standard_error():
    # m = 1.75, sd = 1.06, se = 0.75: m > 2·se = 1.5 (holds), though m < 2·sd = 2.12 (an sd-based rule would not)
    assert C.verdict([1.0, 2.5]) == C.HOLDS
    # m = 1.5, se = 1.0: m > se but m < 2·se, so not resolved (a 1·se rule would say holds)
    assert C.verdict([0.5, 2.5]) == C.NOT_RESOLVED
    assert C.verdict([1.0, 1.2, 0.8]) == C.HOLDS


def test_does_not_hold_is_the_mirror_image():
    assert C.verdict([-1.0, -2.5]) == C.DOES_NOT_HOLD
    assert C.verdict([-0.5, -2.5]) == C.NOT_RESOLVED
    # a negative mean never "holds", a positive one never "does not hold", however small the error
    assert C.verdict([-1.0, -1.0001]) == C.DOES_NOT_HOLD
    assert C.verdict([1.0, 1.0001]) == C.HOLDS


def test_the_noise_floor_bounds_fd_claims_from_below():
    # m = 1.0, 2·se = 0.23: holds against 2·se alone, and with f = 0.9, but not once f = 1.5 exceeds m
    values = [1.0, 1.2, 0.8]
    assert C.verdict(values, fd=True, floor=0.9) == C.HOLDS
    assert C.verdict(values, fd=True, floor=1.5) == C.NOT_RESOLVED
    assert C.verdict([-v for v in values], fd=True, floor=0.9) == C.DOES_NOT_HOLD
    assert C.verdict([-v for v in values], fd=True, floor=1.5) == C.NOT_RESOLVED
    # the floor is only for FD claims
    assert C.verdict(values, fd=False, floor=1.5) == C.HOLDS
    assert C.verdict(values, fd=True, floor=None) == "not resolved: no noise floor"
    assert C.verdict(values, fd=True, floor=float("nan")) == "not resolved: no noise floor"


def test_one_seed():
    assert C.verdict([5.0]) == C.NOT_RESOLVED_ONE_SEED  # non-FD: never resolved
    assert C.verdict([5.0], fd=True, floor=2.0) == C.HOLDS  # 5 > 2f = 4
    assert C.verdict([3.0], fd=True, floor=2.0) == C.NOT_RESOLVED_ONE_SEED  # f < 3 < 2f
    assert C.verdict([-5.0], fd=True, floor=2.0) == C.DOES_NOT_HOLD
    assert C.verdict([-3.0], fd=True, floor=2.0) == C.NOT_RESOLVED_ONE_SEED
    assert C.verdict([5.0], fd=True, floor=0.0) == C.NOT_RESOLVED_ONE_SEED  # 2f > 0 is required
    assert C.verdict([]).startswith("not resolved")


def test_equivalence():
    se = 0.05  # each arm below: two seeds 0.1 apart, sd = 0.0707, se = 0.05
    assert C.equivalence_verdict({"a": [1.0, 1.1], "b": [1.05, 1.15]}) == C.HOLDS  # D = 0.05 ≤ N = 0.1
    assert C.equivalence_verdict({"a": [1.0, 1.1], "b": [1.15, 1.25]}) == C.NOT_RESOLVED  # N < D = 0.15 ≤ 2N
    assert C.equivalence_verdict({"a": [1.0, 1.1], "b": [1.25, 1.35]}) == C.DOES_NOT_HOLD  # D = 0.25 > 2N
    d, noise, k = C.spread({"a": [1.0, 1.1], "b": [1.15, 1.25]})
    assert (d, noise, k) == (pytest.approx(0.15), pytest.approx(2 * se), 2)
    # the floor widens the noise: N = 2·se + f
    assert C.equivalence_verdict({"a": [1.0, 1.1], "b": [1.15, 1.25]}, fd=True, floor=0.1) == C.HOLDS
    assert C.equivalence_verdict({"a": [1.0, 1.1], "b": [1.15, 1.25]}, fd=True, floor=None).endswith("noise floor")
    # the spread is over the arms' means, whatever the arm order; three arms: max − min
    assert C.spread({"x": [3.0, 3.0], "y": [1.0, 1.0], "z": [2.0, 2.0]})[0] == pytest.approx(2.0)
    assert C.equivalence_verdict({"a": [1.0], "b": [1.0]}) == C.NOT_RESOLVED_ONE_SEED
    assert C.equivalence_verdict({"a": [1.0, 1.1]}).startswith("not resolved")


def test_t_rule_uses_the_two_sided_95_interval_with_k_minus_1_degrees_of_freedom():
    # k = 3, m = 1, sd = 0.2, se = 0.1155: t(0.975, 2) = 4.303, half-width 0.497 → [0.503, 1.497] → holds
    assert C.t_interval([1.0, 1.2, 0.8]) == (pytest.approx(1 - 4.302653 * 0.2 / 3 ** 0.5, rel=1e-5),
                                             pytest.approx(1 + 4.302653 * 0.2 / 3 ** 0.5, rel=1e-5))
    assert C.t_verdict([1.0, 1.2, 0.8]) == C.HOLDS
    assert C.t_verdict([-1.0, -1.2, -0.8]) == C.DOES_NOT_HOLD
    # m = 1, sd = 0.5, se = 0.289: passes the first rule (m > 2·se = 0.577) but not the t interval (half 1.24)
    values = [1.0, 1.5, 0.5]
    assert C.verdict(values) == C.HOLDS
    assert C.t_verdict(values) == C.NOT_RESOLVED
    assert C.t_verdict([-v for v in values]) == C.NOT_RESOLVED
    # one seed never resolves a claim, Fréchet distances included (the first rule let 5 > 2f hold)
    assert C.verdict([5.0], fd=True, floor=2.0) == C.HOLDS
    assert C.t_verdict([5.0]) == C.NOT_RESOLVED_ONE_SEED
    assert C.t_verdict([]).startswith("not resolved")


def test_tost_equivalence_against_a_stated_margin():
    close = {"a": {0: 50.0, 1: 52.0, 2: 51.0}, "b": {0: 51.0, 1: 53.0, 2: 50.5}}  # differences −1, −1, 0.5
    assert C.tost_verdict(close, 10.0) == C.HOLDS
    assert C.tost_verdict(close, 1.0) == C.NOT_RESOLVED  # the 90 % interval reaches past ±1
    far = {"a": {0: 50.0, 1: 52.0, 2: 51.0}, "b": {0: 80.0, 1: 83.0, 2: 81.0}}
    assert C.tost_verdict(far, 10.0) == C.DOES_NOT_HOLD
    # pairs are compared within seeds: a seed one arm lacks is left out of that pair
    assert C.paired_differences({"a": {0: 1.0, 1: 2.0}, "b": {1: 1.5, 2: 9.0}}) == {("a", "b"): [0.5]}
    assert C.tost_verdict({"a": {0: 1.0}, "b": {0: 1.0}}, 10.0) == C.NOT_RESOLVED_ONE_SEED
    assert C.tost_verdict(close, None).startswith("not resolved")
    # three arms: every pair must be inside the margin
    three = dict(close, c={0: 70.0, 1: 71.0, 2: 72.0})
    assert C.tost_verdict(three, 10.0) == C.DOES_NOT_HOLD


def test_equivalence_cell_shows_the_spread_of_the_values_not_of_the_seed_ids():
    # seeds 5 and 9: averaging the seed ids would give both arms the mean 7 and D = 0
    eff = C.Effect(arms={"decay=0.8": {5: 100.0, 9: 110.0}, "decay=0.95": {5: 103.0, 9: 113.0}}, what="spread")
    text = C.describe(eff, "equivalence", margin=10.0)
    assert "D = 3" in text and "margin δ = 10" in text, text


def test_headline_numbers_are_judged_at_paper_scale_only():
    assert C.headline_verdict([27.4, 27.6], (27.5, 27.5), "demo") == C.NOT_RESOLVED
    assert C.headline_verdict([27.0, 28.0], (27.5, 27.5), "paper") == C.HOLDS
    assert C.headline_verdict([31.0], (27.5, 27.5), "paper") == C.DOES_NOT_HOLD  # 31 > 1.1 × 27.5
    assert C.headline_verdict([24.0], (21.5, 22.0), "paper") == C.HOLDS  # ≤ 1.1 × 22 = 24.2
    assert C.headline_verdict([19.0], (21.5, 22.0), "paper") == C.DOES_NOT_HOLD  # < 0.9 × 21.5


# ---------------------------------------------------------------------------------------------- the registry
def test_registry():
    ids = [c.id for c in C.CLAIMS]
    assert len(ids) == len(set(ids)) == 34
    for c in C.CLAIMS:
        assert c.statistic in C.STATISTICS and c.figure in figures.SPECS and c.kind in ("effect", "equivalence",
                                                                                         "headline")
        assert all(f in figures.SPECS for f, _ in c.figure_sources())
        assert "§" in c.paper
    assert {c.figure for c in C.CLAIMS if c.fd and c.kind != "headline"} == {"F8", "F12", "F13", "F15"}
    assert {p: C.Context(p, (0,), None).fd_metric for p in ("smoke", "demo", "paper")} == {
        "smoke": "fd_lenet", "demo": "fd_lenet", "paper": "fid"}


def test_the_command_is_registered():
    parser = build_parser()
    assert "python -m collapse_utils claims" in parser.format_help()
    args = parser.parse_args(["claims", "--preset", "demo", "--seeds", "0,1,2", "--out", "x.md"])
    assert args.func is C._cmd_claims and args.seeds == "0,1,2"


def test_noise_floor_and_metric_guards(claims_store):
    cfg = figures.figure_configs("F2", "smoke")[0]
    f, why = C.noise_floor(cfg, "fd_lenet", 64)  # two disjoint sets of 64 MNIST test images
    assert why is None and f == pytest.approx(run_metrics.fd_noise_floor(cfg, "fd_lenet", 64)) and f > 0
    digits = cfg.replace(dataset="digits", n=1797)  # no held-out real images beyond the whole set
    f, why = C.noise_floor(digits, "fid", 16)
    assert f is None and why.startswith("no noise floor (HeldOutUnavailableError")
    # a metric this package does not know: not resolved, with the reason
    claim = C.Claim("x", "F2", "a claim", "§6.1", "decline", dict(metric="no_such_metric"))
    ctx = C.Context("smoke", CLAIMS_STORE_SEEDS, claims_store, "cpu", True)
    row = C.evaluate(claim, ctx, C.RunCache(ctx))
    assert row.verdict.startswith("not resolved: metric no_such_metric not available"), row.verdict


# ---------------------------------------------------------------------------------------------- end to end
def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if re.match(r"^\| \d+ \|", line):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[cells[0]] = cells
    return rows


def _writes_only_metrics(before: dict[str, str], after: dict[str, str]) -> None:
    assert set(before) <= set(after), "files were removed from the run store"
    changed = [p for p in after if before.get(p) != after[p]]
    # post-hoc metrics with their content record (hashes.json, and DONE that vouches for it), and the held-out
    # samples they draw (collapse_utils.loop.heldout)
    assert all(re.search(r"gen_\d+/(metrics\.json$|hashes\.json$|DONE$|heldout/)", p) for p in changed), changed
    assert not any(re.search(r"gen_\d+/heldout/", p) for p in before if before[p] != after.get(p)), \
        "held-out samples already drawn must be kept"


def test_claims_command_on_a_smoke_store(claims_store, tmp_path, monkeypatch):
    # the smoke preset's FD claims read fd_lenet (held-out samples vs MNIST test images), computed post-hoc
    before = _snapshot(claims_store)
    out = tmp_path / "CLAIMS.md"
    assert main(["claims", "--preset", "smoke", "--seeds", ",".join(map(str, CLAIMS_STORE_SEEDS)), "--run-root",
                 str(claims_store), "--out", str(out), "--device", "cpu"]) == 0
    after = _snapshot(claims_store)
    _writes_only_metrics(before, after)
    assert any(before.get(p) != after[p] for p in after), "the FD was to be computed post-hoc into metrics.json"
    text = out.read_text()
    assert C.RULE_TEXT in text
    for line in ("- preset: `smoke`", f"- run store: `{claims_store}`", "- seeds: 0, 1", "- git commit:", "- date:",
                 "noise floor", "`fd_lenet` at 64 images: f = "):
        assert line in text, line
    rows = _rows(text)
    assert list(rows) == [c.id for c in C.CLAIMS]
    assert all(len(cells) == 8 for cells in rows.values())
    verdict = {i: cells[5] for i, cells in rows.items()}
    verdict_v1 = {i: cells[6] for i, cells in rows.items()}
    assert C.RULE_V1_TEXT in text  # the first rule, kept beside the table's
    ours = {i: cells[4] for i, cells in rows.items()}
    by_id = {c.id: c for c in C.CLAIMS}
    # absent runs: F11, F12, F13, the replace arms of F7/F8/F9/F15 -> "not run" naming the figure's command
    for i, c in by_id.items():
        if c.figure in ("F11", "F12", "F13") or (c.kind != "headline" and c.params.get("a", {}).get("paradigm")
                                                 in ("replace", "replace_2n")):
            assert verdict[i].startswith("not run: `python -m collapse_utils figures --preset smoke --only "
                                         f"{c.figure}"), (i, verdict[i])
    # present runs: a verdict by the rule, over both seeds
    judged = (C.HOLDS, C.DOES_NOT_HOLD, C.NOT_RESOLVED)
    for i in ("1", "2", "3", "4", "5", "8", "9", "12", "13", "15", "18", "19", "20", "21"):
        assert verdict[i] in judged, (i, verdict[i])
        assert verdict_v1[i] in judged, (i, verdict_v1[i])
        assert "(2 seeds)" in ours[i] and "95 % CI [" in ours[i], (i, ours[i])
    assert "f = " in ours["18"] and "fd_lenet at the last generation" in ours["18"]
    for i in ("29", "30"):  # the memorization index of the F2 runs, over both seeds
        assert verdict[i] in judged and "(2 seeds)" in ours[i], (i, verdict[i], ours[i])
    assert "real_share" in ours["20"]
    # FD_DINO: DINOv2 weights are absent offline, or else a verdict
    assert verdict["28"].startswith("not resolved: DINOv2 unavailable") or verdict["28"] in judged
    for i in ("31", "32", "33", "34"):
        assert verdict[i] == C.NOT_RESOLVED and "paper-scale" in ours[i]
    assert rows["6"][7] == "`python -m collapse_utils figures --preset smoke --only F7 --param 'seeds=[0, 1]' " \
                           f"--run-root {claims_store}`"
    # a second report computes nothing more
    again = tmp_path / "again.md"
    assert main(["claims", "--preset", "smoke", "--seeds", "0,1", "--run-root", str(claims_store), "--out",
                 str(again), "--device", "cpu", "--only", "F8,F10"]) == 0
    assert _snapshot(claims_store) == after
    assert list(_rows(again.read_text())) == [c.id for c in C.CLAIMS if c.figure in ("F8", "F10")]


def test_seeds_missing_from_the_store_are_named(claims_store):
    rows, _ = C.check_claims("smoke", run_root=claims_store, seeds=(0, 1, 2), device="cpu", only=["F2", "F4"])
    row = next(r for r in rows if r.claim.id == "1")
    assert "(2 seeds)" in row.ours and "seed 2: never started" in row.ours
    assert row.verdict in (C.HOLDS, C.DOES_NOT_HOLD, C.NOT_RESOLVED)


def test_claims_never_overwrite_the_committed_table_unless_named(claims_store, tmp_path, monkeypatch, capsys):
    """Without --out the table goes beside the run store, named by its preset; docs/CLAIMS.md is untouched."""
    import shutil

    from collapse_utils.core.paths import repo_root

    committed = repo_root() / "docs" / "CLAIMS.md"
    before = (committed.read_bytes(), committed.stat().st_mtime_ns)
    store = tmp_path / "store"
    shutil.copytree(claims_store, store)
    monkeypatch.setenv("COLLAPSE_RUNS", str(store))  # the default run store
    assert main(["claims", "--preset", "smoke", "--seeds", "0,1", "--device", "cpu", "--only", "F10"]) == 0
    out = store / "CLAIMS-smoke.md"
    assert f"wrote {out}: " in capsys.readouterr().out
    text = out.read_text()
    assert "Written by `python -m collapse_utils claims --preset smoke --seeds 0,1`" in text  # no --out: default
    assert list(_rows(text)) == [c.id for c in C.CLAIMS if c.figure == "F10"]
    assert (committed.read_bytes(), committed.stat().st_mtime_ns) == before
    # --run-root moves the default with the store; --out names any other file, and the table says so
    other = tmp_path / "elsewhere.md"
    assert main(["claims", "--preset", "smoke", "--seeds", "0,1", "--run-root", str(store), "--device", "cpu",
                 "--only", "F10", "--out", str(other)]) == 0
    assert f"--out {other}`" in other.read_text()
    assert C.default_claims_path("demo", store) == store / "CLAIMS-demo.md"
    assert (committed.read_bytes(), committed.stat().st_mtime_ns) == before


# ---------------------------------------------------------------------------------------------- registered claims
def _run(n: int, series: dict[str, list[float]], **fields):
    """A finished run as the statistics read it: its config (n and arm fields) and per-generation metrics."""
    from types import SimpleNamespace

    gens = [SimpleNamespace(generation=t + 1, metrics={k: v[t] for k, v in series.items()})
            for t in range(len(next(iter(series.values()))))]
    return SimpleNamespace(config=SimpleNamespace(n=n, **fields), generations=gens)


def test_registered_statistics_on_chosen_values():
    from collapse_utils.paper.claims import registered as R

    rho, copy = R.RHO, R.COPY
    # R1: only sizes with rho_1 >= 0.8 count; the smallest rise of the copy rate is the effect
    runs = [_run(32, {rho: [0.3, 0.2], copy: [0.9, 0.8]}),  # memorizes from the start: not a transition size
            _run(128, {rho: [0.85, 0.5], copy: [0.05, 0.9]}), _run(1024, {rho: [1.1, 0.9], copy: [0.0, 0.02]})]
    eff = R.stat_transition({0: runs})
    assert eff.values[0] == pytest.approx(0.02) and set(eff.parts) == {"n=128", "n=1024"}
    assert R.stat_transition({0: runs[:1]}).values == {}  # no qualifying size: no value
    # R2: sizes with rho_1 < 0.5, the lowest copy rate over generations minus 0.5
    eff = R.stat_memorize_from_start({0: runs})
    assert eff.values[0] == pytest.approx(0.3) and set(eff.parts) == {"n=32"}
    # R4: an exponential decay is better fitted in logs; a linear one is not
    t = range(5)
    expo = _run(64, {"gs_pixel": [100 * 0.5 ** i for i in t]})
    line = _run(64, {"gs_pixel": [100 - 20 * i for i in t]})
    assert R.stat_log_linear({0: [expo]}).values[0] > 0 > R.stat_log_linear({0: [line]}).values[0]
    # R5/R6: the arm that declines less gives a positive gap
    acc = _run(128, {"gs_pixel": [100, 80]}, paradigm="accumulate_subsample", selection="none")
    rep = _run(128, {"gs_pixel": [100, 40]}, paradigm="replace", selection="none")
    eff = R.stat_decline_gap({0: [acc, rep]}, "gs_pixel", a=R._ACCUMULATE, b=R._REPLACE, log=True)
    assert eff.values[0] == pytest.approx(math.log(0.8) - math.log(0.4))


def test_registered_claims():
    ids = [c.id for c in C.REGISTERED]
    assert ids == [f"R{i}" for i in range(1, 19)] and not set(ids) & {c.id for c in C.CLAIMS}
    statistics = {**C.STATISTICS, **C.registered.STATISTICS, **C.registered2.STATISTICS}
    for c in C.REGISTERED:
        assert not set(c.seeds) & set(c.exploratory_seeds) and c.exploratory_seeds == C.EXPLORE_SEEDS
        assert c.statistic in statistics and c.kind == "effect" and ("§" in c.paper or "App. " in c.paper)
        assert all(f in figures.SPECS for f, _ in c.figure_sources())
    for c in C.registered.REGISTERED:
        assert c.seeds == C.CONFIRM_SEEDS
    for c in C.registered3.REGISTERED:  # R1–R3 in LeNet space, on seeds no run had used
        assert c.seeds == (6, 7, 8) and "lenet" in " ".join(map(str, c.params.values()))
    for c in C.registered4.REGISTERED:  # Appendix D.1 under accumulate, on seeds no run of any figure had used
        assert c.seeds == (9, 10, 11) and c.figure == "D1"
        configs = C.claim_configs(c, C.Context("demo", c.seeds, None))
        assert configs and {k.paradigm for k in configs} == {"accumulate_subsample"}
    # the second registration: seeds 3–5 only for arms that had no run there (the selection arms of R8/R9);
    # seeds 6–8 for rows whose arms ran at 3–5 for R1–R7 (F11's unconditional arm, F14's size sweep)
    second = {c.id: c.seeds for c in C.registered2.REGISTERED}
    assert second == {"R8": (3, 4, 5), "R9": (3, 4, 5), "R10": (6, 7, 8), "R11": (6, 7, 8), "R12": (6, 7, 8)}
    first_keys = {k.run_key() for k in C.registered_run_sets("demo")["claims registered before their data"][1]}
    for c in C.registered2.REGISTERED:
        if c.seeds == (3, 4, 5):
            keys = {k.run_key() for k in C.claim_configs(c, C.Context("demo", c.seeds, None))}
            assert keys and not keys & first_keys, c.id


def test_stat_faster_decline():
    """R12: the gap of the log-declines of two metrics, the smallest over sizes (F14's "spiky")."""
    runs = [_run(32, {"mnnd": [100, 10], "cov_trace": [10, 5]}), _run(128, {"mnnd": [100, 50], "cov_trace": [10, 8]})]
    eff = C.registered2.stat_faster_decline({0: runs})
    assert eff.values[0] == pytest.approx(math.log(2) - math.log(10 / 8))
    assert eff.parts["n=32"][0] == pytest.approx(math.log(10) - math.log(2))
    # the variance falling as fast as the distances gives no effect; a missing metric gives no value
    same = [_run(32, {"mnnd": [100, 50], "cov_trace": [10, 5]})]
    assert C.registered2.stat_faster_decline({0: same}).values[0] == pytest.approx(0.0, abs=1e-12)
    assert C.registered2.stat_faster_decline({0: [_run(32, {"mnnd": [100, 50]})]}).values == {}


def test_registered_rows_are_judged_on_their_own_seeds(claims_store):
    """Registered rows read their judged seeds (3–5: absent here, so "not run" with their command) whatever the
    report's seeds, and show the report's exploratory seeds beside the verdict."""
    rows, _ = C.check_claims("smoke", run_root=claims_store, seeds=(0, 1), device="cpu", only=["F2"])
    later = {r.claim.id: r for r in rows if r.claim.seeds is not None and r.claim.seeds != (3, 4, 5)}
    assert set(later) == {"R13", "R14", "R15"}  # the LeNet-space rows, judged on seeds 6–8
    for r in later.values():
        assert r.verdict.startswith("not run: `python -m collapse_utils figures --preset smoke --only F2 --param "
                                    "'seeds=[6, 7, 8]'"), r.verdict
    # the LeNet-space statistic of R15 over the two stored seeds (computed here from the runs' held-out draws)
    assert "(2 seeds)" in later["R15"].exploratory and "ln rho_lenet at gen 1" in later["R15"].exploratory
    got = {r.claim.id: r for r in rows if r.claim.seeds == (3, 4, 5)}
    assert set(got) == {"R1", "R2", "R3", "R4"}
    for r in got.values():
        assert r.verdict.startswith("not run: `python -m collapse_utils figures --preset smoke --only F2 --param "
                                    "'seeds=[3, 4, 5]'"), r.verdict
        assert "seeds 3, 4, 5: never started" in r.ours
    # the exploratory statistic of R3 (the size order of rho at generation 1) over the two stored seeds
    assert "(2 seeds)" in got["R3"].exploratory and "ln rho_pixel at gen 1" in got["R3"].exploratory
    rows = [r for r in rows if r.claim.id not in later]
    text = C.render(rows, C.Context("smoke", (0, 1), claims_store), commit="abc", date="today")
    section = text.split("## Claims registered before their data", 1)[1]
    assert all(f"| {i} |" in section for i in got) and "exploratory (seeds 0, 1, 2; not judged)" in section
    assert not any(f"| {i} |" in text.split("## Claims registered before their data")[0] for i in got)


def test_registered_claims_are_unchanged_since_their_commit():
    """The registered rows and their statistics are the bytes committed before their judged seeds were run."""
    import subprocess

    from collapse_utils.core.paths import repo_root

    assert C.REGISTERED_IN == C.REGISTRATIONS[0].commit
    for reg in C.REGISTRATIONS:
        assert len(reg.commit) == 40, "the commit that registered the claims is recorded"
        try:
            old = subprocess.run(["git", "show", f"{reg.commit}:{reg.path}"], cwd=repo_root(), capture_output=True,
                                 check=True, timeout=60).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"no git history with commit {reg.commit} here ({type(exc).__name__})")
        assert (repo_root() / reg.path).read_bytes() == old, reg.path
        assert reg.module.__file__.endswith(reg.path.split("/")[-1])


def test_every_metric_a_claim_reads_is_computed_where_missing():
    """The report computes post hoc every metric a statistic reads: each string parameter of every claim is a
    metric the report knows to compute, or the one config field an equivalence claim groups by."""
    ctx = C.Context("demo", (0,), None)
    for c in (*C.CLAIMS, *C.REGISTERED):
        named = {k for k, v in c.params.items() if isinstance(v, str)} - {"by"}
        assert named <= set(C.report.METRIC_PARAMS), (c.id, named)
        assert set(C.claim_metric_names(c, ctx)) == {C.claim_params(c, ctx)[k] for k in named}


def test_second_registration_has_its_own_section_with_each_rows_seeds(tmp_path):
    """Rows of the second registration are shown under their own heading, with the commit that registered them and
    each row's judged seeds (3–5 or 6–8), never in the first registration's section or the main table."""
    rows = [C.Row(c, "d = 1", C.HOLDS, "cmd", exploratory="d = 2") for c in C.REGISTERED]
    text = C.render(rows, C.Context("demo", (0, 1, 2), tmp_path), commit="abc", date="today")
    first, second = text.split("## Claims registered before their data (R8–R12)")
    assert C.REGISTRATIONS[1].commit in second and "registered2.py" in second
    assert "| R8 |" in second and "| 3, 4, 5 |" in second and "| R12 |" in second and "| 6, 7, 8 |" in second
    assert "seeds 0, 1, 2: d = 2" in second
    assert "| R7 |" in first and not any(f"| R{i} |" in first for i in range(8, 16))
    second, third = second.split("## Claims registered before their data (R13–R15)")
    assert not any(f"| R{i} |" in second for i in range(13, 16)) and C.REGISTRATIONS[2].commit in third
    assert "before any run of seeds 6, 7, 8 existed" in " ".join(third.split()) and "| R15 |" in third
    third, fourth = third.split("## Claims registered before their data (R16–R18)")
    assert not any(f"| R{i} |" in third for i in range(16, 19)) and C.REGISTRATIONS[3].commit in fourth
    assert "before any run of seeds 9, 10, 11 existed" in " ".join(fourth.split()) and "| R18 |" in fourth


def test_each_claim_is_judged_on_its_figures_seeds_in_a_bundle(claims_store):
    """A bundle may hold figures at different seeds (F8 at 0–5, D1 at 0): a catalogue claim reads its own figure's
    seeds, and the header says which figures differ from the report's seeds."""
    rows, ctx = C.check_claims("smoke", run_root=claims_store, seeds=(0, 1), device="cpu", only=["F2", "F4"],
                               figure_seeds={"F2": (0,)})
    judged = {r.claim.id: r for r in rows if r.claim.seeds is None}
    assert "(1 seed)" in judged["1"].ours and judged["1"].verdict == C.NOT_RESOLVED_ONE_SEED
    assert "(2 seeds)" in judged["4"].ours
    assert ctx.seeds_text() == "0, 1 (F2: 0)"
    assert "- seeds: 0, 1 (F2: 0)" in C.render(rows, ctx, commit="abc", date="today")
