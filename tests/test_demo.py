"""The CPU demo: its run plan, the rules that judge the findings, and the whole code path at smoke scale."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from collapse_utils.paper import demo
from collapse_utils.core.config import make_config


# ---------------------------------------------------------------------------------------------- plan
@pytest.mark.parametrize("preset", ["smoke", "demo"])
def test_plan_shares_vanilla_replace_between_sweep_and_selection(preset):
    plan = demo.demo_plan(preset)
    sweep_keys = {c.run_key() for c in plan.sweep}
    assert plan.selection[0].run_key() in sweep_keys
    assert len(plan.configs) == len(plan.sweep) + len(demo.SELECTION_ARMS)
    arms = {(c.paradigm, c.selection) for c in plan.selection}
    assert arms == {("replace", "none"), *demo.SELECTION_ARMS}
    assert all(c.progress is False for c in plan.configs)


def test_demo_plan_meets_the_issue_minimums():
    plan = demo.demo_plan("demo")
    assert len({c.n for c in plan.sweep}) >= 3
    assert all(c.generations >= 5 and c.paradigm == "replace" and c.selection == "none" for c in plan.sweep)


def test_plan_runs_are_the_figure_experiments():
    """The figure notebooks ask for the same configurations, so they reuse the demo's runs."""
    from collapse_utils.loop import experiments as E

    plan = demo.demo_plan("demo")
    grid = {c.run_key() for c in E.selection_grid("demo")}
    assert {c.run_key() for c in plan.selection} <= grid
    assert {c.run_key() for c in plan.sweep} == {c.run_key() for c in E.size_sweep("demo")}


# ---------------------------------------------------------------------------------------------- rules
def _run(n: int, gs, ent, *, paradigm="replace", selection="none", mem=None, mnnd=None, cov=None, index=None,
         copies=None):
    cfg = make_config("smoke", n=n, paradigm=paradigm, selection=selection, generations=len(gs))
    mem = mem or [0.0] * len(gs)
    mnnd = mnnd or [100.0] * len(gs)
    cov = cov or list(np.linspace(2e5, 1e5, len(gs)))
    index = index or list(np.linspace(1.0, 0.5, len(gs)))
    copies = copies or list(np.linspace(0.05, 0.3, len(gs)))
    gens = [SimpleNamespace(generation=i + 1, metrics=dict(gs_pixel=g, entropy_pixel=e, mem_ratio=m, mnnd=d,
                                                           cov_trace=c, mem_index_pixel=x, copy_rate_pixel=y))
            for i, (g, e, m, d, c, x, y) in enumerate(zip(gs, ent, mem, mnnd, cov, index, copies))]
    return SimpleNamespace(config=cfg, generations=gens)


def _sweep():
    return [_run(32, [60, 40, 30, 25, 20], [250, 230, 215, 205, 195], mem=[0.6, 0.2, 0.2, 0.1, 0.1]),
            _run(256, [190, 160, 130, 110, 90], [300, 295, 285, 270, 260]),
            _run(1024, [200, 180, 160, 140, 120], [290, 292, 285, 276, 265])]


def test_findings_hold_on_collapse_shaped_numbers():
    sweep = _sweep()
    sel = [sweep[1],
           _run(256, [190, 185, 170, 160, 150], [300, 305, 300, 295, 290], selection="greedy"),
           _run(256, [190, 180, 165, 150, 140], [300, 302, 298, 290, 285], selection="threshold"),
           _run(256, [190, 175, 165, 160, 155], [300, 298, 295, 292, 290], paradigm="accumulate_subsample")]
    found = demo.judge_findings(sweep, sel)
    assert [f.number for f in found] == [1, 2, 3, 4, 5, 6]
    assert all(f.holds for f in found), [f.text() for f in found if not f.holds]
    assert found[2].numbers["entropy_vs_log_gs"]["pearson_r"] > 0.7


def test_finding_one_fails_when_a_size_does_not_fall_or_larger_sizes_collapse_first():
    flat = _sweep()
    flat[2] = _run(1024, [200, 210, 220, 230, 240], [290, 290, 290, 290, 290])
    assert not demo.finding_gs_decay(flat).holds
    inverted = [_run(32, [300, 290, 280, 270, 260], [1, 1, 1, 1, 1]),
                _run(256, [200, 100, 50, 25, 12], [1, 1, 1, 1, 1])]
    f = demo.finding_gs_decay(inverted)
    assert not f.holds and "neither starts lower nor falls faster" in "\n".join(f.lines)


