"""A fresh clone must work on any machine: nothing of one machine is committed.

A committed symbolic link (e.g. ``runs`` pointing at a folder of the machine that made it) breaks the main command
on every other machine, and an absolute path of a machine in a tracked file points nowhere elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Absolute paths that name one machine: home folders, a Windows user folder (this checkout's own folder and its
# parent are checked as well, from where the test runs).
MACHINE_PATH = re.compile(r"(?<![\w.~])(/home/[A-Za-z0-9_.-]+/|/Users/[A-Za-z0-9_.-]+/|/root/|[A-Z]:\\Users\\)")


def _tracked() -> list[tuple[str, str]]:
    """(mode, path) of every tracked file, from git's index."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-s", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    rows = []
    for entry in out.decode().split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            rows.append((meta.split()[0], path))
    return rows


def test_no_symbolic_link_is_tracked():
    links = [path for mode, path in _tracked() if mode == "120000"]
    assert not links, f"symbolic links are committed (they point at one machine's folders): {links}"


def test_no_absolute_path_of_a_machine_is_tracked():
    # the clone's own folder, its parent (sibling stores such as <parent>/runs_store) and the home folder; not a
    # parent every user shares (the sticky bit marks the temporary folders: a clone there would flag every
    # documented example of a temporary path)
    parent = ROOT.parent
    shared = parent == Path(parent.anchor) or parent.stat().st_mode & stat.S_ISVTX
    here = {str(ROOT), os.path.expanduser("~"), *(() if shared else (str(parent),))} - {"/", ""}
    hits = []
    for _, path in _tracked():
        if path == "tests/test_clone_hygiene.py":  # its own examples of what the pattern catches
            continue
        file = ROOT / path
        if not file.is_file() or file.stat().st_size > 5_000_000:
            continue
        data = file.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        text = data.decode("utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line) or any(h + "/" in line for h in here):
                hits.append(f"{path}:{lineno}: {line.strip()[:120]}")
    assert not hits, "absolute paths of one machine in tracked files:\n" + "\n".join(hits[:20])


def test_the_machine_path_pattern_catches_what_it_should():
    assert MACHINE_PATH.search("runs -> /home/alice/runs_demo")
    assert MACHINE_PATH.search('run_root = "/home/alice/runs"')
    assert MACHINE_PATH.search(r"C:\Users\bob\runs")
    assert not MACHINE_PATH.search("python -m collapse_utils figures --run-root /data/runs")
    assert not MACHINE_PATH.search("~/runs and ./home/x")
