"""Write one papermill notebook per paper figure (``notebooks/F*.ipynb``) from ``collapse_utils.figures.SPECS``.

Every notebook has the same shape, so they stay consistent:

1. a title cell;
2. the figure's notes: what it plots, the paper's finding (docs/PAPER.md), what to expect at demo and paper
   scale and the runtime of each preset (``collapse_utils.figure_notes.NOTES``);
3. a cell that installs the package on Google Colab only (elsewhere it does nothing);
4. the ``parameters`` cell (papermill) — preset, dataset, sizes, generations, paradigms, methods, feature space,
   seeds, device, run root, figure directory, workers, plus the figure's own options, with their defaults and
   comments from ``collapse_utils.figures.PARAMETERS`` (the one table of notebook parameters);
5. one call into the package that returns (or trains, then reuses) the figure's runs with their metrics;
6. one plotting call, which writes ``<fig_dir>/<FIG>.png/.pdf/.csv``, then displays the figure and its numbers.

Run ``python notebooks/make_notebooks.py`` after changing ``SPECS`` or this file (tests check the notebooks are
up to date). A figure that needs other calls can follow the same pattern: copy ``notebook_for`` with its own calls.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collapse_utils.figure_notes import NOTES, RUNTIME_SOURCES, SMOKE_RUNTIME, runtime  # noqa: E402
from collapse_utils.figures import PARAMETERS, SPECS, FigureSpec  # noqa: E402

COLAB_CELL = '''\
# On Google Colab only: install this package from a clone of the repository (see notebooks/README.md).
# Elsewhere this cell does nothing.
import os, subprocess, sys

if "google.colab" in sys.modules:
    repo = os.environ.get("COLLAPSE_REPO", "/content/model-collapse-repro")
    if not os.path.isdir(repo):
        raise RuntimeError(f"Clone the repository first, e.g. `!git clone <repository URL> {repo}`")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{repo}[dino]"], check=True)
    sys.path.insert(0, repo)
    os.chdir(repo)'''


def parameters_source(params: dict[str, Any]) -> str:
    width = max(len(f"{k} = {v!r}") for k, v in params.items())
    lines = ["# Parameters (papermill overrides them; edit them here when running interactively)."]
    for k, v in params.items():
        lines.append(f"{f'{k} = {v!r}':<{width}}  # {PARAMETERS[k].help}".rstrip())
    return "\n".join(lines)


def runs_source(spec: FigureSpec, params: dict[str, Any]) -> str:
    names = [k for k in params if k != "preset"]
    args = textwrap.fill(", ".join(f"{k}={k}" for k in names), width=100, initial_indent=" " * 4,
                         subsequent_indent=" " * 4)
    return (
        "from IPython.display import Image, display\n\n"
        "from collapse_utils import figures, plotting\n\n"
        "# The figure's runs from the run store: trained only if missing, shared with the other figures.\n"
        "# Text values (papermill -p) are read as meant: sizes=\"[16,32]\", \"16,32\" or \"16\"; \"None\".\n"
        f'fr = figures.figure_runs(\n    "{spec.id}", preset,\n{args},\n)\n'
        'print(f"{len(fr.runs)} run(s) from {fr.run_root}; figure -> {fr.fig_dir}")'
    )


def plot_source(spec: FigureSpec) -> str:
    opts = [k for k in spec.options if PARAMETERS[k].role == "plot"]
    comment = f"# fr.plot_options: {', '.join(opts)} as read and checked above, and what the plot needs.\n"
    return (
        (comment if opts else "")
        + f"out = plotting.plot_{spec.id.lower()}(fr.runs, fr.fig_dir, **fr.plot_options)\n"
        "display(Image(filename=str(out.png)))\n"
        'print("written:", *sorted(str(p) for p in out.files.values()), sep="\\n  ")\n'
        "out.data"
    )


def notes_source(spec: FigureSpec) -> str:
    """The figure's notes cell: what it plots, the paper's finding, what to expect, runtime per preset
    (``collapse_utils.figure_notes.NOTES``, the one place this text lives; the runtimes' counts come from the figure's
    configurations, ``figure_notes.runtime``)."""
    n = NOTES[spec.id]
    return (
        "## About this figure\n\n"
        f"**What it plots.** {n.plots}\n\n"
        f"**What the paper found.** {n.paper_finding}\n\n"
        "**What to expect.**\n\n"
        f"- *demo* (CPU): {n.expect_demo}\n"
        f"- *paper* (GPU): {n.expect_paper}\n\n"
        "**Runtime per preset.**\n\n"
        f"- *smoke*: {SMOKE_RUNTIME}.\n"
        f"- *demo*: {runtime(spec.id, 'demo')}\n"
        f"- *paper*: {runtime(spec.id, 'paper')}\n\n"
        f"<small>{RUNTIME_SOURCES} [read-off]: read by eye from the paper's figure (about ±2% of the axis); [PN], "
        "[CARD]: third-party summaries of the paper (docs/PAPER.md §0).</small>"
    )


def notebook_for(spec: FigureSpec) -> nbformat.NotebookNode:
    """The notebook of one figure."""
    params = spec.parameters()
    title = (
        f"# {spec.id}: {spec.title}\n\n"
        "Reproduces this figure of *A Closer Look at Model Collapse: From a Generalization-to-Memorization "
        "Perspective* (NeurIPS 2025); see `docs/PAPER.md` §2 for what the paper shows.\n\n"
        "Set the parameters below and run all cells. Runs come from the shared run store, so a figure never "
        "retrains what another figure already trained. Batch: "
        f"`python -m collapse_utils figures --preset demo --only {spec.id}`. "
        "Below paper scale the figure's title says so. Plain papermill works too: "
        f"`papermill notebooks/{spec.id}.ipynb out.ipynb -p preset smoke -p sizes \"[16,32]\"` (text values such as "
        "`\"[16,32]\"`, `16,32`, `0.9` or `None` are read as meant; see `notebooks/README.md`)."
    )
    cells = [
        new_markdown_cell(title),
        new_markdown_cell(notes_source(spec)),
        new_code_cell(COLAB_CELL),
        new_code_cell(parameters_source(params), metadata={"tags": ["parameters"]}),
        new_code_cell(runs_source(spec, params)),
        new_code_cell(plot_source(spec)),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"{spec.id.lower()}-{i}"
    nb = new_notebook(cells=cells)
    nb.metadata.update(
        kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
        language_info={"name": "python"},
    )
    return nb


def write_all(out_dir: Path = HERE) -> list[Path]:
    paths = []
    for spec in SPECS.values():
        path = out_dir / f"{spec.id}.ipynb"
        nbformat.write(notebook_for(spec), path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    for p in write_all(parser.parse_args().out):
        print(p)
