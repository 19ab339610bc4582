"""The appendix figures D1 (D.1: the size sweep under accumulate) and D5 (D.5: fresh real data beside replace and
accumulate): their runs, their notebooks in the figure batch, and a smoke execution through papermill and through a
results bundle."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from collapse_utils.loop import experiments as E
from collapse_utils.paper import batch as figure_batch
from collapse_utils.paper import figures


def test_d1_is_the_size_sweep_under_accumulate():
    d1 = figures.figure_configs("D1", "demo")
    f2 = figures.figure_configs("F2", "demo")
    assert {c.paradigm for c in d1} == {"accumulate_subsample"} and {c.selection for c in d1} == {"none"}
    assert sorted({c.n for c in d1}) == sorted({c.n for c in f2})
    assert [c.replace(paradigm="replace").run_key() for c in d1] == [c.run_key() for c in f2]
    # n = 128 is the selection grid's vanilla accumulate run (F7-F9), trained once for both.
    f7 = {c.run_key() for c in figures.figure_configs("F7", "demo")}
    assert {c.run_key() for c in d1 if c.n == 128} <= f7


def test_d5_compares_fresh_with_the_vanilla_selection_runs():
    d5 = figures.figure_configs("D5", "demo")
    assert [c.paradigm for c in d5 if c.seed == 0] == ["replace", "accumulate_subsample", "fresh"]
    assert {c.selection for c in d5} == {"none"} and {c.n for c in d5} == {128}
    fresh = [c for c in d5 if c.paradigm == "fresh"]
    assert fresh and all(c.fresh_fraction == E.FRESH_FRACTION for c in fresh)
    f7 = {c.run_key() for c in figures.figure_configs("F7", "demo")}
    assert {c.run_key() for c in d5 if c.paradigm != "fresh"} <= f7
    assert len(figures.figure_configs("D5", "demo", paradigms=["fresh"])) == len(fresh)


def test_the_batch_finds_the_appendix_notebooks_after_the_paper_figures():
    found = list(figure_batch.discover_notebooks())
    assert {"D1", "D5"} <= set(found) and "explore_selection" not in found
    assert found[-2:] == ["D1", "D5"] and found[0] == "F2"
    assert list(figure_batch.discover_notebooks(["d5", "F2"])) == ["F2", "D5"]
    assert not figure_batch.is_figure_notebook(Path("explore_selection.ipynb"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("appendix")
    results = figure_batch.run_batch("smoke", only=["D1", "D5"], run_root=root / "runs", fig_dir=root / "figs",
                                     workers=1, params={"fid_samples": 8})
    return root, {r.figure: r for r in results}


def test_appendix_notebooks_run_at_smoke_scale(smoke):
    root, results = smoke
    assert set(results) == {"D1", "D5"} and all(r.ok for r in results.values()), results
    d1 = pd.read_csv(root / "figs" / "D1.csv")
    assert {"gs_pixel", "rho_pixel", "copy_rate_real_pixel"} <= set(d1["metric"])
    assert set(d1["run"].str.split("-").str[2]) == {"accumulate_subsample"}
    assert (root / "figs" / "D1_pairs.csv").exists()
    d5 = pd.read_csv(root / "figs" / "D5.csv")
    assert set(d5["metric"]) == {"gs_pixel", "entropy_pixel", "fd_lenet"}
    assert set(d5["panel"]) == {"Replace", "Accumulate", "Fresh real data"}
    assert (root / "figs" / "D5_floor.csv").exists()


def test_appendix_figures_redraw_from_a_bundle(smoke, tmp_path):
    from collapse_utils.paper.results import redraw, write_bundle

    root, _ = smoke
    write_bundle(tmp_path / "bundle", "smoke", run_root=root / "runs", figures=["D1", "D5"], log=lambda *_: None)
    outputs = redraw(tmp_path / "bundle", fig_dir=tmp_path / "figs", log=lambda *_: None)
    assert set(outputs) == {"D1", "D5"}
    for fig in ("D1", "D5"):
        drawn = pd.read_csv(tmp_path / "figs" / f"{fig}.csv")
        ran = pd.read_csv(root / "figs" / f"{fig}.csv")
        assert len(drawn) == len(ran) and (drawn["value"] - ran["value"]).abs().max() < 1e-9
