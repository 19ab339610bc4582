"""Write one papermill notebook per paper figure (``notebooks/F*.ipynb``) from ``collapse_utils.paper.figures.SPECS``.

Every notebook has the same shape, so they stay consistent:

1. a title cell with the "Open in Colab" badge (its address from pyproject.toml's ``[project.urls]``);
2. the figure's notes: what it plots, the paper's finding (docs/PAPER.md), what to expect at demo and paper
   scale and the runtime of each preset (``collapse_utils.paper.figure_notes.NOTES``);
3. the setup cell: where the package is not importable (a fresh Colab runtime) it clones the repository and
   ``pip install -e``'s it; on Colab it can keep the run store on Google Drive (elsewhere it only reports);
4. the ``parameters`` cell (papermill) — preset, dataset, sizes, generations, paradigms, methods, feature space,
   seeds, device, run root, figure directory, workers, plus the figure's own options, with their defaults and
   comments from ``collapse_utils.paper.figures.PARAMETERS`` (the one table of notebook parameters);
5. one call into the package that returns (or trains, then reuses) the figure's runs with their metrics;
6. one plotting call, which writes ``<fig_dir>/<FIG>.png/.pdf/.csv``, then displays the figure and its numbers.

Run ``python notebooks/make_notebooks.py`` after changing ``SPECS``, pyproject.toml's ``Repository`` or this file
(tests check the notebooks are up to date); it also rewrites the Colab tables of README.md and notebooks/README.md
and CITATION.cff's ``repository-code``. A figure that needs other calls can follow the same pattern: copy ``notebook_for`` with its own calls.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from collapse_utils.paper.figure_notes import NOTES, RUNTIME_SOURCES, SMOKE_RUNTIME, runtime  # noqa: E402
from collapse_utils.paper.figures import PARAMETERS, SPECS, FigureSpec  # noqa: E402

ROOT = HERE.parent
PYPROJECT = ROOT / "pyproject.toml"
# The branch the "Open in Colab" links open (the repository's default branch).
BRANCH = "main"
# A repository address with this owner is the placeholder pyproject.toml ships with: a fork sets its own.
PLACEHOLDER_OWNER = "OWNER"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# The Colab tables of README.md and notebooks/README.md lie between these two lines (rewritten by this script).
TABLE_START = "<!-- colab-links: written by notebooks/make_notebooks.py from pyproject.toml; do not edit by hand -->"
TABLE_END = "<!-- /colab-links -->"
READMES = (ROOT / "README.md", HERE / "README.md")
CITATION = ROOT / "CITATION.cff"


def repository_url(pyproject: Path = PYPROJECT) -> str:
    """``Repository`` of pyproject.toml's ``[project.urls]``: the one place the repository's address is written.

    Every link to the repository that the notebooks carry (the Colab badge, the clone their setup cell makes) is
    built from it, so a fork changes one line and rebuilds the notebooks.
    """
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli if present, else the one key read by hand
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            tomllib = None
    if tomllib is not None:
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")
    else:
        section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = section and re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M)
        url = found.group(1) if found else None
    if not url:
        raise ValueError(f"{pyproject} has no Repository under [project.urls]: add the repository's address there")
    return url.rstrip("/").removesuffix(".git")


def github_path(repo_url: str) -> str:
    """``owner/name`` of a GitHub address; Colab opens notebooks from GitHub only."""
    found = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", repo_url)
    if not found:
        raise ValueError(f"Repository {repo_url!r} in pyproject.toml is not a https://github.com/OWNER/NAME address: "
                         "Colab's 'Open in Colab' links need one")
    return found.group(1)


def colab_url(figure: str, repo_url: str) -> str:
    """The address that opens ``notebooks/<figure>.ipynb`` of the repository in Google Colab."""
    return f"https://colab.research.google.com/github/{github_path(repo_url)}/blob/{BRANCH}/notebooks/{figure}.ipynb"


def colab_badge(figure: str, repo_url: str) -> str:
    return f"[![Open In Colab]({COLAB_BADGE})]({colab_url(figure, repo_url)})"


# The notebooks' first code cell. It cannot live in the package: it is what installs the package. ``{repo_url}`` and
# ``{placeholder}`` are filled in by make_notebooks.py.
SETUP_CELL = """\
# Setup. Where collapse_utils is importable (a local checkout, `pip install -e .`) this cell only reports it.
# Where it is not (a fresh Google Colab runtime) it clones the repository and installs it with
# `pip install -e '<clone>[dino]'`: the dependencies come from PyPI, the torch already installed stays (Colab's
# CUDA build); torch is not pinned. Environment variables: COLLAPSE_REPO_URL clones another address or a local
# path; COLLAPSE_REPO is the folder of the clone (default /content/model-collapse-repro on Colab).
MOUNT_DRIVE = None  # None: on Colab only. True: mount Google Drive and keep the run store there ($COLLAPSE_RUNS),
                    # so a session that disconnects resumes from the finished work. False: never.
