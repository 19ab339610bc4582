"""Provenance: what a run records about the code and machine that made it (git commit, package versions, device)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The package's git commit (with ``-dirty`` when the tree has changes), or None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def installed_versions(names: Sequence[str]) -> dict[str, str | None]:
    """The installed version of each distribution in ``names`` (None where it is not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def package_versions() -> dict[str, str | None]:
    """Python, the platform and the packages a run's numbers depend on (recorded with every run)."""
    names = ["torch", "torchvision", "diffusers", "accelerate", "numpy", "scipy", "clean-fid", "transformers",
             "model-collapse-repro"]
    return {"python": sys.version.split()[0], "platform": platform.platform(), **installed_versions(names)}


def device_description(device: Any) -> str:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
