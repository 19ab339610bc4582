"""The paper's experiments as lists of run configurations, per preset.

Figures ask for runs through these functions, and the run store (store.py) trains each distinct
configuration once: F2, F3, F4, F14 and F17 share :func:`size_sweep`; F7–F10 share :func:`selection_grid`;
F12, F13 and F11 add only the runs they alone need.

Scale per preset (``presets.SCALES``): ``smoke`` for tests (seconds), ``demo`` for a 2-core CPU (minutes, bundled
8×8 MNIST), ``paper`` for the authors' settings on a GPU (PAPER.md §5).
"""

from __future__ import annotations

from typing import Any, Iterable

from ..core.config import RunConfig, make_config
from ..core.presets import PAPER_DATASET_OVERRIDES, scale


def _config(preset: str, dataset: str, **overrides: Any) -> RunConfig:
    values: dict[str, Any] = {"dataset": dataset}
    if preset == "paper":
        values.update(PAPER_DATASET_OVERRIDES.get(dataset, {}))
    values.update(scale(preset).overrides)
    values.update(overrides)
    return make_config(preset, **values)


def size_sweep(
    preset: str,
    *,
    dataset: str | None = None,
    sizes: Iterable[int] | None = None,
    generations: int | None = None,
    seeds: Iterable[int] = (0,),
    paradigm: str = "replace",
    **overrides: Any,
) -> list[RunConfig]:
    """Section 3: vanilla runs at several dataset sizes (F2, F3, F4, F14, F17)."""
    s = scale(preset)
    return [
        _config(preset, dataset or s.sweep_dataset, n=n, generations=generations or s.sweep_generations,
                paradigm=paradigm, selection="none", seed=seed, **overrides)
        for seed in seeds for n in (sizes or s.sweep_sizes)
    ]


def selection_grid(
    preset: str,
    *,
    datasets: Iterable[str] | None = None,
    paradigms: Iterable[str] = ("replace", "accumulate_subsample"),
    methods: Iterable[str] = ("none", "threshold", "greedy"),
    feature_space: str | None = None,
    n: int | None = None,
    generations: int | None = None,
    seeds: Iterable[int] = (0,),
    **overrides: Any,
) -> list[RunConfig]:
    """Sections 4–5: vanilla vs Threshold Decay Filter vs Greedy under replace and accumulate (F7–F10, F15)."""
    s = scale(preset)
    out = []
    for dataset in datasets or s.selection_datasets:
        for paradigm in paradigms:
            for method in methods:
                for seed in seeds:
                    out.append(_config(
                        preset, dataset, n=n or s.selection_n.get(dataset, s.selection_n[s.selection_datasets[0]]),
                        generations=generations or s.selection_generations, paradigm=paradigm, selection=method,
                        feature_space=feature_space or s.feature_space, seed=seed, **overrides,
                    ))
    return out


# D.5's share of new real images in each later training set (the rest: the previous generation's samples). The
# appendix's text was not retrieved (PAPER.md §8), so the fraction is ours: half fresh, half synthetic.
FRESH_FRACTION = 0.5


def fresh_comparison(preset: str, *, dataset: str | None = None, n: int | None = None,
                     paradigms: Iterable[str] = ("replace", "accumulate_subsample", "fresh"),
                     feature_space: str | None = None, generations: int | None = None, seeds: Iterable[int] = (0,), **overrides: Any) -> list[RunConfig]:
    """Appendix D.5 "Self-consuming Loop with Fresh New Data" (PAPER.md §1): vanilla runs at the selection size
    under ``paradigms``. Replace and accumulate-subsample are the vanilla runs of :func:`selection_grid` (shared
    with F7–F9); ``fresh`` trains each later generation on :data:`FRESH_FRACTION` · n new real images plus the
    rest from the previous generation's samples (collapse_utils.loop.paradigms)."""
    out = []
    for paradigm in paradigms:
        extra = dict(fresh_fraction=FRESH_FRACTION) if paradigm == "fresh" else {}
        out += selection_grid(preset, datasets=[dataset] if dataset else None, paradigms=(paradigm,), methods=("none",),
                              feature_space=feature_space, n=n, generations=generations, seeds=seeds, **extra, **overrides)
    return out


def ablation_2n(preset: str, *, dataset: str | None = None, methods: Iterable[str] = ("none", "threshold", "greedy"),
                feature_space: str | None = None, n: int | None = None, generations: int | None = None,
                seeds: Iterable[int] = (0,), **overrides: Any) -> list[RunConfig]:
    """Appendix C.1 (F12): replace with N, with 2N unselected images, and N selected from 2N."""
    base = selection_grid(preset, datasets=[dataset] if dataset else None, paradigms=("replace",), methods=methods,
                          feature_space=feature_space, n=n, generations=generations, seeds=seeds, **overrides)
    vanilla = [c for c in base if c.selection == "none"]
    return base + [c.replace(paradigm="replace_2n") for c in vanilla]


def ablation_decay(preset: str, *, dataset: str | None = None, decays: Iterable[float] | None = None,
                   feature_space: str | None = None, n: int | None = None, generations: int | None = None,
                   seeds: Iterable[int] = (0,), **overrides: Any) -> list[RunConfig]:
    """F13: accumulate with the Threshold Decay Filter at several decay factors, plus vanilla and Greedy."""
    grid = dict(datasets=[dataset] if dataset else None, paradigms=("accumulate_subsample",),
                feature_space=feature_space, n=n, generations=generations, seeds=seeds, **overrides)
    base = selection_grid(preset, methods=("none", "greedy"), **grid)
    template = selection_grid(preset, methods=("threshold",), **grid)
    return base + [c.replace(decay=d) for c in template for d in (decays or scale(preset).decays)]


def guidance_experiment(preset: str, *, dataset: str | None = None, n: int | None = None, generations: int | None = None,
                   guidance_scale: float = 2.0, selection: str = "threshold", class_selection: str = "per_class",
                   feature_space: str | None = None, paradigm: str = "accumulate_subsample",
                   seeds: Iterable[int] = (0,), **overrides: Any) -> list[RunConfig]:
    """F11 (PAPER.md §5 "MNIST CFG experiment"): three runs on ``dataset`` (default MNIST) under ``paradigm``
    (accumulate, as [PN]'s FID table), each ``generations`` long:

    1. unconditional, no selection (the same configuration as the vanilla accumulate run of
       :func:`selection_grid` when n and generations agree, so the run store trains it once);
    2. class-conditional with classifier-free guidance ``guidance_scale`` (w = 2, the paper's scale), no selection;
    3. the same with ``selection`` (default the Threshold Decay Filter, [PN]'s "CFG + Threshold Decay Filter")
       in ``feature_space`` (default the preset's), per class (``class_selection``, see RunConfig).

    Label dropout is RunConfig's default 0.1. ``guidance_scale`` and ``class_selection`` are set on the
    conditional runs only, so the unconditional run keeps the key it shares with other figures;
    ``overrides`` go to every run.
    """
    s = scale(preset)
    common = dict(n=n or s.guidance_n, generations=generations or s.guidance_generations, paradigm=paradigm, **overrides)
    cond = dict(conditional=True, guidance_scale=guidance_scale)
    out = []
    for seed in seeds:
        out.append(_config(preset, dataset or s.guidance_dataset, selection="none", seed=seed, **common))
        out.append(_config(preset, dataset or s.guidance_dataset, selection="none", seed=seed, **cond, **common))
        out.append(_config(preset, dataset or s.guidance_dataset, selection=selection, class_selection=class_selection,
                           feature_space=feature_space or s.feature_space, seed=seed, **cond, **common))
    return out
