"""The notebooks open and run in Google Colab, and the repository says how to cite and license it.

Colab opens a notebook straight from GitHub into a runtime that has torch but not this package. So every notebook
carries an "Open in Colab" badge whose address is built from the one place the repository's address is written
(pyproject.toml's ``[project.urls]`` ``Repository``), and its first code cell, the setup cell, installs the package
when it is missing: it clones the repository and runs ``pip install -e``. Where the package is importable the
cell installs nothing.

The install is tested here for real, in a fresh environment built without downloading torch: a new virtual
environment whose only link to the test environment is a path file naming a folder of links to the test
environment's installed distributions, this package's own left out. torch, papermill and the rest import there;
``collapse_utils`` does not, and pip sees the dependencies as installed. A Jupyter kernel of that environment runs
F4 at smoke scale with the setup cell pointed (``COLLAPSE_REPO_URL``) at this checkout: the cell must clone it,
install it offline (no index, no build isolation) and draw the figure, after which the package imports from the
clone in a new process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*(ROOT / "notebooks").glob("F*.ipynb"), *(ROOT / "notebooks").glob("D*.ipynb")])
COLAB_PREFIX = "https://colab.research.google.com/github/"


def pyproject_repository() -> str:
    """``Repository`` under ``[project.urls]`` of pyproject.toml, read here independently of make_notebooks.py."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        return re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M).group(1)
    return tomllib.loads(text)["project"]["urls"]["Repository"]


def colab_links(text: str) -> list[str]:
    return re.findall(r"\((https://colab\.research\.google\.com/github/[^)\s]+)\)", text)


def setup_cell(nb) -> str:
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    return code[0]


# --- badges and the one address ---------------------------------------------------------------------------------

def test_pyproject_names_a_github_repository():
    url = pyproject_repository()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_in_colab_from_pyprojects_repository(path):
    url = pyproject_repository()
    owner_name = url.removeprefix("https://github.com/")
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("[![Open In Colab]"), "the badge opens the notebook"
    links = colab_links(first.source)
    assert links == [f"{COLAB_PREFIX}{owner_name}/blob/main/notebooks/{path.name}"], links
    # The setup cell clones the same address unless COLLAPSE_REPO_URL says otherwise.
    assert f'os.environ.get("COLLAPSE_REPO_URL", "{url}")' in setup_cell(nb)
    # No other cell names another repository address.
    every = "\n".join(c.source for c in nb.cells)
    others = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", every)) - {url}
    assert not others, others


@pytest.mark.parametrize("readme", ["README.md", "notebooks/README.md"])
def test_readme_colab_table_links_every_notebook_at_pyprojects_repository(readme):
    owner_name = pyproject_repository().removeprefix("https://github.com/")
    text = (ROOT / readme).read_text(encoding="utf-8")
    expected = {f"{COLAB_PREFIX}{owner_name}/blob/main/notebooks/{p.name}" for p in NOTEBOOKS}
    found = colab_links(text)
    assert set(found) == expected and len(found) == len(expected), \
        f"{readme}'s Colab table is stale: run python notebooks/make_notebooks.py"


def test_the_readme_tables_are_the_ones_make_notebooks_writes():
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(ROOT / "notebooks"))
    table = make_notebooks.colab_table(make_notebooks.repository_url())
    for readme in make_notebooks.READMES:
        text = readme.read_text(encoding="utf-8")
        assert make_notebooks.readme_with_table(text, table) == text, f"{readme.name}: run notebooks/make_notebooks.py"
    citation = make_notebooks.CITATION.read_text(encoding="utf-8")
    assert make_notebooks.citation_with_repository(citation, make_notebooks.repository_url()) == citation
    with pytest.raises(ValueError, match="not a https://github.com/OWNER/NAME address"):
        make_notebooks.colab_url("F2", "https://gitlab.com/someone/model-collapse-repro")


