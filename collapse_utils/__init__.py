"""model-collapse-repro: diffusion models trained recursively on their own samples (Shi et al., NeurIPS 2025,
"A Closer Look at Model Collapse: From a Generalization-to-Memorization Perspective"; docs/PAPER.md).

The package is five layers, each importing only those below it (and the command line, ``cli/`` and
``__main__``, on top of them, whose parsers import only torch-free parts of core)::

    paper/      the figures, the claims table, the demo, results bundles, the sweep   (commands: figures, claims, ...)
    loop/       the self-consuming loop: paradigms, selection, one run, its folder, the run store
    diffusion/  the model families, the DDPM objective and sampler, training, sampling, the diffusers pipeline
    measure/    feature spaces and the paper's metrics (entropy, generalization score, Fréchet distances)
    core/       vocabularies, presets, the run configuration and its key, datasets, devices, files

The public API, importable from here (loaded on first use, so ``import collapse_utils`` stays light)::

    from collapse_utils import make_config, run_self_consuming, load_run
    cfg = make_config("smoke", paradigm="replace", selection="greedy")
    run = run_self_consuming(cfg, "runs/try")          # resumes when the folder exists
    run.generations[-1].metrics["entropy_pixel"]
"""
from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it
_API = {
    "RunConfig": "collapse_utils.core.config",
    "make_config": "collapse_utils.core.config",
    "load_dataset": "collapse_utils.core.data",
    "run_self_consuming": "collapse_utils.loop.run",
    "load_run": "collapse_utils.loop.rundir",
    "ensure_runs": "collapse_utils.loop.store",
    "CollapsePipeline": "collapse_utils.diffusion.pipeline",
    "FAMILIES": "collapse_utils.diffusion.family",
    "get_family": "collapse_utils.diffusion.family",
    "figure_runs": "collapse_utils.paper.figures",
    "check_claims": "collapse_utils.paper.claims",
    "generation_metrics": "collapse_utils.measure.metrics",
    "selection_method": "collapse_utils.core.methods",
    "SelectionMethod": "collapse_utils.core.methods",
    "register_selection_method": "collapse_utils.core.methods",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'collapse_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
