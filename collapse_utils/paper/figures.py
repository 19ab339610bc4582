"""The figure registry: each paper figure's experiment, metrics and notebook parameters, and the notebooks' one call.

* :data:`SPECS` holds one :class:`FigureSpec` per figure of the paper (ids as in PAPER.md §2): the experiment
  function that gives its run configurations (:mod:`collapse_utils.loop.experiments`), the metrics it plots and its own
  notebook options. :data:`PARAMETERS` is the one table of notebook parameters (name, default, meaning, and who
  takes it); the notebooks' parameters cells (``notebooks/make_notebooks.py``), :func:`figure_configs`,
  :func:`figure_runs` and the batch command (:mod:`collapse_utils.paper.batch`) all read it.
* :data:`NOTES` (collapse_utils.paper.figure_notes, keyed like :data:`SPECS`) holds each figure's text for its notebook: what it plots, the paper's
  finding with the numbers docs/PAPER.md gives, what to expect at demo and paper scale, and each preset's runtime.
* :func:`figure_runs` is what every notebook calls: it turns the notebook's parameters into the figure's run
  configurations, gets them from the run store (training only what is missing,
  :func:`collapse_utils.loop.store.ensure_runs`) and computes the metrics the figure plots but the runs lack
  (:mod:`collapse_utils.loop.run_metrics`); parameters that arrive as text (papermill's ``-p``) are read as meant
  first (:func:`coerce_parameter`). Identical configurations are shared between figures: F2, F3, F4, F14 and
  F17 use the same replace runs; F7–F10, F12, F13 and F15 the same selection runs; the appendix figures D1
  (D.1: the size sweep under accumulate) and D5 (D.5: fresh real data beside the vanilla selection runs) add
  only their own.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..loop import experiments as E
from ..core.paths import default_run_root, repo_root
from ..core.vocab import (FD_METRICS, FID_MODES, HELDOUT_FD_METRICS, MEMORIZATION_METRICS, PARADIGMS, PRESETS,
                          REAL_REFERENCE_METRICS, SELECTION_METHODS, real_reference_metrics)
from ..core.methods import is_plugin_path, method_names
from ..core.presets import scale
from ..loop.heldout import HeldOutUnavailableError
from ..loop.run_metrics import (ensure_figure_metrics, ensure_last_generation_fid, fd_noise_floor,
                                fd_noise_floor_spread, fd_sample_size, real_reference_feature_space,
                                resolve_fd_metric)
from ..loop.store import ensure_runs
from ..measure.features import check_feature_space

if TYPE_CHECKING:  # pragma: no cover
    from ..core.config import RunConfig
    from ..loop.rundir import RunResult

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
    (one integer or a list), ``names`` (a list of names), ``name_or_names`` (one name or a list), ``name`` (one
    name from a vocabulary, kept as given).
    """

    name: str
    default: Any
    role: str
    help: str
    common: bool = False
    kind: str = "str"


PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("preset", "demo", "config", "smoke | demo | paper: the scale (collapse_utils.core.presets)", True,
              kind="name"),
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
    Parameter("seeds", None, "config", "one run per seed; None: the preset's (3 at demo, 1 at smoke and paper); "
              "lines show the mean and a ±1 sd band over seeds, CSVs keep every seed", True, kind="ints"),
    Parameter("device", None, "config", "None: CUDA if available, else CPU", True),
    Parameter("run_root", None, "runs", "None: $COLLAPSE_RUNS or <repo>/runs (the run store shared by every "
              "figure)", True),
    Parameter("fig_dir", None, "runs", "None: <repo>/figures for demo, <repo>/figures/<preset> otherwise", True),
    Parameter("workers", None, "runs", "parallel training processes; None: 2 on CPU presets, 1 at paper scale", True,
              kind="int"),
    Parameter("decays", None, "config", "decay factors α of the Threshold Decay Filter; None: those of the preset",
              kind="numbers"),
    Parameter("fid_samples", None, "runs", "samples per set for FID/FD (the real set never exceeds the run's n); "
              "None: the preset's, 32,768 at paper scale (the authors' FID.py cap on generated images), the run's n "
              "at demo/smoke", kind="int"),
    Parameter("fid_mode", None, "runs", "the Fréchet distance of the FD figures; None: the preset's (lenet at "
              "demo/smoke, clean at paper) | clean: FID through clean-fid's standard FID Inception (metric fid) | "
              "torchvision: the authors' FID.py network, torchvision's ImageNet inception_v3 (metric "
              "fid_torchvision; its weights need internet once) | lenet: FD in the bundled MNIST LeNet's features "
              "between held-out samples and MNIST test images (metric fd_lenet; grey digits)", kind="name"),
    Parameter("fd_fallback", "preset", "runs", "without DINOv2 weights, plot FD in another space (said on the figure): "
              "'inception' (FID's pool3) | 'lenet' (grey digits, held-out samples) | 'preset': lenet at demo/smoke, "
              "inception at paper | None: fail"),
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
        if kind in ("str", "name"):
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