def test_setup_cell_installs_nothing_where_the_package_is_importable(tmp_path):
    """Run as a script by this environment's Python, where collapse_utils imports: no clone, no pip, no chdir."""
    source = setup_cell(nbformat.read(ROOT / "notebooks" / "F4.ipynb", as_version=4))
    env = {**os.environ, "COLLAPSE_REPO_URL": str(tmp_path / "nowhere"), "COLLAPSE_REPO": str(tmp_path / "clone"),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", source + "\nprint('cwd', os.getcwd())"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nothing to install" in done.stdout
    assert f"cwd {tmp_path}" in done.stdout
    assert not (tmp_path / "clone").exists()


def test_setup_cell_says_why_it_cannot_clone(tmp_path):
    """Where the package is missing (``python -S``: no site-packages) a clone that cannot be made stops the cell
    with git's own message, and the placeholder address with what to set."""
    source = setup_cell(nbformat.read(ROOT / "notebooks" / "F4.ipynb", as_version=4))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLLAPSE_REPO_URL")}
    env["COLLAPSE_REPO"] = str(tmp_path / "clone")

    def run(**extra):
        return subprocess.run([sys.executable, "-S", "-c", source], cwd=tmp_path, env={**env, **extra},
                              capture_output=True, text=True, timeout=120)

    if "/OWNER/" in pyproject_repository():
        done = run()
        assert done.returncode != 0 and "is the placeholder address: set Repository in pyproject.toml" in done.stderr
    if shutil.which("git"):
        done = run(COLLAPSE_REPO_URL=str(tmp_path / "nowhere"))
        assert done.returncode != 0 and "git clone" in done.stderr and "failed" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "clone").exists()


# --- a fresh environment: the setup cell installs the package, then the notebook runs --------------------------

KERNEL = "collapse-fresh"
OWN_FILES = re.compile(r"^(collapse_utils|model_collapse_repro[-_].*|__editable__.*model_collapse_repro.*)$")


def _site_dirs() -> list[Path]:
    """The folders this interpreter imports installed distributions from."""
    dirs = [Path(p) for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    for key in ("purelib", "platlib"):
        path = Path(sysconfig.get_paths()[key])
        if path.is_dir() and path not in dirs:
            dirs.append(path)
    return dirs


def _fresh_environment(base: Path) -> tuple[Path, Path]:
    """A virtual environment that sees this one's dependencies but not this package; returns (python, site dir).

    ``deps/`` holds a link to every entry of this environment's site folders except this package's own files and
    the ``.pth`` files; one line naming ``deps/`` in a ``.pth`` file of the new environment puts it on sys.path
    as a plain folder, so its contents import and pip reads their metadata, while no install hook of this
    environment runs there.
    """
    deps = base / "deps"
    deps.mkdir()
    for site_dir in _site_dirs():
        for entry in site_dir.iterdir():
            if entry.suffix == ".pth" or entry.name == "__pycache__" or OWN_FILES.match(entry.name):
                continue
            if not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    venv = base / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    (purelib / "test_environment_dependencies.pth").write_text(f"{deps}\n")
    return python, purelib


def _kernel_spec(base: Path, python: Path) -> Path:
    """A Jupyter data folder with one kernel, :data:`KERNEL`, that runs ``python``."""
    spec = base / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh environment", "language": "python"}))
    return base / "jupyter"


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would make the package importable or point pip elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "COLLAPSE_RUNS", "COLLAPSE_REPO",
                        "COLLAPSE_REPO_URL", "JUPYTER_PATH") and not k.startswith("PIP_")}
    return {**env, **extra}


