"""Every figure notebook runs at smoke scale through papermill, as the batch command runs it.

One shared run store (a tmp dir) serves all notebooks, so each distinct run trains once. Each notebook must write
its figure (PNG, PDF) and its data file, and every number in the data file must equal the value in the metrics
file of the run and generation it names (``<run>/gen_XX/metrics.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from collapse_utils.paper import batch as figure_batch
from collapse_utils.paper import figure_notes, figures
from collapse_utils.loop import run_metrics
from collapse_utils.__main__ import main as cli_main

NOTEBOOKS = figure_batch.discover_notebooks()
REQUIRED_PARAMETERS = {"preset", "dataset", "sizes", "generations", "paradigms", "methods", "feature_space", "seeds",
                       "device", "run_root", "fig_dir", "workers"}
# FID/FD on 8 images per set: the same code path at a fraction of the Inception cost (CPU CI).
SMOKE_PARAMS = {"fid_samples": 8}


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[Path, Path, dict[str, figure_batch.NotebookResult]]:
    root = tmp_path_factory.mktemp("figures")
    results = figure_batch.run_batch("smoke", run_root=root / "runs", fig_dir=root / "figs", workers=2,
                                params=SMOKE_PARAMS)
    return root / "runs", root / "figs", {r.figure: r for r in results}


def _metric_value(metrics: dict, name: str) -> float:
    value = metrics
    for part in name.split("."):
        value = value[part]
    return float(value)


def _check_against_runs(data: pd.DataFrame, run_root: Path) -> int:
    """Every row naming a run, a generation and a metric must carry that metric's stored value; returns rows checked."""
    columns = ["run", "generation", "metric", "value"]
    assert set(columns) <= set(data.columns), f"a figure's data file needs the columns {columns} (see notebooks/README.md)"
    rows = data.dropna(subset=columns)
    cache: dict[tuple[str, int], dict] = {}
    for run, gen, metric, value in rows[["run", "generation", "metric", "value"]].itertuples(index=False):
        key = (run, int(gen))
        if key not in cache:
            cache[key] = json.loads((run_root / run / f"gen_{int(gen):02d}" / "metrics.json").read_text())
        stored = _metric_value(cache[key], metric)
        assert math.isclose(float(value), stored, rel_tol=1e-9, abs_tol=1e-12), (run, gen, metric, value, stored)
    return len(rows)


def test_notebooks_exist_for_every_figure():
    assert set(figures.SPECS) <= set(NOTEBOOKS)


