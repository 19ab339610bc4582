"""Every paper figure, drawn from real smoke-scale runs, is laid out for print: a standard width, every text inside
the canvas, no two texts on top of each other, seeds said, and the same data redrawn gives the same files.

The runs come from the notebooks' own call (:func:`collapse_utils.paper.figures.figure_runs`) at ``--preset smoke`` in a
shared temporary run store (about half a minute on a CPU); the size-sweep figures (F2, F3, F4, F14, F17) get two
seeds, so that averaged lines and repeated-seed image grids are exercised. Each figure is drawn by its
``plot_fNN`` with the options the notebook would pass, and its :class:`~collapse_utils.paper.drawing.FigureOutput`
figure is rendered and checked by :func:`collapse_utils.paper.drawing.text_layout_problems`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from collapse_utils.paper import drawing as D
from collapse_utils.paper import figures
from collapse_utils.paper import plotting as P

# Two seeds for the size sweep (shared by F2, F3, F4, F14, F17); the other figures at the smoke preset's one seed.
TWO_SEEDS = {"F2", "F3", "F4", "F14", "F17"}
FIGURE_IDS = sorted(P.PLOTTERS, key=lambda f: int(f[1:]))
STANDARD_WIDTHS = (D.ONE_COLUMN, D.TWO_COLUMNS)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> dict[str, figures.FigureRuns]:
    root = tmp_path_factory.mktemp("layout")
    out = {}
    for fig in FIGURE_IDS:
        extra = {"seeds": [0, 1]} if fig in TWO_SEEDS else {}
        out[fig] = figures.figure_runs(fig, "smoke", run_root=str(root / "runs"), fig_dir=str(root / "unused"),
                                       fid_samples=8, workers=1, **extra)
    return out


def _draw(fr: figures.FigureRuns, fig_dir) -> D.FigureOutput:
    return P.PLOTTERS[fr.figure](fr.runs, fig_dir, **fr.plot_options)


def test_the_checker_finds_text_outside_and_overlapping():
    """The check itself can fail: a label running off the canvas and two texts on one spot are both reported."""
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_ylabel("a very long axis label that cannot fit on a two-inch figure at all, whatever the layout")
    ax.text(0.5, 0.5, "one", transform=ax.transAxes)
    ax.text(0.5, 0.5, "two", transform=ax.transAxes)
    problems = D.text_layout_problems(fig)
    plt.close(fig)
    assert any("extends outside the figure" in p for p in problems)
    assert any("'one' overlaps" in p and "'two'" in p for p in problems)


@pytest.mark.parametrize("figure_id", FIGURE_IDS)
def test_figure_layout(smoke_runs, tmp_path, figure_id):
    out = _draw(smoke_runs[figure_id], tmp_path)
    fig = out.fig
    problems = D.text_layout_problems(fig)
    assert not problems, f"{figure_id}:\n" + "\n".join(problems)
    width, height = fig.get_size_inches()
    assert any(abs(width - w) < 0.01 for w in STANDARD_WIDTHS), f"{figure_id} is {width:.2f} in wide"
    assert 0.25 <= height / width <= 1.5, f"{figure_id} is {width:.2f} × {height:.2f} in"
    # the files keep the figure's size at the fixed resolution
    png = plt.imread(out.files["png"])
    assert abs(png.shape[1] - width * D.DPI) <= 1 and abs(png.shape[0] - height * D.DPI) <= 1, png.shape
    # readable in print: no text below 7 pt, no axis label longer than a short phrase
    for kind, text in D.figure_texts(fig):
        assert text.get_fontsize() >= 7 - 1e-9, (figure_id, kind, text.get_text(), text.get_fontsize())
        if kind in ("x label", "y label"):
            assert len(text.get_text()) <= 40, (figure_id, text.get_text())
    if figure_id in ("F2", "D1"):  # grey digits: the real-referenced metrics in LeNet space beside pixels
        assert {"rho_pixel", "rho_lenet", "copy_rate_real_lenet", "contraction_lenet"} <= set(out.data["metric"])
    # the number of seeds is said
    title = " ".join(fig._suptitle.get_text().split())
    assert "seed" in title, title


def test_redrawing_gives_the_same_files(smoke_runs, tmp_path):
    first = _draw(smoke_runs["F2"], tmp_path / "a")
    second = _draw(smoke_runs["F2"], tmp_path / "b")
    for kind in ("png", "pdf", "csv"):
        assert first.files[kind].read_bytes() == second.files[kind].read_bytes(), kind


def test_f17_labels_seeds_and_sizes(smoke_runs, tmp_path):
    """F17 is a grid of generations × sizes of one seed; the title says which seed of how many."""
    fr = smoke_runs["F17"]
    out = _draw(fr, tmp_path)
    sizes = sorted({r.config.n for r in fr.runs})
    gens = max(len(r.generations) for r in fr.runs)
    images = [ax for ax in out.fig.axes if ax.get_visible() and ax.images]
    assert len(images) == len(sizes) * min(gens, 6)
    title = " ".join(out.fig._suptitle.get_text().split())
    assert "seed 0" in title and "2 seeds" in title, title
    ylabels = [ax.get_ylabel() for ax in images if ax.get_ylabel()]
    assert [f"n = {n:,}" for n in sizes] == [y.split("\n")[0] for y in ylabels]


def test_f11_table_names_its_distance(smoke_runs, tmp_path):
    fr = smoke_runs["F11"]
    out = _draw(fr, tmp_path)
    heads = [t.get_text() for ax in out.fig.axes for tab in ax.tables for (row, _), cell in tab.get_celld().items()
             if row == 0 for t in [cell.get_text()]]
    assert any("FD_LeNet" in h for h in heads), heads
    assert not any(h.startswith("FID") for h in heads), heads
    assert any("Inception FID" in h for h in heads), heads  # the paper's column says what it is


def test_demo_selection_figure_layout(smoke_runs, tmp_path):
    from collapse_utils.paper.demo import plot_selection

    runs = [r for r in smoke_runs["F7"].runs if r.config.paradigm == "replace" or r.config.selection == "none"]
    out = plot_selection(runs, tmp_path)
    assert not D.text_layout_problems(out.fig)
    assert abs(out.fig.get_figwidth() - D.TWO_COLUMNS) < 0.01


def test_every_figure_has_its_plotting_function():
    """One registry of plotting functions serves the layout checks and the bundle's redraw."""
    from collapse_utils.paper.results import plot_function

    assert set(P.PLOTTERS) == set(figures.SPECS)
    assert all(plot_function(f) is getattr(P, f"plot_{f.lower()}") for f in figures.SPECS)