# The names a ``names`` parameter may list, or a ``name`` parameter may be.
_NAME_VOCABULARIES = {"preset": PRESETS, "paradigms": PARADIGMS, "methods": SELECTION_METHODS, "fid_mode": tuple(FID_MODES)}


def parameter_error(name: str, value: Any) -> str | None:
    """A message naming the parameter when ``value`` cannot be what ``name`` means (by its :attr:`Parameter.kind`),
    else None (checked before a notebook kernel starts, and again by the notebook's call)."""
    def many(v: Any) -> list | None:
        return list(v) if isinstance(v, (list, tuple)) else None

    if value is None:
        return None
    kind = PARAMETERS[name].kind if name in PARAMETERS else "str"
    if kind == "int_or_ints":
        ok = (_is_int(value) and value > 0) or (many(value) is not None and many(value)
                                               and all(_is_int(x) and x > 0 for x in value))
        return None if ok else f"{name} must be a positive integer or a list of them, got {value!r}"
    if kind == "int":
        return None if _is_int(value) and value > 0 else f"{name} must be a positive integer, got {value!r}"
    if kind == "ints":
        ok = many(value) is not None and many(value) and all(_is_int(x) and x >= 0 for x in value)
        what = "generation numbers" if name.endswith("_generations") else "non-negative integers"
        return None if ok else f"{name} must be a list of {what}, got {value!r}"
    if kind == "names" and name in _NAME_VOCABULARIES:
        vocab = _NAME_VOCABULARIES[name]
        if name == "methods":  # registered methods, and plug-ins named module:function (core/methods.py)
            vocab = method_names()
            ok = many(value) is not None and all(isinstance(x, str) and (x in vocab or is_plugin_path(x))
                                                 for x in value)
            return None if ok else (f"{name} must be a list of selection methods ({', '.join(vocab)}, or "
                                    f"module:function), got {value!r}")
        ok = many(value) is not None and all(isinstance(x, str) and x in vocab for x in value)
        return None if ok else f"{name} must be a list of names from {', '.join(vocab)}, got {value!r}"
    if kind == "name" and name in _NAME_VOCABULARIES:
        vocab = _NAME_VOCABULARIES[name]
        return None if value in vocab else f"{name} must be one of {', '.join(vocab)}, got {value!r}"
    if kind == "numbers":
        ok = many(value) is not None and all(isinstance(x, (int, float)) and 0 < x < 1 for x in value)
        return None if ok else f"{name} must be a list of numbers in (0, 1), got {value!r}"
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        return None if ok else f"{name} must be a number >= 0, got {value!r}"
    return None


