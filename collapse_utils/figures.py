"""The figure registry: each paper figure's experiment, metrics and notebook parameters, and the notebooks' one call.

* :data:`SPECS` holds one :class:`FigureSpec` per figure of the paper (ids as in PAPER.md §2): the experiment
  function that gives its run configurations (:mod:`collapse_utils.experiments`), the metrics it plots and its own
  notebook options. :data:`PARAMETERS` is the one table of notebook parameters (name, default, meaning, and who
  takes it); the notebooks' parameters cells (``notebooks/make_notebooks.py``), :func:`figure_configs`,
  :func:`figure_runs` and the batch command (:mod:`collapse_utils.batch`) all read it.
* :data:`NOTES` (beside :data:`SPECS`) holds each figure's text for its notebook: what it plots, the paper's
  finding with the numbers docs/PAPER.md gives, what to expect at demo and paper scale, and each preset's runtime.
* :func:`figure_runs` is what every notebook calls: it turns the notebook's parameters into the figure's run
  configurations, gets them from the run store (training only what is missing,
  :func:`collapse_utils.store.ensure_runs`) and computes the metrics the figure plots but the runs lack
  (:mod:`collapse_utils.run_metrics`); parameters that arrive as text (papermill's ``-p``) are read as meant
  first (:func:`coerce_parameter`). Identical configurations are shared between figures: F2, F3, F4, F14 and
  F17 use the same replace runs; F7–F10, F12, F13 and F15 the same selection runs.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import experiments as E
from .store import default_run_root, repo_root
from .vocab import PARADIGMS, SELECTION_METHODS

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig
    from .rundir import RunResult

VANILLA = ("none",)
SELECTION_PARADIGMS = ("replace", "accumulate_subsample")
# The three arms the selection figures compare, in the paper's legend order (vocab.SELECTION_METHODS also has random).
SELECTION_ARMS = ("none", "threshold", "greedy")


# ---------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Parameter:
    """One notebook parameter: its default, its meaning (the notebook's comment) and who takes it.

    ``role``: ``config`` chooses the runs (:func:`figure_configs`); ``runs`` is where they live, how they are
    measured and where the figure goes (:func:`figure_runs`); ``plot`` goes to the figure's plotting function.
    ``common`` parameters are in every notebook, the others in the figures whose spec lists them.
    ``kind`` says how a string value is read (:func:`coerce_parameter`; papermill's ``-p`` passes strings):
    ``str`` (kept), ``int`` / ``number`` (one number), ``ints`` / ``numbers`` (a list of numbers), ``int_or_ints``
    (one integer or a list), ``names`` (a list of names), ``name_or_names`` (one name or a list).
    """

    name: str
    default: Any
    role: str
    help: str
    common: bool = False
    kind: str = "str"


PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("preset", "demo", "config", "smoke | demo | paper: the scale (collapse_utils.presets)", True),
    Parameter("dataset", None, "config", "None: the dataset(s) of the preset; or e.g. 'mnist', 'cifar10', "
              "['ffhq32', 'cifar10']", True, kind="name_or_names"),
    Parameter("sizes", None, "config", "dataset sizes n; None: the sizes of the preset (one size for selection "
              "figures)", True, kind="int_or_ints"),
    Parameter("generations", None, "config", "None: the number of generations of the preset", True, kind="int"),
    Parameter("paradigms", None, "config", "replace | accumulate_subsample | accumulate | replace_2n | fresh", True,
              kind="names"),
    Parameter("methods", None, "config", "selection methods: none (vanilla) | threshold (Threshold Decay Filter) | "
              "greedy | random", True, kind="names"),
    Parameter("feature_space", None, "config", "None: that of the preset (dinov2 at paper scale, pixel at "
              "demo/smoke); or pixel | dinov2 | inception", True),
    Parameter("seeds", [0], "config", "one run per seed; lines show the mean and a ±1 sd band when there are "
              "several", True, kind="ints"),
    Parameter("device", None, "config", "None: CUDA if available, else CPU", True),
    Parameter("run_root", None, "runs", "None: $COLLAPSE_RUNS or <repo>/runs (the run store shared by every "
              "figure)", True),
    Parameter("fig_dir", None, "runs", "None: <repo>/figures for demo, <repo>/figures/<preset> otherwise", True),
    Parameter("workers", None, "runs", "parallel training processes; None: 2 on CPU presets, 1 at paper scale", True,
              kind="int"),
    Parameter("decays", None, "config", "decay factors α of the Threshold Decay Filter; None: those of the preset",
              kind="numbers"),
    Parameter("fid_samples", None, "runs", "samples per set for FID/FD; None: n of the run (the authors cap G_n at "
              "their n, 32,768)", kind="int"),
    Parameter("fd_fallback", "inception", "runs", "'inception': without DINOv2 weights plot FD in Inception space "
              "(said on the figure); None: fail"),
    Parameter("guidance_scale", 2.0, "config", "F11: classifier-free guidance scale w (eps_u + w (eps_c - eps_u)); "
              "the paper's 2", kind="number"),
    Parameter("class_selection", "per_class", "config", "F11: per_class (selection inside each digit, keeps class "
              "balance) | global"),
    Parameter("pair_size", None, "plot", "which dataset size shows generated/nearest-training pairs; None: the "
              "smallest", kind="int"),
    Parameter("pair_generations", None, "plot", "generations of the pairs; None: first, middle and last",
              kind="ints"),
    Parameter("n_pairs", 6, "plot", "pairs per generation", kind="int"),
    Parameter("svd_size", None, "plot", "which dataset size the SVD projections use; None: the median size",
              kind="int"),
    Parameter("svd_generations", None, "plot", "the two generations projected; None: first and last",
              kind="ints"),
    Parameter("grid_generations", None, "plot", "F11: generations shown as sample grids; None: first and last",
              kind="ints"),
    Parameter("per_digit", 10, "plot", "F11: samples per digit (columns of each grid)", kind="int"),
    Parameter("max_generations", 6, "plot", "columns of the image grid", kind="int"),
    Parameter("grid", 8, "plot", "each panel shows grid × grid samples", kind="int"),
)}


def parameter_names(*roles: str) -> tuple[str, ...]:
    """The names of the parameters with one of ``roles`` (``config`` | ``runs`` | ``plot``), in table order."""
    return tuple(name for name, p in PARAMETERS.items() if p.role in roles)


_EXAMPLES = {
    "int": "16", "number": "0.9", "ints": "[0, 1] or 0,1 or 0", "numbers": "[0.8, 0.95] or 0.8,0.95 or 0.9",
    "int_or_ints": "[16, 32] or 16,32 or 16", "names": "['replace'] or replace,accumulate_subsample or replace",
    "name_or_names": "mnist or ffhq32,cifar10 or ['ffhq32', 'cifar10']",
}


def coerce_parameter(name: str, value: Any) -> Any:
    """``value`` as the user means it when it arrives as text (papermill's ``-p`` passes strings; the notebook's
    parameters cell then holds ``sizes = "[16,32]"``); other values come back unchanged but for the list kinds.

    By the parameter's ``kind`` (:class:`Parameter`): ``"None"`` is None for every kind; ``str`` stays as given;
    ``int`` / ``number``: ``ast.literal_eval`` (``"16"``, ``"0.9"``); lists (``ints``, ``numbers``,
    ``int_or_ints``): ``"[16,32]"``, ``"(16, 32)"``, ``"16,32"`` and ``"16"`` by ``ast.literal_eval`` (a tuple
    becomes a list; ``ints`` / ``numbers`` also wrap one number, ``"0"`` → ``[0]``); names (``names``,
    ``name_or_names``): a bracketed literal by ``ast.literal_eval``, else split at commas (``names`` always gives
    a list; ``name_or_names`` keeps one name a string). Text that does not parse is a ValueError naming the
    parameter and showing the accepted forms; whether the parsed value is valid is :func:`parameter_error`'s job.
    """
    kind = PARAMETERS[name].kind if name in PARAMETERS else "str"
    if isinstance(value, str):
        text = value.strip()
        if text == "None":
            return None
        if kind == "str":
            return value
        if kind in ("names", "name_or_names") and not text.startswith(("[", "(")):
            names = [t.strip().strip("'\"") for t in text.split(",") if t.strip()]
            return names[0] if kind == "name_or_names" and len(names) == 1 and "," not in text else names
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            if kind in ("names", "name_or_names"):  # [replace, accumulate_subsample]: names without quotes
                return [t.strip().strip("'\"") for t in text[1:].rstrip("])").split(",") if t.strip()]
            raise ValueError(f"parameter {name}: cannot read {value!r} (write e.g. {_EXAMPLES[kind]}, or None)") \
                from None
    if isinstance(value, tuple):
        value = list(value)
    if kind in ("ints", "numbers", "names") and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        value = [value]
    return value


def _values(figure: str, given: dict[str, Any], roles: tuple[str, ...], caller: str,
            extra: Sequence[str] = ()) -> dict[str, Any]:
    """``given`` completed with the table's defaults for ``roles`` (and the names in ``extra``), text values read
    by :func:`coerce_parameter`, each value checked by :func:`parameter_error`; an unknown name, text that does
    not parse or a value that cannot be meant is a ValueError naming the parameter."""
    valid = [n for n in parameter_names(*roles) if n != "preset"] + [n for n in extra if n != "preset"]
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"{caller}({figure!r}): unknown parameter(s) {unknown}; valid: {', '.join(valid)}")
    given, unreadable = dict(given), []
    for n in list(given):
        try:
            given[n] = coerce_parameter(n, given[n])
        except ValueError as exc:
            unreadable.append(str(exc))
    if unreadable:
        raise ValueError(f"{caller}({figure!r}): " + "; ".join(unreadable))
    values = {n: given.get(n, PARAMETERS[n].default) for n in valid}
    errors = [e for n, v in values.items() if n in given and (e := parameter_error(n, v))]
    if errors:
        raise ValueError(f"{caller}({figure!r}): " + "; ".join(errors))
    return values


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parameter_error(name: str, value: Any) -> str | None:
    """A message naming the parameter when ``value`` cannot be what ``name`` means, else None (checked before a
    notebook kernel starts, and again by the notebook's call)."""
    def many(v: Any) -> list | None:
        return list(v) if isinstance(v, (list, tuple)) else None

    if value is None and name not in ("seeds",):
        return None
    if name == "sizes":
        ok = (_is_int(value) and value > 0) or (many(value) is not None and many(value)
                                               and all(_is_int(x) and x > 0 for x in value))
        return None if ok else f"sizes must be a positive integer or a list of them, got {value!r}"
    if name in ("generations", "fid_samples", "workers", "n_pairs", "per_digit", "max_generations", "grid",
                "pair_size", "svd_size"):
        return None if _is_int(value) and value > 0 else f"{name} must be a positive integer, got {value!r}"
    if name in ("pair_generations", "svd_generations", "grid_generations"):
        ok = many(value) is not None and many(value) and all(_is_int(x) and x >= 0 for x in value)
        return None if ok else f"{name} must be a list of generation numbers, got {value!r}"
    if name == "seeds":
        ok = many(value) is not None and many(value) and all(_is_int(x) and x >= 0 for x in value)
        return None if ok else f"seeds must be a list of non-negative integers, got {value!r}"
    if name in ("paradigms", "methods"):
        vocab = {"paradigms": PARADIGMS, "methods": SELECTION_METHODS}[name]
        ok = many(value) is not None and all(isinstance(x, str) and x in vocab for x in value)
        return None if ok else f"{name} must be a list of names from {', '.join(vocab)}, got {value!r}"
    if name == "decays":
        ok = many(value) is not None and all(isinstance(x, (int, float)) and 0 < x < 1 for x in value)
        return None if ok else f"decays must be a list of numbers in (0, 1), got {value!r}"
    if name == "guidance_scale":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        return None if ok else f"guidance_scale must be a number >= 0, got {value!r}"
    return None


# ---------------------------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class FigureSpec:
    """One paper figure: the experiment that gives its runs, the metrics it plots and its notebook options.

    ``experiment(preset, **kw)`` returns run configurations; it receives the figure parameters its signature
    names (see :func:`figure_configs`). Metric names may hold ``{fs}`` (the runs' feature space) or ``{fd}``
    (FD_DINO, or its recorded fallback). ``options`` are the figure's own parameters (:data:`PARAMETERS`);
    ``last_generation_fid``: the figure also reports FID at each run's last generation with its real-vs-real floor.
    """

    id: str
    title: str
    experiment: Callable[..., list["RunConfig"]]
    metrics: tuple[str, ...]
    paradigms: tuple[str, ...] = ("replace",)
    methods: tuple[str, ...] = VANILLA
    options: tuple[str, ...] = ()
    last_generation_fid: bool = False

    def parameters(self) -> dict[str, Any]:
        """The notebook's parameters and their defaults: the common ones, then the figure's options."""
        figure_defaults = dict(paradigms=list(self.paradigms), methods=list(self.methods))
        common = {n: figure_defaults.get(n, p.default) for n, p in PARAMETERS.items() if p.common}
        return {**common, **{n: PARAMETERS[n].default for n in self.options}}


def _datasets(dataset: str | Sequence[str] | None) -> list[str | None]:
    if dataset is None:
        return [None]
    return [dataset] if isinstance(dataset, str) else list(dataset)


def _single_size(sizes: int | Sequence[int] | None) -> int | None:
    if sizes is None or isinstance(sizes, int):
        return sizes
    sizes = list(sizes)
    if len(sizes) != 1:
        raise ValueError(f"selection figures use one dataset size; got sizes={sizes}")
    return int(sizes[0])


def guidance_figure_configs(preset: str, *, datasets: Sequence[str] | None = None, n: int | None = None,
                       paradigms: Sequence[str] = ("accumulate_subsample",),
                       methods: Sequence[str] = ("none", "threshold"), feature_space: str | None = None,
                       guidance_scale: float | None = None, class_selection: str | None = None,
                       **common: Any) -> list["RunConfig"]:
    """F11's experiment (:func:`collapse_utils.experiments.guidance_experiment`, PAPER.md §5 "MNIST CFG experiment"):
    unconditional, CFG, CFG + the one selection method in ``methods`` besides ``none``, under the single
    paradigm in ``paradigms``, on one dataset."""
    chosen = [m for m in methods if m != "none"]
    if len(chosen) != 1 or len(paradigms) != 1 or (datasets is not None and len(datasets) != 1):
        raise ValueError(f"F11 compares CFG with one selection method under one paradigm on one dataset; got "
                         f"methods={list(methods)}, paradigms={list(paradigms)}, dataset={datasets!r}")
    return E.guidance_experiment(preset, dataset=(datasets or [None])[0], n=n, paradigm=paradigms[0], selection=chosen[0],
                            feature_space=feature_space, class_selection=class_selection or "per_class",
                            guidance_scale=2.0 if guidance_scale is None else guidance_scale, **common)


SPECS: dict[str, FigureSpec] = {s.id: s for s in (
    FigureSpec("F2", "Generalization score vs generation per dataset size, with generated/nearest-training pairs",
               E.size_sweep, ("gs_pixel",), options=("pair_size", "pair_generations", "n_pairs")),
    FigureSpec("F3", "Training-set entropy vs generation, and 2-D SVD projections of real vs generated images",
               E.size_sweep, ("entropy_pixel",), options=("svd_size", "svd_generations")),
    FigureSpec("F4", "Generalization score (log) vs entropy and vs covariance trace, with Pearson r",
               E.size_sweep, ("gs_pixel", "entropy_pixel", "cov_trace")),
    FigureSpec("F7", "Generalization score of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("gs_{fs}",), SELECTION_PARADIGMS, SELECTION_ARMS),
    FigureSpec("F8", "FID of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("fid",), SELECTION_PARADIGMS, SELECTION_ARMS, ("fid_samples",)),
    FigureSpec("F9", "Training-set entropy of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("entropy_{fs}",), SELECTION_PARADIGMS, SELECTION_ARMS),
    FigureSpec("F10", "Source proportions of the selected training set (accumulate + selection)",
               E.selection_grid, (), ("accumulate_subsample",), ("threshold", "greedy")),
    FigureSpec("F11", "MNIST with classifier-free guidance: samples per digit, training-set entropy, FID",
               guidance_figure_configs, ("entropy_pixel",), ("accumulate_subsample",), ("none", "threshold"),
               ("guidance_scale", "class_selection", "fid_samples", "grid_generations", "per_digit"),
               last_generation_fid=True),
    FigureSpec("F12", "Ablation: vanilla with 2N images vs selecting N (replace)",
               E.ablation_2n, ("fid", "gs_{fs}"), ("replace",), SELECTION_ARMS, ("fid_samples",)),
    FigureSpec("F13", "Ablation over the Threshold Decay Filter's decay factor (accumulate)",
               E.ablation_decay, ("fid",), ("accumulate_subsample",), ("none", "greedy", "threshold"),
               ("decays", "fid_samples")),
    FigureSpec("F14", "MNND and covariance trace of the training set vs generation",
               E.size_sweep, ("mnnd", "cov_trace")),
    FigureSpec("F15", "Fréchet distance in DINOv2 space, vanilla vs Greedy Selection",
               E.selection_grid, ("{fd}",), SELECTION_PARADIGMS, ("none", "greedy"), ("fd_fallback", "fid_samples")),
    FigureSpec("F17", "Grids of generated images over generations (replace)",
               E.size_sweep, ("gs_pixel",), options=("max_generations", "grid")),
)}


# ---------------------------------------------------------------------------------------------- what each figure says
@dataclass(frozen=True)
class FigureNotes:
    """What a figure's notebook says about it (its second cell, ``notebooks/make_notebooks.py``).

    ``plots``: axes and units; ``paper_finding``: what the paper found, with the numbers docs/PAPER.md gives
    (marked [read-off] where read from a figure image, and saying what the digest does not give);
    ``expect_demo`` / ``expect_paper``: what to expect at that scale, saying where the demo cannot resolve a claim;
    ``runtime_demo`` / ``runtime_paper``: the cost of a preset (smoke: :data:`SMOKE_RUNTIME`).
    """

    plots: str
    paper_finding: str
    expect_demo: str
    expect_paper: str
    runtime_demo: str
    runtime_paper: str


SMOKE_RUNTIME = ("about 30–60 s on a 2-core CPU, mostly kernel start-up (4 training steps per generation, 2 "
                 "generations, n = 16–32: plumbing only, the numbers mean nothing)")
# Where the runtimes come from, said once in every notebook.
RUNTIME_SOURCES = (
    "Demo: ≈31 CPU-s per generation (benchmarks/demo_findings.md: 943 CPU-s for the demo's 30 generations; on an "
    "idle 2-core machine two worker processes make the wall time about CPU time ÷ 1.5–2); with every run already "
    "in the store a demo notebook executes in 7–9 s (figures/executed/batch_summary.json). Paper: estimates from one H200's measured throughput "
    "(benchmarks/gpu_throughput.md, fast path: 5,972 training img/s, so 128,256 steps × 128 ≈ 0.76 h per generation at "
    "any n; 71.9 sampled img/s at 1000 steps), training and sampling only (no metrics, no compile time); no "
    "paper-scale run has been timed end to end, and the authors' hardware and GPU-hours are not known (PAPER.md §5).")
_GS_PIXEL = ("GS = generalization score (PAPER.md §3.1): mean L2 distance from each generated image to its nearest "
             "image in that model's own training set, on 0–255 pixel values")
_ENTROPY = "entropy = Kozachenko–Leonenko 1-NN estimator of the training set, in nats (PAPER.md §3.2)"
_FID = ("FID (PAPER.md §3.3): torchvision Inception features of the first n samples vs the run's n real images "
        "(`fid_samples` to cap)")
_SIZE_SWEEP_DEMO = ("Runs: the size sweep (3 runs × 5 generations, shared with F2, F3, F4, F14, F17): ≈8 CPU-min, "
                    "about 4–5 min from an empty store")
_SIZE_SWEEP_PAPER = ("Runs: the size sweep (6 runs × 10 generations, shared with F2, F3, F4, F14, F17): ≈48 H200-hours "
                     "(estimate)")
_GRID_DEMO = ("Runs: the selection grid at n = 128 (6 runs × 5 generations, vanilla replace shared with the size "
              "sweep; shared with F7–F10, F12, F13, F15): ≈15 CPU-min, about 8–10 min from an empty store")
_GRID_PAPER = ("Runs: the selection grid (FFHQ 8,192 and CIFAR-10 32,768, replace and accumulate, 3 arms: 12 runs × 8 "
               "generations, selection arms sampling 2n): ≈83 H200-hours (estimate), shared with F7–F10, F12, F13, F15")
_DEMO_FID = ("At demo scale FID does **not** resolve the paper's claim: 128 samples of 8×8 MNIST against 128 real "
             "images, whose real-vs-real floor is ≈41 (figures/F11_fid.csv); the arms differ by less than that noise "
             "(at generation 1, where every arm's model is trained alike on the same real images, FID already "
             "differs by 6 between arms: 63.1 vs 68.8, from different sample draws).")

NOTES: dict[str, FigureNotes] = {
    "F2": FigureNotes(
        plots=f"Left: generated images above their nearest training images (smallest n, first / middle / last "
              f"generation). Right: {_GS_PIXEL}, log axis, vs generation, one line per dataset size n (replace).",
        paper_finding="Finding 1 (PAPER.md §2 F2, §6 item 1): under replace GS decays near-exponentially, faster and "
                      "from lower for smaller datasets; CIFAR-10 n = 32,768 ≈1810 → ≈615 and n = 1,024 ≈105 → ≈35 "
                      "from iteration 1 to 10 [read-off]; \"with 1K samples, memorization begins in the first "
                      "iteration\" ([PN], a third-party summary). By iteration 8 the samples copy their neighbours.",
        expect_demo="8×8 MNIST, n = 32 / 128 / 1024, 5 generations (figures/F2.csv): GS 105 → 38, 215 → 85, 226 → 118 "
                    "(×0.77, ×0.79, ×0.85 per generation). n = 32 starts in the memorization regime (its pairs are "
                    "near-copies); n = 128 vs 1024 at generation 1 is a tie, so the size ordering rests on n = 128 "
                    "falling faster (benchmarks/demo_findings.md).",
        expect_paper="CIFAR-10, n = 1,024 … 32,768, 10 generations, pixel GS on 32×32×3 images: lines in the "
                     "0–2000 range like the paper's, the sizes ≤ 4,096 near the floor by generation 2–3.",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F3": FigureNotes(
        plots=f"Left: {_ENTROPY}, pixel space, vs generation per dataset size (replace). Right: real vs generated "
              "images projected on the 2nd and 3rd right-singular vectors of the real images (PAPER.md §3.5), first "
              "and last generation, median size.",
        paper_finding="Finding 2 (PAPER.md §2 F3, §6 item 1): pixel-space entropy falls monotonically for every size, "
                      "e.g. n = 32,768: 15.7 → 14.07 ×10³ and n = 1,024: 12.6 → 10.1 ×10³ over iterations 1–10 "
                      "[read-off]; the projections overlap the real ones at iteration 1 and collapse onto thin "
                      "filaments by iteration 21.",
        expect_demo="Entropy gen 1 → 5: n = 32 325 → 196, n = 128 310 → 250, n = 1024 298 → 272 nats (it may rise at "
                    "generation 2 first). Unlike the paper, generation-1 entropy *falls* with n here (a small-n bias "
                    "of the estimator, benchmarks/demo_findings.md); 5 generations show shrinking, not the paper's "
                    "filaments.",
        expect_paper="CIFAR-10 sweep, 10 generations: entropy of order 10⁴ nats (d = 3072), falling for every size; "
                     "run `generations=21` to see the filaments.",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F4": FigureNotes(
        plots="Each point one generation of one vanilla replace run (colour: n). (a) GS (pixels, log axis) vs "
              "training-set entropy (nats) with the fit of log GS on entropy; (b) GS vs the trace of the training "
              "set's covariance (pixels 0–255, PAPER.md §3.4). Pearson r on each panel and in F4.json.",
        paper_finding="Fig. 4a (PAPER.md §2 F4, §6 item 2): Pearson r = 0.91 between entropy and log GS, pooled over "
                      "sizes and iterations ([CARD]; [PN] \"p ≈ 0\"); the variance is a \"substantially weaker\" "
                      "predictor, each size on its own curve (the digest gives no r for it).",
        expect_demo="r = 0.868 over 15 points (rule: ≥ 0.7), variance r = 0.226 (benchmarks/demo_findings.md). The "
                    "pooled r is mostly between sizes: within a size r = 0.92–1.00, and the n = 32 points sit right "
                    "of the others (the estimator's small-n bias).",
        expect_paper="60 points (6 sizes × 10 generations) near one line, r near 0.91; the variance panel spread into "
                     "one curve per size.",
        runtime_demo=_SIZE_SWEEP_DEMO + "; the correlations themselves take well under a second.",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F7": FigureNotes(
        plots="GS (\"Gen ↑\") vs generation for vanilla, Threshold Decay Filter and Greedy Selection; panels dataset "
              "× paradigm (replace, accumulate-subsample). GS in the preset's feature space (the axis says which): "
              "L2 in pixels (0–255) at demo/smoke, between DINOv2-small CLS embeddings at paper scale.",
        paper_finding="PAPER.md §2 F7, §6 item 4 (DINOv2 space, [read-off]): selection keeps GS almost flat under "
                      "accumulate and slows its fall under replace; Greedy ≥ TDF. Iteration 8: CIFAR Replace "
                      "vanilla 18.9 / TDF 29.3 / Greedy 30.8; CIFAR Accumulate 27.8 / 35.1 / 37.5; FFHQ Replace "
                      "14.0 / 16.4 / 17.1; FFHQ Accumulate 21.3 / 25.6 / 28.8 (all from 38.7 or 30.2 at iteration 1).",
        expect_demo="Pixel GS, n = 128, generation 5 (figures/F7.csv): replace vanilla 85, TDF 133, Greedy 133; "
                    "accumulate vanilla 160, TDF 235, Greedy 236. The ordering holds, but TDF ≈ Greedy here (the "
                    "authors' pixel τ₀ = 2000, α = 0.95 on 8×8 images make the filter a coarse farthest-point pick).",
        expect_paper="Four panels in DINOv2 space (≈14–39), eight generations; TDF and Greedy separate a little.",
        runtime_demo=_GRID_DEMO + ".",
        runtime_paper=_GRID_PAPER + "."),
    "F8": FigureNotes(
        plots=f"{_FID}, vs generation for vanilla / Threshold Decay Filter / Greedy Selection; panels dataset × "
              "paradigm.",
        paper_finding="Fig. 6 (PAPER.md §2 F8, §6 item 3): at iteration 8 FFHQ Accumulate vanilla 75.7 vs Greedy "
                      "44.7 ([PN] attributes these to CIFAR-10; the project page's panel says FFHQ, §8), TDF ≈57.4; "
                      "CIFAR Accumulate ≈87 / ≈55.5 / ≈53; CIFAR Replace ≈188.5 / ≈112 / ≈113 [read-off]; FFHQ "
                      "Replace shows **no** FID gain (≈94.5 vanilla vs ≈98 / ≈99.5 at iteration 7).",
        expect_demo="Generation 5 (figures/F8.csv): replace vanilla 118, TDF 108, Greedy 112; accumulate 93 / 93 / "
                    "90. " + _DEMO_FID,
        expect_paper="FID on 32,768 (CIFAR-10) / 8,192 (FFHQ) samples per generation, where the paper's gaps of "
                     "≈30–75 points (none on FFHQ Replace) are far above sampling noise; absolute values differ "
                     "from standard FID (torchvision Inception, PAPER.md §3.3).",
        runtime_demo=_GRID_DEMO + "; plus Inception features for 128 images per generation (≈0.1 s per image on a "
                     "CPU).",
        runtime_paper=_GRID_PAPER + "; FID time not measured."),
    "F9": FigureNotes(
        plots=f"{_ENTROPY}, in the preset's feature space (pixels at demo/smoke, DINOv2-small CLS at paper scale), "
              "vs generation for vanilla / Threshold Decay Filter / Greedy Selection; panels dataset × paradigm.",
        paper_finding="PAPER.md §2 F9, §6 item 4 (DINOv2 space, [read-off]): iteration 8 CIFAR Replace vanilla 524 / "
                      "TDF 685 / Greedy 699 (from ≈750); CIFAR Accumulate 673 / 737 / 745; FFHQ Replace 419 / 459 / "
                      "472 (from 643); FFHQ Accumulate 562 / 614 / 643. Selection holds entropy nearly flat under "
                      "accumulate.",
        expect_demo="Pixel entropy, n = 128, generation 5 (figures/F9.csv): replace vanilla 250, TDF 288, Greedy 288; "
                    "accumulate vanilla 292, TDF 325, Greedy 326 (selection even rises above generation 1's 310).",
        expect_paper="Entropy in DINOv2 space in the hundreds of nats (d = 384), the paper's ordering vanilla < TDF "
                     "≤ Greedy.",
        runtime_demo=_GRID_DEMO + ".",
        runtime_paper=_GRID_PAPER + "."),
    "F10": FigureNotes(
        plots="Stacked bars: share of each generation's selected training set drawn from each source (real images, "
              "generation 1, 2, …), accumulate + Greedy and accumulate + TDF; the red curve is 1/g, the real share "
              "under the even mix of vanilla accumulate-subsample.",
        paper_finding="PAPER.md §2 F10, §6 item 5: selection keeps real images preferentially: FFHQ + Greedy ≈0.635 "
                      "real at iteration 8 [read-off] ([PN]: ≈65% vs 12.5% under even subsampling); CIFAR + Filter "
                      "≈0.345 at iteration 10.",
        expect_demo="n = 128, generation 5 (figures/F10.csv): 58 of 128 real (0.45) with Greedy, 63 (0.49) with TDF, "
                    "against 1/5 = 0.2 for the even mix: the claim resolves at this scale.",
        expect_paper="FFHQ and CIFAR-10 panels over 8 generations, real shares near the paper's 0.35–0.65.",
        runtime_demo="Runs: 2 of the selection grid (accumulate + Greedy, + TDF; 10 generations): ≈5 CPU-min, about "
                     "3 min from an empty store.",
        runtime_paper="Runs: 4 × 8 generations of the selection grid: ≈27 H200-hours (estimate)."),
    "F11": FigureNotes(
        plots="MNIST, accumulate-subsample: sample grids (one row per digit) of CFG (w = 2) and CFG + Threshold "
              "Decay Filter at the first and last generation; training-set entropy (pixels, nats) vs generation of "
              "unconditional, CFG and CFG + filter; within-digit diversity; FID at the last generation with the "
              "held-out real-vs-real floor.",
        paper_finding="PAPER.md §2 F11, §6 item 8: with CFG diversity collapses (each digit row one style); the filter "
                      "restores it. Entropy: CFG ≈3.93 → ≈3.67 ×10³, CFG + filter ≈3.93 → ≈3.99–4.00 ×10³ "
                      "[read-off]. FID at iteration 8 ([PN], unverified): unconditional 74.4, CFG 66.2, CFG + TDF "
                      "22.4. The authors' CFG code, architecture and label-drop rate are not released (§5).",
        expect_demo="8×8 MNIST, n = 128, 5 generations (figures/F11.csv, F11_fid.csv): entropy CFG 310 → 273, CFG + "
                    "filter 310 → 315, unconditional 310 → 292; FID at generation 5 93.3 / 94.7 / 69.4 against a floor "
                    "of 40.8 (128 images a set: only the CFG + filter gap is larger than the noise).",
        expect_paper="12,000 MNIST images at 32×32, 8 generations; our conditional model is our own design, so "
                     "match the direction of the paper's numbers, not their values.",
        runtime_demo="Runs: the selection grid's vanilla accumulate run plus 2 CFG runs (15 generations): ≈8 CPU-min "
                     "if a CFG generation costs what an unconditional one does (not measured), plus FID at the last "
                     "generation only.",
        runtime_paper="Runs: 3 × 8 generations (n = 12,000): ≈19 H200-hours (estimate)."),
    "F12": FigureNotes(
        plots=f"Replace: {_FID} and GS (preset's space) vs generation for vanilla, vanilla trained on 2N images, "
              "Threshold Decay Filter and Greedy Selection (N picked from 2N samples).",
        paper_finding="Appendix C.1 (PAPER.md §2 F12, §6 item 6): training on 2N unselected images helps less than "
                      "selecting N; CIFAR Replace iteration 6 FID vanilla 155.5, 2N 134, TDF 95.5, Greedy 97 "
                      "[read-off].",
        expect_demo="Generation 5 (figures/F12.csv): GS vanilla 84.5, 2N 103, TDF 133, Greedy 133: GS shows the "
                    "paper's order. FID vanilla 118, 2N 104, TDF 108, Greedy 112: " + _DEMO_FID,
        expect_paper="FID in the paper's order (vanilla > 2N > selection), gaps of ≈20–60 points by generation 6.",
        runtime_demo="Runs: 3 of the selection grid plus one 2N run (20 generations): ≈10 CPU-min, about 5–6 min "
                     "from an empty store; plus Inception features for 128 images per generation.",
        runtime_paper="Runs: 8 × 8 generations (6 shared with the selection grid): ≈58 H200-hours in all (estimate)."),
    "F13": FigureNotes(
        plots=f"Accumulate-subsample: {_FID} vs generation for vanilla, Greedy Selection and the Threshold Decay "
              "Filter at each decay factor α.",
        paper_finding="PAPER.md §2 F13, §6 item 7: α ∈ {0.80, 0.90, 0.95, 0.98} give almost identical FID, all "
                      "≈53–55.5 at iteration 8 on CIFAR Accumulate, vs vanilla ≈87 [read-off]: α barely matters.",
        expect_demo="α ∈ {0.80, 0.95} at n = 128, generation 5 (figures/F13.csv): 101 and 93, Greedy 90, vanilla 93. "
                    + _DEMO_FID,
        expect_paper="Four α lines within a few points of each other, all well below vanilla.",
        runtime_demo="Runs: 3 of the selection grid plus one run per other α (20 generations): ≈10 CPU-min, about "
                     "5–6 min from an empty store; plus Inception features for 128 images per generation.",
        runtime_paper="Runs: 12 × 8 generations (shared with the selection grid where α is the preset's): ≈81 "
                      "H200-hours in all (estimate)."),
    "F14": FigureNotes(
        plots="Twin axes vs generation per dataset size (replace): MNND, the mean nearest-neighbour distance within "
              "the training set (pixels 0–255, PAPER.md §3.6), and the trace of its covariance (§3.4).",
        paper_finding="PAPER.md §2 F14: nearest-neighbour distances collapse fast while the variance shrinks slowly "
                      "(the distribution turns \"spiky\"): n = 1,024 MNND 2480 → 910 → 75 (iterations 1, 2, 10), "
                      "trace 1.05 → 0.48 ×10⁷ [read-off].",
        expect_demo="Generation 1 → 5 (figures/F14.csv): MNND n = 32 315 → 45, n = 128 252 → 96, n = 1024 203 → 129; "
                    "trace 1.47 → 0.68, 1.31 → 0.37, 1.29 → 0.40 ×10⁵. MNND falls faster than the trace only for "
                    "n = 32; in 5 generations the larger sizes do not show the contrast.",
        expect_paper="CIFAR-10 sizes, 10 generations: MNND down 10–40× while the trace shrinks 1.5–2.2× (the paper's "
                     "[read-off] ratios).",
        runtime_demo=_SIZE_SWEEP_DEMO + "; the two metrics take seconds.",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F15": FigureNotes(
        plots="Fréchet distance between generated and real images in DINOv2 space vs generation, vanilla vs Greedy "
              "Selection, replace and accumulate. Without DINOv2 weights (offline) the Inception FD (= FID) is "
              "plotted instead and the title, axis and data file say so (`fd_fallback`).",
        paper_finding="PAPER.md §2 F15, §6 item 9 (dataset not labelled, likely CIFAR-10): at iteration 7 Greedy "
                      "lowers FD_DINO from ≈1800 to ≈1128 (replace) and from ≈1131 to ≈860 (accumulate) [read-off].",
        expect_demo="The committed demo figure is the Inception fallback (no DINOv2 weights offline), i.e. F8's FID "
                    "numbers: replace vanilla 118 vs Greedy 112, accumulate 93 vs 90 at generation 5. " + _DEMO_FID,
        expect_paper="FD_DINO in the hundreds to ≈2000 with DINOv2 weights available; Greedy's gap grows with the "
                     "generation.",
        runtime_demo="Runs: 4 of the selection grid (20 generations): ≈10 CPU-min, about 5–6 min from an empty store; "
                     "plus feature extraction for 128 images per generation.",
        runtime_paper="Runs: 8 × 8 generations of the selection grid: ≈55 H200-hours (estimate; the paper plots 7)."),
    "F17": FigureNotes(
        plots="Grids of the first grid × grid generated images of each generation (columns), one row per dataset "
              "size (replace); each panel's title gives that generation's GS (pixels).",
        paper_finding="PAPER.md §2 F17 (appendix D.3): at n = 32,768 images grow blurrier and smeared over "
                      "iterations; at n = 1,024 exact duplicates of training images repeat within a grid from early "
                      "iterations.",
        expect_demo="8×8 MNIST digits, 5 generations: n = 32 shows repeated near-copies from generation 1 (34% of its "
                    "generation-1 samples copy a training image by the 1/3 rule, not the paper's metric); n = 128 "
                    "and 1024 grow dimmer and more alike over the generations.",
        expect_paper="32×32 CIFAR-10 grids like the paper's, 6 generations by default (`max_generations`).",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
}

# ---------------------------------------------------------------------------------------------- paths
def default_fig_dir(preset: str) -> Path:
    """``figures/`` for the demo (the committed set), ``figures/<preset>`` for the other presets."""
    return repo_root() / ("figures" if preset == "demo" else f"figures/{preset}")


def default_workers(preset: str) -> int:
    """Two worker processes on a CPU (1.4–1.6× faster than one, benchmarks/demo_findings.md); one on a GPU."""
    return 1 if preset == "paper" else 2


# ---------------------------------------------------------------------------------------------- configurations
def figure_configs(figure: str, preset: str = "demo", **overrides: Any) -> list["RunConfig"]:
    """The run configurations of ``figure`` at ``preset``; ``overrides`` are ``config`` parameters of
    :data:`PARAMETERS` (``None``: the preset's value, experiments.SCALES; paradigms/methods: the figure's).

    The experiment receives what its signature names: ``dataset`` (called once per dataset) or ``datasets``;
    ``sizes`` or the single size ``n``; ``paradigm`` (once per paradigm) or ``paradigms``; ``methods``,
    ``feature_space``, ``decays``, ``guidance_scale``, ``class_selection``; always ``generations``, ``seeds``
    and ``device``. A figure of vanilla runs whose experiment takes no methods accepts only ``methods=['none']``.
    """
    spec = SPECS[figure]
    v = _values(figure, overrides, ("config",), "figure_configs")
    takes = inspect.signature(spec.experiment).parameters
    paradigms = tuple(v["paradigms"] or spec.paradigms)
    methods = tuple(v["methods"] or spec.methods)
    if "methods" not in takes and spec.methods == VANILLA and methods != VANILLA:
        raise ValueError(f"{figure} plots vanilla runs only (methods=['none']); got {list(methods)}")
    sizes, dataset = v["sizes"], v["dataset"]
    named = dict(paradigms=paradigms, methods=methods, feature_space=v["feature_space"], decays=v["decays"],
                 guidance_scale=v["guidance_scale"], class_selection=v["class_selection"],
                 sizes=[sizes] if isinstance(sizes, int) else sizes,
                 datasets=None if dataset is None else _datasets(dataset))
    kw = {k: val for k, val in named.items() if k in takes}
    if "n" in takes:
        kw["n"] = _single_size(sizes)
    kw.update(generations=v["generations"], seeds=tuple(v["seeds"]), device=v["device"])
    out: list[RunConfig] = []
    for ds in _datasets(dataset) if "dataset" in takes else [None]:
        for p in paradigms if "paradigm" in takes else [None]:
            one = {k: val for k, val in (("dataset", ds), ("paradigm", p)) if k in takes}
            out += spec.experiment(preset, **one, **kw)
    return out


def figure_metrics(figure: str, feature_space: str, fd_metric: str = "fd_dinov2") -> list[str]:
    return [m.format(fs=feature_space, fd=fd_metric) for m in SPECS[figure].metrics]


# ---------------------------------------------------------------------------------------------- the notebooks' call
@dataclass
class FigureRuns:
    """What a notebook plots: the runs, where the figure goes, and options for its plotting function."""

    figure: str
    runs: list["RunResult"]
    fig_dir: Path
    run_root: Path
    plot_options: dict[str, Any] = field(default_factory=dict)


def figure_runs(figure: str, preset: str = "demo", **overrides: Any) -> FigureRuns:
    """The finished runs of ``figure`` with the metrics it plots, training and measuring only what is missing.

    ``overrides`` are the ``config`` and ``runs`` parameters of :data:`PARAMETERS` and the figure's own ``plot``
    options (what the notebooks pass); text values are read as :func:`coerce_parameter` says, so papermill's
    ``-p sizes "[16,32]"`` reaches the runs as ``[16, 32]``. The plot options come back, read and checked, in
    ``plot_options`` (with what the plotting function needs from the runs).
    """
    from .presets import scale
    from .run_metrics import ensure_figure_metrics, ensure_last_generation_fid, resolve_fd_metric
    from .store import ensure_runs

    if figure not in SPECS:
        raise ValueError(f"unknown figure {figure!r}; choose one of {sorted(SPECS)}")
    spec = SPECS[figure]
    plot_names = [n for n in spec.options if PARAMETERS[n].role == "plot"]
    v = _values(figure, overrides, ("config", "runs"), "figure_runs", extra=plot_names)
    run_root = Path(v["run_root"]) if v["run_root"] else default_run_root()
    fig_dir = Path(v["fig_dir"]) if v["fig_dir"] else default_fig_dir(preset)
    configs = figure_configs(figure, preset, **{k: v[k] for k in parameter_names("config") if k in v})
    runs = ensure_runs(configs, run_root, workers=v["workers"] or default_workers(preset))
    fs = v["feature_space"] or scale(preset).feature_space
    device = v["device"]
    options: dict[str, Any] = {n: v[n] for n in plot_names}
    fd_metric = "fd_dinov2"
    if "{fd}" in spec.metrics:
        fd_metric, note = resolve_fd_metric(v["fd_fallback"], device)
        options.update(metric=fd_metric, fallback_note=note)
    if any("{fs}" in m for m in spec.metrics):
        options["feature_space"] = fs
    ensure_figure_metrics(runs, figure_metrics(figure, fs, fd_metric), device=device, fid_samples=v["fid_samples"])
    if spec.last_generation_fid:  # FID at the last generation only (Inception on a CPU costs ~0.1 s per image)
        options["fid_reference"] = ensure_last_generation_fid(runs, max_samples=v["fid_samples"], device=device)
    return FigureRuns(figure, runs, fig_dir, run_root, options)