import importlib, importlib.util, os, subprocess, sys

REPO_URL = os.environ.get("COLLAPSE_REPO_URL", "{repo_url}")  # pyproject.toml [project.urls] Repository
ON_COLAB = "google.colab" in sys.modules


def _run(*cmd):
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
    if done.returncode:
        raise RuntimeError(f"`{{' '.join(cmd)}}` failed:\\n{{(done.stderr or done.stdout)[-3000:]}}")


if importlib.util.find_spec("collapse_utils") is None:
    repo = os.path.abspath(os.environ.get("COLLAPSE_REPO") or
                           ("/content/model-collapse-repro" if ON_COLAB else "model-collapse-repro"))
    if not os.path.isfile(os.path.join(repo, "pyproject.toml")):
        if "/{placeholder}/" in REPO_URL:
            raise RuntimeError(f"{{REPO_URL}} is the placeholder address: set Repository in pyproject.toml "
                               "[project.urls] and run notebooks/make_notebooks.py, or set "
                               "os.environ['COLLAPSE_REPO_URL'] to the repository's address before this cell")
        print(f"collapse_utils is not installed: cloning {{REPO_URL}} into {{repo}}")
        _run("git", "clone", "--depth", "1", "--quiet", REPO_URL, repo)
    print(f"installing {{repo}} (pip install -e; a minute or two on a fresh Colab runtime)")
    _run(sys.executable, "-m", "pip", "install", "--quiet", "--editable", f"{{repo}}[dino]")
    sys.path.insert(0, repo)  # this kernel started before the install: make the package visible to it now
    importlib.invalidate_caches()
    os.chdir(repo)  # as the batch command runs the notebooks: from the repository's root
    import collapse_utils

    print("installed: collapse_utils from", os.path.dirname(os.path.abspath(collapse_utils.__file__)))
else:
    print("collapse_utils is importable: nothing to install")
if MOUNT_DRIVE is None:
    MOUNT_DRIVE = ON_COLAB
if MOUNT_DRIVE:
    from google.colab import drive  # only on Colab

    drive.mount("/content/drive")
    os.environ.setdefault("COLLAPSE_RUNS", "/content/drive/MyDrive/model-collapse-runs")
    print("run store (run_root=None):", os.environ["COLLAPSE_RUNS"])"""


def setup_source(repo_url: str) -> str:
    """The setup cell with the repository's address filled in."""
    return SETUP_CELL.format(repo_url=repo_url, placeholder=PLACEHOLDER_OWNER)


def colab_table(repo_url: str) -> str:
    """The markdown table of every figure notebook with its "Open in Colab" link."""
    rows = ["| figure | open in Colab | what it shows |", "|---|---|---|"]
    for spec in SPECS.values():
        rows.append(f"| {spec.id} | {colab_badge(spec.id, repo_url)} | {spec.title} |")
    return "\n".join(rows)


def readme_with_table(text: str, table: str, name: str = "README") -> str:
    """``text`` with the block between :data:`TABLE_START` and :data:`TABLE_END` replaced by ``table``."""
    if text.count(TABLE_START) != 1 or text.count(TABLE_END) != 1:
        raise ValueError(f"{name} needs exactly one pair of lines {TABLE_START} … {TABLE_END}")
    head, rest = text.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    return f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}"