# ---------------------------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class FigureSpec:
    """One paper figure: the experiment that gives its runs, the metrics it plots and its notebook options.

    ``experiment(preset, **kw)`` returns run configurations; it receives the figure parameters its signature
    names (see :func:`figure_configs`). Metric names may hold ``{fs}`` (the runs' feature space), ``{fd}``
    (FD_DINO, or its recorded fallback) or ``{fid}`` (the FID of the ``fid_mode`` parameter, vocab.FID_MODES).
    ``options`` are the figure's own parameters (:data:`PARAMETERS`);
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
    """F11's experiment (:func:`collapse_utils.loop.experiments.guidance_experiment`, PAPER.md §5 "MNIST CFG experiment"):
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
               E.size_sweep, ("gs_pixel", *MEMORIZATION_METRICS),
               options=("pair_size", "pair_generations", "n_pairs")),
    FigureSpec("F3", "Training-set entropy vs generation, and 2-D SVD projections of real vs generated images",
               E.size_sweep, ("entropy_pixel",), options=("svd_size", "svd_generations")),
    FigureSpec("F4", "Generalization score (log) vs entropy and vs covariance trace, with Pearson r",
               E.size_sweep, ("gs_pixel", "entropy_pixel", "cov_trace")),
    FigureSpec("F7", "Generalization score of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("gs_{fs}",), SELECTION_PARADIGMS, SELECTION_ARMS),
    FigureSpec("F8", "FID of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("{fid}",), SELECTION_PARADIGMS, SELECTION_ARMS, ("fid_samples", "fid_mode")),
    FigureSpec("F9", "Training-set entropy of vanilla / Threshold Decay Filter / Greedy Selection",
               E.selection_grid, ("entropy_{fs}",), SELECTION_PARADIGMS, SELECTION_ARMS),
    FigureSpec("F10", "Source proportions of the selected training set (accumulate + selection)",
               E.selection_grid, (), ("accumulate_subsample",), ("threshold", "greedy")),
    FigureSpec("F11", "MNIST with classifier-free guidance: samples per digit, training-set entropy, FID",
               guidance_figure_configs, ("entropy_pixel",), ("accumulate_subsample",), ("none", "threshold"),
               ("guidance_scale", "class_selection", "fid_samples", "fid_mode", "grid_generations", "per_digit"),
               last_generation_fid=True),
    FigureSpec("F12", "Ablation: vanilla with 2N images vs selecting N (replace)",
               E.ablation_2n, ("{fid}", "gs_{fs}"), ("replace",), SELECTION_ARMS, ("fid_samples", "fid_mode")),
    FigureSpec("F13", "Ablation over the Threshold Decay Filter's decay factor (accumulate)",
               E.ablation_decay, ("{fid}",), ("accumulate_subsample",), ("none", "greedy", "threshold"),
               ("decays", "fid_samples", "fid_mode")),
    FigureSpec("F14", "MNND and covariance trace of the training set vs generation",
               E.size_sweep, ("mnnd", "cov_trace")),
    FigureSpec("F15", "Fréchet distance in DINOv2 space, vanilla vs Greedy Selection",
               E.selection_grid, ("{fd}",), SELECTION_PARADIGMS, ("none", "greedy"), ("fd_fallback", "fid_samples")),
    FigureSpec("F16", "Samples of vanilla vs Greedy Selection at the last generation (accumulate), with their "
               "generalization scores", E.selection_grid, ("gs_{fs}",), ("accumulate_subsample",), ("none", "greedy")),
    FigureSpec("F17", "Grids of generated images over generations (replace)",
               E.size_sweep, ("gs_pixel",), options=("max_generations", "grid")),
    # Appendix figures without a figure number (PAPER.md §1): D1 is F2 under accumulate, D5 adds fresh real data.
    FigureSpec("D1", "Generalization score vs generation per dataset size under accumulate, with generated/nearest-"
               "training pairs and memorization against a fixed real reference",
               E.size_sweep, ("gs_pixel", "rho_pixel", "copy_rate_real_pixel"), ("accumulate_subsample",),
               options=("pair_size", "pair_generations", "n_pairs")),
    FigureSpec("D5", "Replace vs accumulate vs fresh real data: generalization score, training-set entropy and FD",
               E.fresh_comparison, ("gs_{fs}", "entropy_{fs}", "{fid}"), ("replace", "accumulate_subsample", "fresh"),
               options=("fid_samples", "fid_mode")),
)}


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

    seeds = v["seeds"] if v["seeds"] is not None else scale(preset).seeds
    kw.update(generations=v["generations"], seeds=tuple(seeds), device=v["device"])
    out: list[RunConfig] = []
    for ds in _datasets(dataset) if "dataset" in takes else [None]:
        for p in paradigms if "paradigm" in takes else [None]:
            one = {k: val for k, val in (("dataset", ds), ("paradigm", p)) if k in takes}
            out += spec.experiment(preset, **one, **kw)
    return out