@pytest.mark.slow
def test_a_fresh_environment_installs_the_package_and_runs_a_notebook(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the setup cell clones with git")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: there is no repository to clone")
    started = time.monotonic()
    python, purelib = _fresh_environment(tmp_path)
    clone, work = tmp_path / "clone", tmp_path / "work"
    work.mkdir()
    env = _clean_env(
        JUPYTER_PATH=str(_kernel_spec(tmp_path, python)),
        COLLAPSE_REPO_URL=str(ROOT),   # the clone source: this checkout (what Colab gets from GitHub)
        COLLAPSE_REPO=str(clone),      # where the cell clones it (on Colab /content/model-collapse-repro)
        # Offline: no index, no extra links, no config file, no build isolation (setuptools is already there).
        # pip must then find every dependency installed, or fail.
        PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_NO_BUILD_ISOLATION="0",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )

    def fresh(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-c", code], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300)

    # Before: the dependencies import and have metadata, the package has neither.
    before = fresh("import importlib.metadata as m, torch, papermill, diffusers\n"
                   "print(m.version('torch'))\n"
                   "try:\n    m.version('model-collapse-repro')\nexcept m.PackageNotFoundError:\n    print('no metadata')\n"
                   "import collapse_utils")
    assert "no metadata" in before.stdout, before.stderr[-2000:]
    assert before.returncode != 0 and "No module named 'collapse_utils'" in before.stderr, before.stderr[-2000:]

    out = tmp_path / "F4_executed.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "F4.ipynb"), str(out), "-k", KERNEL,
           "--cwd", str(work), "-p", "preset", "smoke", "-p", "workers", "1",
           "-p", "run_root", str(tmp_path / "runs"), "-p", "fig_dir", str(tmp_path / "figs")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    # The setup cell cloned and installed; the notebook drew the figure with the installed package.
    executed = nbformat.read(out, as_version=4)
    setup_output = "".join(o.get("text", "") for o in executed.cells[2].outputs)
    assert f"cloning {ROOT} into {clone}" in setup_output, setup_output
    assert f"installed: collapse_utils from {clone / 'collapse_utils'}" in setup_output, setup_output
    assert (clone / ".git").is_dir() and (clone / "pyproject.toml").is_file()
    assert (tmp_path / "figs" / "F4.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "F4.csv").stat().st_size > 0

    # After: the package imports from the clone in a new process (pip's editable install, not the cell's
    # sys.path), and pip installed nothing else: every dependency was found installed.
    after = fresh("import collapse_utils, importlib.metadata as m\n"
                  "print(collapse_utils.__file__)\nprint(m.version('model-collapse-repro'))")
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout.splitlines()[0] == str(clone / "collapse_utils" / "__init__.py")
    installed = {p.name for p in purelib.glob("*.dist-info")}
    assert len(installed) == 1 and installed.pop().startswith("model_collapse_repro-"), installed
    print(f"fresh-environment notebook test: {time.monotonic() - started:.0f} s")


# --- citation and licence ---------------------------------------------------------------------------------------

CFF_REQUIRED = ("cff-version", "message", "title", "authors")  # the keys CFF 1.2.0 requires


def test_citation_cff_is_valid_yaml_with_the_required_keys():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert isinstance(cff, dict)
    missing = [k for k in CFF_REQUIRED if k not in cff]
    assert not missing, f"CITATION.cff lacks {missing}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["type"] == "software" and cff["license"] == "MIT"
    assert cff["repository-code"] == pyproject_repository()
    for person in cff["authors"]:
        assert person.get("family-names") or person.get("name"), person
    paper = cff["preferred-citation"]
    assert paper["type"] in ("conference-paper", "article")
    for key in ("title", "authors", "year"):
        assert paper.get(key), key
    assert [a["family-names"] for a in paper["authors"]] == ["Shi", "Wu", "Zhang", "Zhang", "Tao", "Qu"]
    assert any(i.get("value") == "2509.16499" or "2509.16499" in str(i.get("value")) for i in paper["identifiers"])


def test_license_is_mit_as_pyproject_says():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "the model-collapse-repro authors" in text
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_readme_bibtex_cites_the_paper_as_citation_cff_does():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bibtex\n(@inproceedings\{.*?\n\})", readme, re.S)
    assert block, "README needs a ```bibtex block with the paper's @inproceedings entry"
    entry = block.group(1)
    authors = re.search(r"author\s*=\s*\{(.*?)\},", entry, re.S).group(1).split(" and ")
    paper = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))["preferred-citation"]
    assert [a.strip() for a in authors] == [f"{a['family-names']}, {a['given-names']}" for a in paper["authors"]]
    assert f"title         = {{{paper['title']}}}" in entry and "2509.16499" in entry
    assert f"year          = {{{paper['year']}}}" in entry