def citation_with_repository(text: str, repo_url: str) -> str:
    """CITATION.cff's text with its ``repository-code`` set to ``repo_url``."""
    new, count = re.subn(r'^repository-code: .*$', f'repository-code: "{repo_url}"', text, flags=re.M)
    if count != 1:
        raise ValueError("CITATION.cff needs exactly one top-level repository-code line")
    return new


def write_readme_tables(repo_url: str | None = None) -> list[Path]:
    """The Colab tables of both READMEs and CITATION.cff's repository address, from ``repo_url``."""
    repo_url = repo_url or repository_url()
    table = colab_table(repo_url)
    for path in READMES:
        path.write_text(readme_with_table(path.read_text(encoding="utf-8"), table, path.name), encoding="utf-8")
    CITATION.write_text(citation_with_repository(CITATION.read_text(encoding="utf-8"), repo_url), encoding="utf-8")
    return [*READMES, CITATION]


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
        "from collapse_utils.paper import figures, plotting\n\n"
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
    (``collapse_utils.paper.figure_notes.NOTES``, the one place this text lives; the runtimes' counts come from the figure's
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


def notebook_for(spec: FigureSpec, repo_url: str | None = None) -> nbformat.NotebookNode:
    """The notebook of one figure; ``repo_url`` defaults to pyproject.toml's ``Repository``."""
    repo_url = repo_url or repository_url()
    params = spec.parameters()
    title = (
        f"{colab_badge(spec.id, repo_url)}\n\n"
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
        new_code_cell(setup_source(repo_url)),
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


# ---------------------------------------------------------------------------------------------- explore_selection
# A notebook that is no paper figure: its name is no figure id (batch.is_figure_notebook), so the figure batch
# never runs it. It shows how a selection method of one's own plugs in (collapse_utils.core.methods).
EXPLORE = "explore_selection"

EXPLORE_TITLE = """\
{badge}

# Exploring a selection method of your own

The paper's remedy for collapse is *selection*: each generation trains on n images picked from a larger candidate
pool so that the training set stays diverse (`docs/PAPER.md` §4: Greedy Selection, Algorithm 1; Threshold Decay
Filter, Algorithm 2). This notebook plugs in a new method and compares it with vanilla, Greedy and TDF at the
preset's scale and seeds, through the shared run store (the vanilla / Greedy / TDF runs are those of F7–F10).

The method lives in a small module file that the notebook writes next to the run store, and is named by its import
path `module:function`: the run store's worker processes import it from there, and the sha256 of that file is part
of the run key, so editing the method trains new runs instead of reusing stale ones. The function gets the pool's
features in the run's feature space ((N, D) floats; pixel space: 0–255 values) and returns n distinct indices
(`collapse_utils/core/methods.py` documents the contract and the `@selection_method` decorator).

Not a paper figure: `python -m collapse_utils figures` does not run it. Papermill:
`papermill notebooks/explore_selection.ipynb out.ipynb -p preset smoke`."""

EXPLORE_PARAMETERS = """\
preset = "demo"        # scale: smoke (seconds), demo (minutes on a CPU), paper (GPU days)
dataset = None         # None: the preset's selection dataset
paradigm = "replace"   # replace or accumulate_subsample (docs/PAPER.md §4.4)
feature_space = None   # where every method compares images; None: the preset's (pixel at smoke/demo scale)
n = None               # images per training set; None: the preset's selection size
generations = None     # None: the preset's selection generations
seeds = None           # None: the preset's seeds; the verdicts need at least 2
device = None          # torch device; None: CUDA when available
run_root = None        # the run store; None: $COLLAPSE_RUNS or <repo>/runs
fig_dir = "figures"    # where explore_selection.png/.csv are written
workers = 1            # runs trained in parallel (spawned workers import the method by its path)
method_module = "explore_selection_methods"  # the module file written next to the run store
method_name = "kmeanspp"                     # the function in it that is the new method"""

EXPLORE_METHOD = '''\
# The new method: k-means++ seeding (D² sampling, Arthur & Vassilvitskii 2007) as a selection method. Like Greedy
# Selection (farthest-point sampling) it spreads the picks out, but it draws each next point at random with
# probability proportional to its squared distance to the picks so far instead of taking the farthest one, so it
# is less drawn to outliers. Edit METHOD_SOURCE and re-run: the changed file gets new run keys, so new runs.
import pathlib
import sys

from collapse_utils.core.paths import default_run_root

METHOD_SOURCE = """\\
# A selection method of one's own for notebooks/explore_selection.ipynb (written by the notebook).
import numpy as np

from collapse_utils.core.methods import selection_method


@selection_method(label="k-means++ seeding", short="k-means++")
def kmeanspp(features, n, *, seed=0):
    # n distinct indices: the first uniformly at random, each next one with probability proportional to its
    # squared distance to the nearest point picked so far (picked points have distance 0).
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    rng = np.random.default_rng(seed)
    picked = [int(rng.integers(len(x)))]
    d2 = ((x - x[picked[0]]) ** 2).sum(1)
    d2[picked[0]] = 0.0
    while len(picked) < n:
        total = d2.sum()
        if total > 0:
            i = int(rng.choice(len(x), p=d2 / total))
        else:  # only duplicates of picked points are left: the first one not picked
            i = int(np.flatnonzero(~np.isin(np.arange(len(x)), picked))[0])
        picked.append(i)
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(1))
        d2[i] = 0.0
    return np.array(picked, dtype=np.int64)
"""

root = pathlib.Path(run_root) if run_root else default_run_root()
method_dir = root / "_methods"  # next to the run store, where every worker and kernel can import it
method_dir.mkdir(parents=True, exist_ok=True)
method_file = method_dir / f"{method_module}.py"
if not method_file.exists() or method_file.read_text() != METHOD_SOURCE:
    method_file.write_text(METHOD_SOURCE)
if str(method_dir) not in sys.path:
    sys.path.insert(0, str(method_dir))  # spawned workers get this sys.path too
METHOD = f"{method_module}:{method_name}"
print("new method:", METHOD, "in", method_file)'''

EXPLORE_RUNS = """\
from collapse_utils.core.methods import label_of
from collapse_utils.core.presets import scale
from collapse_utils.loop.experiments import selection_grid
from collapse_utils.loop.store import ensure_runs

ARMS = {"vanilla": "none", "Greedy": "greedy", "TDF": "threshold", "new": METHOD}
seeds = list(seeds) if seeds is not None else list(scale(preset).seeds)
configs = selection_grid(preset, datasets=[dataset] if dataset else None, paradigms=[paradigm],
                         methods=list(ARMS.values()), feature_space=feature_space, n=n, generations=generations,
                         seeds=seeds, **({"device": device} if device else {}))
runs = ensure_runs(configs, root, workers=workers)
by_arm = {arm: [r for r in runs if r.config.selection == method] for arm, method in ARMS.items()}
for arm, rs in by_arm.items():
    print(f"{arm:8s} {label_of(ARMS[arm]):24s}", ", ".join(r.run_dir.name for r in rs))"""

EXPLORE_CURVES = """\
import matplotlib.pyplot as plt
import pandas as pd

from collapse_utils.core.methods import colour_of
from collapse_utils.measure.features import pixel_features
from collapse_utils.measure.metrics import frechet_distance


def fd_pixel(run, g):
    # FD-style: the Fréchet distance between generation g's samples and the run's real images, in pixel space.
    return frechet_distance(pixel_features(run.generations[g - 1].samples), pixel_features(run.real_images()))


rows = []
for arm, rs in by_arm.items():
    for r in rs:
        for g in r.generations:
            rows.append(dict(arm=arm, seed=r.config.seed, generation=g.generation, run=r.run_dir.name,
                             gs_pixel=g.metrics["gs_pixel"], entropy_pixel=g.metrics["entropy_pixel"],
                             fd_pixel=fd_pixel(r, g.generation)))
table = pd.DataFrame(rows)
pathlib.Path(fig_dir).mkdir(parents=True, exist_ok=True)
table.to_csv(pathlib.Path(fig_dir) / "explore_selection.csv", index=False)

panels = {"gs_pixel": "Generalization score (pixel) ↑", "entropy_pixel": "Training-set entropy (pixel) ↑",
          "fd_pixel": "FD to the real images (pixel) ↓"}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, (metric, title) in zip(axes, panels.items()):
    for arm, sub in table.groupby("arm", sort=False):
        stats = sub.groupby("generation")[metric].agg(["mean", "std"]).fillna(0.0)
        ax.plot(stats.index, stats["mean"], marker="o", label=label_of(ARMS[arm]), color=colour_of(ARMS[arm]),
                linestyle="--" if arm == "vanilla" else "-")
        ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                        color=colour_of(ARMS[arm]), alpha=0.15)
    ax.set_title(title)
    ax.set_xlabel("Generation")
axes[0].legend(fontsize=8)
fig.suptitle(f"{label_of(METHOD)} vs vanilla, Greedy and TDF ({paradigm}, preset {preset}, {len(seeds)} seed(s))")
fig.tight_layout()
fig.savefig(pathlib.Path(fig_dir) / "explore_selection.png", dpi=120)
plt.show()"""

EXPLORE_VERDICTS = """\
# Claims-style verdicts (the claims table's rule, collapse_utils.paper.claims): per seed, the paired effect
# d = new − X at the last generation (for the FD, X − new: lower is better); "holds" when the mean of d exceeds
# 2 standard errors, "does not hold" when it is below −2 se, else "not resolved" (one seed never resolves).
from collapse_utils.paper.claims import summarize, verdict

last = table[table["generation"] == table["generation"].max()].set_index(["arm", "seed"])
lines = []
for metric, better in (("gs_pixel", "higher"), ("entropy_pixel", "higher"), ("fd_pixel", "lower")):
    for other in ("vanilla", "Greedy", "TDF"):
        d = [float(last.loc[("new", s), metric] - last.loc[(other, s), metric]) * (1 if better == "higher" else -1)
             for s in seeds]
        st = summarize(d)
        lines.append(dict(claim=f"the new method keeps {metric} {better} than {other}",
                          effect=f"{st.mean:+.4g} ± {st.sd:.3g} (k = {st.k})", verdict=verdict(d)))
verdicts = pd.DataFrame(lines)
print(verdicts.to_string(index=False))"""


def explore_notebook(repo_url: str | None = None) -> nbformat.NotebookNode:
    """notebooks/explore_selection.ipynb: a selection method of one's own against vanilla, Greedy and TDF."""
    repo_url = repo_url or repository_url()
    cells = [
        new_markdown_cell(EXPLORE_TITLE.format(badge=colab_badge(EXPLORE, repo_url))),
        new_code_cell(setup_source(repo_url)),
        new_code_cell(EXPLORE_PARAMETERS, metadata={"tags": ["parameters"]}),
        new_code_cell(EXPLORE_METHOD),
        new_code_cell(EXPLORE_RUNS),
        new_code_cell(EXPLORE_CURVES),
        new_code_cell(EXPLORE_VERDICTS),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"explore-{i}"
    nb = new_notebook(cells=cells)
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       language_info={"name": "python"})
    return nb


def write_all(out_dir: Path = HERE) -> list[Path]:
    repo_url = repository_url()
    paths = []
    for spec in SPECS.values():
        path = out_dir / f"{spec.id}.ipynb"
        nbformat.write(notebook_for(spec, repo_url), path)
        paths.append(path)
    path = out_dir / f"{EXPLORE}.ipynb"
    nbformat.write(explore_notebook(repo_url), path)
    return [*paths, path]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for p in write_all(args.out):
        print(p)
    if args.out == HERE:  # the READMEs' Colab tables go with the committed notebooks
        for p in write_readme_tables():
            print(p)