def noise_floor(run: "RunResult", metric: str, fid_samples: int | None, device: str | None) -> dict[str, Any]:
    """The noise floor printed beside an FD figure: the same distance between two disjoint real sets of the size
    the figure's values use (run_metrics.fd_noise_floor); ``value`` is None where the data has no such sets."""
    count = fd_sample_size(run, metric, fid_samples)
    try:
        value = fd_noise_floor(run.config, metric, count, device)
        sd, splits = fd_noise_floor_spread(run.config, metric, count, device)
    except HeldOutUnavailableError as exc:
        return {"metric": metric, "value": None, "samples": count, "what": f"no noise floor: {exc}"}
    if splits > 1:
        what = (f"FD between two disjoint sets of MNIST test images, {count:,} per side (mean ± sd {sd:.2g} over "
                f"{splits} random splits)")
    else:
        what = f"FD between held-out real images and the run's real images, {count:,} per side"
    return {"metric": metric, "value": value, "sd": sd, "splits": splits, "samples": count, "what": what}


def figure_metrics(figure: str, feature_space: str, fd_metric: str = "fd_dinov2", fid_metric: str = "fid") -> list[str]:
    return [m.format(fs=feature_space, fd=fd_metric, fid=fid_metric) for m in SPECS[figure].metrics]


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
    if figure not in SPECS:
        raise ValueError(f"unknown figure {figure!r}; choose one of {sorted(SPECS)}")
    spec = SPECS[figure]
    plot_names = [n for n in spec.options if PARAMETERS[n].role == "plot"]
    v = _values(figure, overrides, ("config", "runs"), "figure_runs", extra=plot_names)
    device = v["device"]
    fid_metric = FID_MODES[v["fid_mode"] or scale(preset).fid_mode]
    if fid_metric != "fid" and "fid_mode" in spec.options:  # no weights: fail before training anything
        check_feature_space({**FD_METRICS, **HELDOUT_FD_METRICS}[fid_metric], device=device)
    run_root = Path(v["run_root"]) if v["run_root"] else default_run_root()
    fig_dir = Path(v["fig_dir"]) if v["fig_dir"] else default_fig_dir(preset)
    configs = figure_configs(figure, preset, **{k: v[k] for k in parameter_names("config") if k in v})
    runs = ensure_runs(configs, run_root, workers=v["workers"] or default_workers(preset))
    fs = v["feature_space"] or scale(preset).feature_space
    fid_samples = v["fid_samples"] if v["fid_samples"] is not None else scale(preset).fid_samples
    options: dict[str, Any] = {n: v[n] for n in plot_names}
    if "fid_mode" in spec.options:
        options["fid_metric"] = fid_metric
    fd_metric = "fd_dinov2"
    if "{fd}" in spec.metrics:
        fallback = v["fd_fallback"]
        if fallback == "preset":
            fallback = "lenet" if scale(preset).fid_mode == "lenet" else "inception"
        fd_metric, note = resolve_fd_metric(fallback, device)
        options.update(metric=fd_metric, fallback_note=note)
    if any("{fs}" in m for m in spec.metrics):
        options["feature_space"] = fs
    held_out_fd = fid_metric in HELDOUT_FD_METRICS
    names = figure_metrics(figure, fs, fd_metric, fid_metric)
    if any(m in REAL_REFERENCE_METRICS for m in names):  # the same in a network's features, where one applies
        space = real_reference_feature_space(runs, device)
        if space is not None:  # each one whose pixel twin the figure plots
            names += [m for m, twin in zip(real_reference_metrics(space), REAL_REFERENCE_METRICS) if twin in names]
    if spec.last_generation_fid and held_out_fd:
        names.append(fid_metric)  # cheap enough for every generation
    ensure_figure_metrics(runs, names, device=device, fid_samples=fid_samples,
                          workers=v["workers"] or default_workers(preset))
    if "fid_mode" in spec.options and runs:
        options["noise_floor"] = noise_floor(runs[0], fid_metric, fid_samples, device)
    if spec.last_generation_fid:  # FID at the last generation only (Inception on a CPU costs ~0.1 s per image)
        if held_out_fd:
            floor = options["noise_floor"]
            options["fid_reference"] = {"fid": floor["value"], "samples": floor["samples"], "what": floor["what"]}
        else:
            options["fid_reference"] = ensure_last_generation_fid(runs, max_samples=fid_samples, device=device,
                                                                  metric=fid_metric)
    return FigureRuns(figure, runs, fig_dir, run_root, options)