def test_finding_two_and_four_fail_on_contrary_numbers():
    sweep = _sweep()
    sweep[0] = _run(32, [60, 40, 30, 25, 20], [330, 340, 350, 360, 370])
    assert not demo.finding_entropy_decay(sweep).holds
    sel = [sweep[1],
           _run(256, [190, 150, 120, 100, 80], [300, 305, 300, 295, 290], selection="greedy"),  # GS below vanilla
           _run(256, [190, 180, 165, 150, 140], [300, 302, 298, 290, 285], selection="threshold"),
           _run(256, [190, 175, 165, 160, 155], [300, 298, 295, 292, 290], paradigm="accumulate_subsample")]
    f = demo.finding_selection(sel)
    assert not f.holds
    assert f.numbers["arms"]["Greedy"]["gs_above"] is False and f.numbers["arms"]["TDF"]["gs_above"] is True


def test_finding_six_fails_when_the_index_does_not_fall():
    sweep = _sweep()
    assert demo.finding_memorization_index(sweep).holds
    sweep[2] = _run(1024, [200, 180, 160, 140, 120], [290, 292, 285, 276, 265], index=[0.9, 0.95, 1.0, 1.0, 1.0])
    f = demo.finding_memorization_index(sweep)
    assert not f.holds and f.numbers["falls"] == {32: True, 256: True, 1024: False}
    sweep[2] = _run(1024, [200, 180, 160, 140, 120], [290, 292, 285, 276, 265], copies=[0.1, 0.05, 0.05, 0.05, 0.05])
    assert not demo.finding_memorization_index(sweep).holds


def test_finding_three_uses_the_stated_threshold():
    sweep = [_run(32, [60, 40, 30], [300, 310, 290]), _run(256, [190, 160, 130], [280, 300, 290])]
    f = demo.finding_correlation(sweep)
    assert f.holds == (f.numbers["entropy_vs_log_gs"]["pearson_r"] >= demo.R_THRESHOLD)


def test_per_generation_factor():
    assert demo.per_generation_factor([100, 50, 25]) == pytest.approx(0.5)
    assert demo.per_generation_factor([7]) == 1.0


# ---------------------------------------------------------------------------------------------- the code path
def test_demo_smoke_end_to_end(tmp_path):
    """The whole command at smoke scale: runs, findings, figures, summary files; a rerun reuses every run."""
    lines: list[str] = []
    summary = demo.run_demo("smoke", tmp_path / "runs", tmp_path / "fig", workers=1, echo=lines.append)
    text = "\n".join(lines)
    assert "10 of 10 generations to compute" in text and "FINDINGS" in text
    for n in (1, 2, 3, 4):
        assert f"({n}) " in text
    assert {f["verdict"] for f in summary["findings"]} <= {"seen at seed 0", "not seen at seed 0"}
    # one verdict system: each finding's rows of the claims table, judged by the claims rule on the demo's runs
    # (the figure set's runs at seed 0): one seed resolves none of them
    claims = {f["number"]: f["claims"] for f in summary["findings"]}
    assert claims == {n: {i: "not resolved (1 seed)" for i in ids} for n, ids in demo.FINDING_CLAIMS.items()}
    assert "verdict (the claims rule, docs/CLAIMS.md): row 1 not resolved (1 seed); row 2" in text
    assert "one seed resolves no claim" in text
    for name in ("F2", "F3", "F4", "selection"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 0
    saved = json.loads((tmp_path / "fig" / "summary.json").read_text())
    assert [f["number"] for f in saved["findings"]] == [1, 2, 3, 4, 5, 6]
    assert "memorization index" in text and "(6) " in text
    assert (tmp_path / "fig" / "summary.txt").read_text().startswith("=" * 10)
    again: list[str] = []
    demo.run_demo("smoke", tmp_path / "runs", tmp_path / "fig2", workers=1, echo=again.append)
    assert "0 of 10 generations to compute (10 reused" in "\n".join(again)


def test_cli_registers_demo():
    from collapse_utils.__main__ import build_parser

    args = build_parser().parse_args(["demo", "--preset", "smoke", "--out", "x", "--fig-dir", "y", "--workers", "1"])
    assert (args.preset, args.out, args.fig_dir, args.workers) == ("smoke", "x", "y", 1)
    assert args.func is demo._cmd_demo