@pytest.mark.parametrize("figure", sorted(NOTEBOOKS, key=figure_batch.figure_sort_key))
def test_parameters_cell(figure):
    nb = nbformat.read(NOTEBOOKS[figure], as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert REQUIRED_PARAMETERS <= figure_batch.notebook_parameters(NOTEBOOKS[figure])


def test_notebooks_are_generated_by_make_notebooks(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", figure_batch.notebooks_dir() / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.write_all(tmp_path):
        committed = nbformat.read(figure_batch.notebooks_dir() / path.name, as_version=4)
        fresh = nbformat.read(path, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], \
            f"{path.name} is stale: run python notebooks/make_notebooks.py"


@pytest.mark.slow
@pytest.mark.parametrize("figure", sorted(NOTEBOOKS, key=figure_batch.figure_sort_key))
def test_notebook_writes_figure_and_matching_data(batch, figure):
    run_root, fig_dir, results = batch
    result = results[figure]
    assert result.ok, result.error
    executed = nbformat.read(result.executed, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "preset = \"smoke\"" in injected[0].source
    files = figure_batch.expected_files(fig_dir, figure)
    for kind in ("png", "pdf"):
        assert files[kind].stat().st_size > 1000, files[kind]
    assert files["csv"].exists() or files["json"].exists()
    if files["csv"].exists():
        data = pd.read_csv(files["csv"])
        assert _check_against_runs(data, run_root) > 0


@pytest.mark.slow
def test_runs_are_shared_between_figures(batch):
    run_root, _, _ = batch
    expected = {c.run_key() for fig in figures.SPECS for c in figures.figure_configs(fig, "smoke")}
    made = {json.loads((d / "config.json").read_text())["run_key"] for d in run_root.iterdir() if d.is_dir()}
    assert made == expected  # one run per distinct configuration, none trained twice under another name


@pytest.mark.slow
def test_f4_prints_pearson_r_of_its_points(batch):
    _, fig_dir, _ = batch
    data = pd.read_csv(fig_dir / "F4.csv").pivot_table(index=["run", "generation"], columns="metric", values="value")
    summary = json.loads((fig_dir / "F4.json").read_text())["entropy_vs_log_gs"]
    r = np.corrcoef(data["entropy_pixel"], np.log(data["gs_pixel"]))[0, 1]
    assert summary["points"] == len(data)
    assert summary["pearson_r"] == pytest.approx(r, rel=1e-9)


@pytest.mark.slow
def test_fd_fallback_is_recorded(batch):
    _, fig_dir, _ = batch
    data = pd.read_csv(fig_dir / "F15.csv")
    if run_metrics.dinov2_unavailable_reason() is None:
        assert set(data["metric"]) == {"fd_dinov2"}
    else:
        # the smoke preset's fallback is the LeNet space on held-out samples (fd_fallback='preset')
        assert set(data["metric"]) == {"fd_lenet"} and set(data["fd_space"]) == {"lenet (fallback)"}


@pytest.mark.slow
def test_fd_figures_use_the_preset_metric_and_print_the_noise_floor(batch):
    _, fig_dir, _ = batch
    for fig in ("F8", "F12", "F13"):
        data = pd.read_csv(fig_dir / f"{fig}.csv")
        assert "fd_lenet" in set(data["metric"]), fig
        floor = pd.read_csv(fig_dir / f"{fig}_floor.csv")
        assert floor["value"].iloc[0] > 0 and floor["metric"].iloc[0] == "fd_lenet"
    f2 = pd.read_csv(fig_dir / "F2.csv")
    assert {"gs_pixel", "mem_index_pixel", "copy_rate_pixel"} <= set(f2["metric"])


@pytest.mark.slow
def test_batch_summary_lists_every_figure(batch):
    _, fig_dir, results = batch
    summary = json.loads((fig_dir / "executed" / "batch_summary.json").read_text())
    assert [f["figure"] for f in summary["figures"]] == list(results)
    assert all(f["ok"] for f in summary["figures"])


_FAILING_NOTEBOOK = [
    ("code", "preset = 'demo'\nfig_dir = None", ["parameters"]),
    ("code", "x = 1", []),
    ("code", "a = 1\nb = 2\nraise RuntimeError('boom in F98')", []),
]
_WRITING_NOTEBOOK = [
    ("code", "preset = 'demo'\nfig_dir = None", ["parameters"]),
    ("code", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfrom pathlib import Path\n"
             "d = Path(fig_dir)\nd.mkdir(parents=True, exist_ok=True)\nfig = plt.figure()\n"
             "fig.savefig(d / 'F99.png')\nfig.savefig(d / 'F99.pdf')\n(d / 'F99.csv').write_text('a\\n1\\n')", []),
]


def _write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src, metadata={"tags": tags})
                                         for _, src, tags in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_is_reported_and_the_rest_still_run(tmp_path, capsys):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    _write_notebook(nb_dir / "F98.ipynb", _FAILING_NOTEBOOK)
    _write_notebook(nb_dir / "F99.ipynb", _WRITING_NOTEBOOK)
    rc = cli_main(["figures", "--preset", "smoke", "--fig-dir", str(tmp_path / "figs"), "--run-root",
                   str(tmp_path / "runs"), "--notebook-dir", str(nb_dir)])
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 1
    assert err.splitlines()[0].startswith("collapse_utils figures · preset smoke (seconds on a CPU")
    # the end says where the figures and the runs went
    assert f"figures: {tmp_path / 'figs'}" in captured.out and f"run store: {tmp_path / 'runs'}" in captured.out
    assert "F98 FAILED" in err and "boom in F98" in err
    assert "(`raise RuntimeError('boom in F98')`)" in err  # the line that raised, not the cell's first line
    assert "F99" not in err
    assert (tmp_path / "figs" / "F99.png").exists()
    assert (tmp_path / "figs" / "executed" / "F98.ipynb").exists()  # kept for inspection


def test_param_lists_written_without_brackets_reach_the_notebook_as_lists():
    from collapse_utils.core.cli_common import parse_param as _parse_param

    assert _parse_param("sizes=64,256") == ("sizes", [64, 256])
    assert _parse_param("pairs=((1, 2), (3, 4))") == ("pairs", [[1, 2], [3, 4]])
    assert _parse_param("dataset=mnist") == ("dataset", "mnist")


def test_paths_inside_the_repository_are_passed_and_recorded_relative(tmp_path, monkeypatch):
    """Executed notebooks and batch_summary.json carry no machine paths for a store and figure folder in the repo."""
    monkeypatch.setattr(figure_batch, "repo_root", lambda: tmp_path)  # notebooks execute with this working directory
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    _write_notebook(nb_dir / "F99.ipynb", _WRITING_NOTEBOOK)
    results = figure_batch.run_batch("smoke", run_root=tmp_path / "runs", fig_dir=tmp_path / "figs",
                                     notebook_dir=nb_dir, prefetch=False)
    assert [r.ok for r in results] == [True]
    summary = json.loads((tmp_path / "figs" / "executed" / "batch_summary.json").read_text())
    assert (summary["run_root"], summary["fig_dir"]) == ("runs", "figs")
    assert str(tmp_path) not in json.dumps(summary)
    assert (tmp_path / "figs" / "F99.png").exists()
    assert str(tmp_path) not in (tmp_path / "figs" / "executed" / "F99.ipynb").read_text()
    assert figure_batch.repo_relative(Path("/elsewhere/runs")) == "/elsewhere/runs"


@pytest.mark.parametrize("name, text, meant", [
    ("sizes", "[16,32]", [16, 32]), ("sizes", "16,32", [16, 32]), ("sizes", "16", 16), ("sizes", "None", None),
    ("sizes", "(16, 32)", [16, 32]), ("generations", "3", 3), ("guidance_scale", "0.9", 0.9),
    ("decays", "0.9", [0.9]), ("decays", "0.8,0.95", [0.8, 0.95]), ("seeds", "0,1", [0, 1]), ("seeds", 1, [1]),
    ("paradigms", "replace", ["replace"]), ("paradigms", "replace,accumulate_subsample",
                                            ["replace", "accumulate_subsample"]),
    ("paradigms", "[replace, accumulate_subsample]", ["replace", "accumulate_subsample"]),
    ("methods", "none", ["none"]), ("dataset", "mnist", "mnist"), ("dataset", "ffhq32,cifar10", ["ffhq32", "cifar10"]),
    ("dataset", "['ffhq32', 'cifar10']", ["ffhq32", "cifar10"]), ("run_root", "/tmp/runs", "/tmp/runs"),
    ("device", "None", None), ("pair_generations", "1,3", [1, 3]), ("sizes", [16, 32], [16, 32]),
])
def test_text_parameters_are_read_as_meant(name, text, meant):
    assert figures.coerce_parameter(name, text) == meant


def test_text_that_does_not_parse_names_the_parameter():
    with pytest.raises(ValueError, match=r"parameter sizes: cannot read '\[16,'"):
        figures.figure_configs("F2", "smoke", sizes="[16,")
    with pytest.raises(ValueError, match="parameter n_pairs: cannot read 'six'"):
        figures.figure_runs("F2", "smoke", n_pairs="six")
    with pytest.raises(ValueError, match="sizes must be a positive integer"):  # parsed, then checked as before
        figures.figure_configs("F2", "smoke", sizes="-3")
    assert [c.n for c in figures.figure_configs("F2", "smoke", sizes="16,32", generations="2", seeds="0")] == [16, 32]


@pytest.mark.slow
def test_papermill_text_parameters_reach_the_figure(tmp_path):
    """Plain papermill, as users call it: the Python API with text values as ``-p`` gives them, then the CLI."""
    import subprocess
    import sys

    import papermill

    nb = str(figure_batch.notebooks_dir() / "F2.ipynb")
    text = {"preset": "smoke", "sizes": "[16,32]", "generations": "2", "seeds": "0", "n_pairs": "2",
            "workers": "1", "pair_generations": "1,2", "run_root": str(tmp_path / "runs"), "fig_dir": str(tmp_path / "figs")}
    papermill.execute_notebook(nb, str(tmp_path / "api.ipynb"), parameters=text, kernel_name="python3",
                               cwd=str(figure_batch.repo_root()), progress_bar=False)
    data = pd.read_csv(tmp_path / "figs" / "F2.csv")
    assert sorted({json.loads((tmp_path / "runs" / r / "config.json").read_text())["n"] for r in data["run"]}) == [16, 32]
    assert _check_against_runs(data, tmp_path / "runs") > 0
    # The CLI: -p gives "16,32" as text and "None" as None; the runs above are reused from the store.
    cli = [sys.executable, "-m", "papermill", nb, str(tmp_path / "cli.ipynb"), "-k", "python3", "--cwd",
           str(figure_batch.repo_root()), "-p", "preset", "smoke", "-p", "sizes", "16,32", "-p", "generations", "2",
           "-p", "workers", "None", "-p", "run_root", str(tmp_path / "runs"), "-p", "fig_dir", str(tmp_path / "cli_figs")]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(tmp_path / "cli.ipynb", as_version=4)
    injected = [c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "sizes = \"16,32\"" in injected[0]
    assert set(pd.read_csv(tmp_path / "cli_figs" / "F2.csv")["run"]) == set(data["run"])


def test_every_figure_says_what_it_plots_finds_expects_and_costs():
    import dataclasses

    assert set(figure_notes.NOTES) == set(figures.SPECS)
    for fig, notes in figure_notes.NOTES.items():
        for f in dataclasses.fields(notes):
            assert getattr(notes, f.name).strip(), (fig, f.name)
        assert "PAPER.md" in notes.paper_finding, fig  # the finding cites the digest's section
        nb = nbformat.read(NOTEBOOKS[fig], as_version=4)
        about = [c.source for c in nb.cells if c.cell_type == "markdown" and "## About this figure" in c.source]
        assert len(about) == 1 and notes.paper_finding in about[0] and figure_notes.SMOKE_RUNTIME in about[0], fig


def test_runtime_notes_count_every_seed_of_the_preset():
    """The notebooks' run counts and CPU-minutes come from the figure's configurations with the preset's seeds
    (3 at demo scale), priced like the sweep plan; the notebooks carry exactly that text."""
    from collapse_utils.paper import sweep

    for fig in figures.SPECS:
        for preset in ("demo", "paper"):
            configs = {c.run_key(): c for c in figures.figure_configs(fig, preset)}.values()
            seeds = {c.seed for c in configs}
            generations = sum(c.generations for c in configs)
            text = figure_notes.runtime(fig, preset)
            assert f"{len(configs)} runs" in text and f"{generations} generations" in text, (fig, preset, text)
            if preset == "demo":
                assert len(seeds) == 3 and f"× 3 seeds" in text, (fig, text)
                cpu_min = generations * sweep.CPU_COST["demo"].per_generation_s / 60
                assert f"≈{cpu_min:.0f} CPU-min" in text, (fig, text)
            else:
                hours = sum(c.generations * sweep.generation_seconds(c) for c in configs) / 3600
                assert f"≈{hours:.0f} H200-hours" in text, (fig, text)
            nb = nbformat.read(NOTEBOOKS[fig], as_version=4)
            assert any(text in c.source for c in nb.cells if c.cell_type == "markdown"), (fig, preset)
    # the size sweep at demo scale: 3 sizes x 3 seeds x 5 generations at 31 CPU-s each
    assert "9 runs (3 per seed × 3 seeds), 45 generations: ≈23 CPU-min" in figure_notes.runtime("F2", "demo")

