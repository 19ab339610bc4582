"""The figure notebooks' one call into the package, and the batch command that executes them.

* :func:`figure_runs` is what every notebook calls: it turns the notebook's parameters into the figure's run
  configurations (:mod:`collapse_utils.experiments`), gets them from the run store (training only what is missing,
  :func:`collapse_utils.store.ensure_runs`) and computes the metrics the figure plots but the runs lack
  (FID, FD_DINO, GS/entropy in another feature space). Identical configurations are shared between figures:
  F2, F3, F4, F14 and F17 use the same replace runs; F7–F10, F12, F13 and F15 the same selection runs.
* ``python -m collapse_utils figures --preset demo [--only F2,F4]`` executes ``notebooks/F*.ipynb`` with
  papermill, keeps the executed notebooks in ``<fig-dir>/executed/`` and checks that every figure wrote its PNG,
  PDF and data file. A failing notebook is reported with its failing cell; the others still run, finished runs
  stay in the store, and the command exits non-zero at the end.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .config import PRESETS
from .store import default_run_root, repo_root

if TYPE_CHECKING:  # pragma: no cover
    from .config import RunConfig
    from .loop import RunResult

log = logging.getLogger(__name__)

FD_METRICS = {"fid": "inception", "fd_dinov2": "dinov2"}
SWEEP_METHODS = ("none",)
SELECTION_PARADIGMS = ("replace", "accumulate_subsample")
SELECTION_METHODS = ("none", "threshold", "greedy")


@dataclass(frozen=True)
class FigureSpec:
    """One paper figure: which experiment gives its runs and which metrics it plots.

    Metric names may hold ``{fs}`` (the runs' feature space) or ``{fd}`` (FD_DINO, or its recorded fallback).
    """

    id: str
    title: str
    experiment: str  # size_sweep | selection_grid | ablation_2n | ablation_decay | cfg_experiment
    metrics: tuple[str, ...]
    paradigms: tuple[str, ...] = ("replace",)
    methods: tuple[str, ...] = SWEEP_METHODS
    extra_params: dict[str, Any] = field(default_factory=dict)


SPECS: dict[str, FigureSpec] = {s.id: s for s in (
    FigureSpec("F2", "Generalization score vs generation per dataset size, with generated/nearest-training pairs",
               "size_sweep", ("gs_pixel",), extra_params=dict(pair_size=None, pair_generations=None, n_pairs=6)),
    FigureSpec("F3", "Training-set entropy vs generation, and 2-D SVD projections of real vs generated images",
               "size_sweep", ("entropy_pixel",), extra_params=dict(svd_size=None, svd_generations=None)),
    FigureSpec("F4", "Generalization score (log) vs entropy and vs covariance trace, with Pearson r",
               "size_sweep", ("gs_pixel", "entropy_pixel", "cov_trace")),
    FigureSpec("F7", "Generalization score of vanilla / Threshold Decay Filter / Greedy Selection",
               "selection_grid", ("gs_{fs}",), SELECTION_PARADIGMS, SELECTION_METHODS),
    FigureSpec("F8", "FID of vanilla / Threshold Decay Filter / Greedy Selection",
               "selection_grid", ("fid",), SELECTION_PARADIGMS, SELECTION_METHODS, dict(fid_samples=None)),
    FigureSpec("F9", "Training-set entropy of vanilla / Threshold Decay Filter / Greedy Selection",
               "selection_grid", ("entropy_{fs}",), SELECTION_PARADIGMS, SELECTION_METHODS),
    FigureSpec("F10", "Source proportions of the selected training set (accumulate + selection)",
               "selection_grid", (), ("accumulate_subsample",), ("threshold", "greedy")),
    FigureSpec("F11", "MNIST with classifier-free guidance: samples per digit, training-set entropy, FID",
               "cfg_experiment", ("entropy_pixel",), ("accumulate_subsample",), ("none", "threshold"),
               dict(guidance_scale=2.0, class_selection="per_class", fid_samples=None, grid_generations=None,
                    per_digit=10)),
    FigureSpec("F12", "Ablation: vanilla with 2N images vs selecting N (replace)",
               "ablation_2n", ("fid", "gs_{fs}"), ("replace",), SELECTION_METHODS, dict(fid_samples=None)),
    FigureSpec("F13", "Ablation over the Threshold Decay Filter's decay factor (accumulate)",
               "ablation_decay", ("fid",), ("accumulate_subsample",), ("none", "greedy", "threshold"),
               dict(decays=None, fid_samples=None)),
    FigureSpec("F14", "MNND and covariance trace of the training set vs generation",
               "size_sweep", ("mnnd", "cov_trace")),
    FigureSpec("F15", "Fréchet distance in DINOv2 space, vanilla vs Greedy Selection",
               "selection_grid", ("{fd}",), SELECTION_PARADIGMS, ("none", "greedy"),
               dict(fd_fallback="inception", fid_samples=None)),
    FigureSpec("F17", "Grids of generated images over generations (replace)",
               "size_sweep", ("gs_pixel",), extra_params=dict(max_generations=6, grid=8)),
)}


# ---------------------------------------------------------------------------------------------- paths
def default_fig_dir(preset: str) -> Path:
    """``figures/`` for the demo (the committed set), ``figures/<preset>`` for the other presets."""
    return repo_root() / ("figures" if preset == "demo" else f"figures/{preset}")


def default_workers(preset: str) -> int:
    """Two worker processes on a CPU (1.4–1.6× faster than one, benchmarks/demo_findings.md); one on a GPU."""
    return 1 if preset == "paper" else 2


# ---------------------------------------------------------------------------------------------- configurations
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


def figure_configs(
    figure: str,
    preset: str = "demo",
    *,
    dataset: str | Sequence[str] | None = None,
    sizes: int | Sequence[int] | None = None,
    generations: int | None = None,
    paradigms: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    feature_space: str | None = None,
    seeds: Sequence[int] = (0,),
    device: str | None = None,
    decays: Sequence[float] | None = None,
    guidance_scale: float | None = None,
    class_selection: str | None = None,
) -> list["RunConfig"]:
    """The run configurations of ``figure`` at ``preset``; ``None`` means the preset's value (experiments.SCALES).

    ``guidance_scale`` and ``class_selection`` are F11's (default 2 and per_class, see RunConfig).
    """
    from . import experiments as E

    spec = SPECS[figure]
    paradigms = tuple(paradigms or spec.paradigms)
    methods = tuple(methods or spec.methods)
    common: dict[str, Any] = dict(generations=generations, seeds=tuple(seeds), device=device)
    out: list[RunConfig] = []
    if spec.experiment == "size_sweep":
        if methods != SWEEP_METHODS:
            raise ValueError(f"{figure} plots vanilla runs only (methods=['none']); got {list(methods)}")
        for ds in _datasets(dataset):
            for p in paradigms:
                out += E.size_sweep(preset, dataset=ds, sizes=[sizes] if isinstance(sizes, int) else sizes,
                                    paradigm=p, **common)
        return out
    if spec.experiment == "cfg_experiment":
        return cfg_figure_configs(preset, dataset=dataset, sizes=sizes, paradigms=paradigms, methods=methods,
                                  feature_space=feature_space, guidance_scale=guidance_scale,
                                  class_selection=class_selection, **common)
    sel = dict(feature_space=feature_space, n=_single_size(sizes), **common)
    if spec.experiment == "selection_grid":
        return E.selection_grid(preset, datasets=None if dataset is None else [d for d in _datasets(dataset)],
                                paradigms=paradigms, methods=methods, **sel)
    for ds in _datasets(dataset):
        if spec.experiment == "ablation_2n":
            out += E.ablation_2n(preset, dataset=ds, methods=methods, **sel)
        elif spec.experiment == "ablation_decay":
            out += E.ablation_decay(preset, dataset=ds, decays=decays, **sel)
        else:  # pragma: no cover - SPECS is static
            raise ValueError(f"unknown experiment {spec.experiment!r}")
    return out


# ---------------------------------------------------------------------------------------------- metrics
@functools.lru_cache(maxsize=4)
def dinov2_unavailable_reason(device: str | None = None) -> str | None:
    """``None`` when DINOv2 features can be computed here, else the reason (weights missing offline, …)."""
    import numpy as np

    from .features import FeatureSpaceUnavailableError, extract_features

    try:
        extract_features(np.zeros((1, 8, 8, 3), np.uint8), "dinov2", device=device)
    except FeatureSpaceUnavailableError as exc:
        return str(exc)
    return None


def resolve_fd_metric(fd_fallback: str | None, device: str | None = None) -> tuple[str, str | None]:
    """F15's metric: ``("fd_dinov2", None)``, or ``("fid", note)`` when DINOv2 is unavailable and the caller asked
    for the Inception fallback (``fd_fallback="inception"``); otherwise the DINOv2 error is raised."""
    reason = dinov2_unavailable_reason(device)
    if reason is None:
        return "fd_dinov2", None
    if fd_fallback != "inception":
        from .features import FeatureSpaceUnavailableError

        raise FeatureSpaceUnavailableError(f"{reason}\nF15: pass fd_fallback='inception' to plot the Fréchet "
                                           "distance in the FID Inception's pool3 space instead (recorded on the figure).")
    return "fid", ("FALLBACK: DINOv2 weights are unavailable here, so this is the Fréchet distance in the FID "
                   "Inception's pool3 space (= FID), not FD_DINO")


def _fd_sample_count(g: Any, cap: int | None) -> int:
    total = int(g.metrics.get("num_samples") or len(g.samples))
    return total if cap is None else min(cap, total)


def ensure_fd(runs: Sequence["RunResult"], metric: str, *, max_samples: int | None = None,
              device: str | None = None, method: str = "eigh") -> None:
    """Compute a missing Fréchet-distance metric (``fid`` or ``fd_dinov2``) for every generation and store it.

    Same definition as :func:`collapse_utils.metrics.generation_metrics` (samples G_n vs the run's first n real
    images), but real features are extracted once per distinct real set, and the matrix square root uses
    ``frechet_distance(method="eigh")`` (exact; agrees with scipy's ``sqrtm`` to ~1e-8 relative, seconds instead
    of ~30 s per value on a 2-core CPU). ``max_samples`` caps both sets (``None``: the run's n, as the authors
    cap G_n at 32,768 = n); the count used is stored as ``<metric>_samples`` and a value computed with another
    count is recomputed.
    """
    from . import io as cio
    from .features import extract_features
    from .metrics import frechet_distance

    space = FD_METRICS[metric]
    real_cache: dict[tuple[str, int], Any] = {}
    for r in runs:
        cap = r.config.n if max_samples is None else int(max_samples)
        todo = [g for g in r.generations
                if metric not in g.metrics or g.metrics.get(f"{metric}_samples", g.metrics.get("num_samples"))
                != _fd_sample_count(g, cap)]
        if not todo:
            continue
        real = r.real_images()[: r.config.n][:cap]
        key = (hashlib.sha1(real.tobytes()).hexdigest(), len(real))
        if key not in real_cache:
            real_cache[key] = extract_features(real, space, device=device)
        for g in todo:
            k = _fd_sample_count(g, cap)
            gen = extract_features(g.samples[:k], space, device=device)
            g.metrics[metric] = frechet_distance(gen, real_cache[key], method=method)
            g.metrics[f"{metric}_samples"] = k
            cio.atomic_write_json(g.dir / "metrics.json", g.metrics)


def ensure_figure_metrics(runs: Sequence["RunResult"], names: Iterable[str], *, device: str | None = None,
                          fid_samples: int | None = None) -> None:
    """Make sure every generation of ``runs`` has the metrics ``names`` (computed from stored artifacts)."""
    names = list(dict.fromkeys(names))
    other = [m for m in names if m not in FD_METRICS]
    if other:
        for r in runs:
            r.ensure_metrics(other, device=device)
    for m in names:
        if m in FD_METRICS:
            ensure_fd(runs, m, max_samples=fid_samples, device=device)


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


def figure_runs(
    figure: str,
    *,
    preset: str = "demo",
    dataset: str | Sequence[str] | None = None,
    sizes: int | Sequence[int] | None = None,
    generations: int | None = None,
    paradigms: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    feature_space: str | None = None,
    seeds: Sequence[int] = (0,),
    device: str | None = None,
    run_root: str | os.PathLike | None = None,
    fig_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    decays: Sequence[float] | None = None,
    fid_samples: int | None = None,
    fd_fallback: str | None = "inception",
    guidance_scale: float | None = None,
    class_selection: str | None = None,
) -> FigureRuns:
    """The finished runs of ``figure`` with the metrics it plots, training and measuring only what is missing."""
    from .experiments import scale
    from .store import ensure_runs

    if figure not in SPECS:
        raise ValueError(f"unknown figure {figure!r}; choose one of {sorted(SPECS)}")
    run_root = Path(run_root) if run_root else default_run_root()
    fig_dir = Path(fig_dir) if fig_dir else default_fig_dir(preset)
    configs = figure_configs(figure, preset, dataset=dataset, sizes=sizes, generations=generations,
                             paradigms=paradigms, methods=methods, feature_space=feature_space, seeds=seeds,
                             device=device, decays=decays, guidance_scale=guidance_scale,
                             class_selection=class_selection)
    runs = ensure_runs(configs, run_root, workers=workers or default_workers(preset))
    fs = feature_space or scale(preset).feature_space
    options: dict[str, Any] = {}
    fd_metric = "fd_dinov2"
    if "{fd}" in SPECS[figure].metrics:
        fd_metric, note = resolve_fd_metric(fd_fallback, device)
        options.update(metric=fd_metric, fallback_note=note)
    if figure in ("F7", "F9", "F12"):
        options["feature_space"] = fs
    ensure_figure_metrics(runs, figure_metrics(figure, fs, fd_metric), device=device, fid_samples=fid_samples)
    if figure == "F11":  # FID at the last generation only (Inception on a CPU costs ~0.1 s per image)
        options["fid_reference"] = ensure_last_generation_fid(runs, max_samples=fid_samples, device=device)
    return FigureRuns(figure, runs, fig_dir, run_root, options)


# ---------------------------------------------------------------------------------------------- batch execution
@dataclass
class NotebookResult:
    figure: str
    ok: bool
    seconds: float
    executed: Path
    files: list[str]
    error: str | None = None


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def figure_sort_key(figure: str) -> tuple[int, str]:
    digits = "".join(ch for ch in figure if ch.isdigit())
    return (int(digits) if digits else 10**6, figure)


def discover_notebooks(only: Iterable[str] | None = None, directory: Path | None = None) -> dict[str, Path]:
    """``{figure id: notebook}`` for ``notebooks/F*.ipynb`` (restricted to ``only``)."""
    directory = directory or notebooks_dir()
    found = {p.stem: p for p in directory.glob("F*.ipynb")}
    if only:
        wanted = [f.strip().upper() for f in only if f.strip()]
        missing = [f for f in wanted if f not in found]
        if missing:
            raise ValueError(f"no notebook for {missing} in {directory}; available: {sorted(found, key=figure_sort_key)}")
        found = {f: found[f] for f in wanted}
    return dict(sorted(found.items(), key=lambda kv: figure_sort_key(kv[0])))


# Parameters the batch command sets in every notebook that declares them.
BATCH_PARAMETERS = ("preset", "run_root", "fig_dir", "workers", "device")


def notebook_parameters(path: Path) -> set[str]:
    """The names in a notebook's ``parameters`` cell."""
    import papermill as pm

    return set(pm.inspect_notebook(str(path)))


def notebook_defaults(path: Path) -> dict[str, Any]:
    """The parameters cell's values of a notebook (python literals only)."""
    import papermill as pm

    out = {}
    for name, info in pm.inspect_notebook(str(path)).items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            log.debug("parameter %s of %s is not a literal; skipped", name, path)
    return out


_CONFIG_PARAMS = ("preset", "dataset", "sizes", "generations", "paradigms", "methods", "feature_space", "seeds",
                  "device", "decays", "guidance_scale", "class_selection")


def prefetch_runs(notebooks: dict[str, Path], params: dict[str, Any], run_root: Path, workers: int) -> str | None:
    """Train every run the selected figures need in one parallel pass (notebooks then only reuse them).

    Returns an error message if some run failed (the others finish and stay in the store), else ``None``.
    """
    from .store import ensure_runs

    configs = []
    for fig, path in notebooks.items():
        if fig not in SPECS:
            continue
        values = {**notebook_defaults(path), **params}
        kwargs = {k: values.get(k) for k in _CONFIG_PARAMS if values.get(k) is not None}
        try:
            configs += figure_configs(fig, **kwargs)
        except ValueError as exc:
            log.warning("prefetch: %s skipped (%s)", fig, exc)
    if not configs:
        return None
    print(f"prefetch: {len({c.run_key() for c in configs})} distinct run(s) for {len(notebooks)} figure(s) "
          f"in {run_root} with {workers} worker(s)", flush=True)
    try:
        ensure_runs(configs, run_root, workers=workers)
    except Exception as exc:  # a failed run is reported; its notebook will retry and report the cell
        return f"{type(exc).__name__}: {exc}"
    return None


def expected_files(fig_dir: Path, figure: str) -> dict[str, Path]:
    return {"png": fig_dir / f"{figure}.png", "pdf": fig_dir / f"{figure}.pdf", "csv": fig_dir / f"{figure}.csv",
            "json": fig_dir / f"{figure}.json"}


def _check_outputs(fig_dir: Path, figure: str, since: float) -> tuple[list[str], str | None]:
    files = expected_files(fig_dir, figure)
    fresh = {k: p for k, p in files.items() if p.exists() and p.stat().st_mtime >= since - 1}
    missing = [k for k in ("png", "pdf") if k not in fresh]
    if "csv" not in fresh and "json" not in fresh:
        missing.append("csv/json")
    written = sorted(str(p) for p in fig_dir.glob(f"{figure}[._]*") if p.stat().st_mtime >= since - 1)
    return written, (f"the notebook ran but did not write {', '.join(missing)}" if missing else None)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failing_line(exc: Any) -> str:
    """The cell's line that raised: IPython marks it ``----> N code`` in the first frame of the traceback;
    without such a mark, the cell's first line."""
    for line in _ANSI.sub("", "\n".join(exc.traceback or [])).splitlines():
        if line.lstrip().startswith("---->"):
            return line.split("---->", 1)[1].strip().split(" ", 1)[-1].strip()
    return next((line for line in (exc.source or "").splitlines() if line.strip()), "")


def execute_figure(figure: str, notebook: Path, parameters: dict[str, Any], fig_dir: Path,
                   timeout: int | None = None) -> NotebookResult:
    """Execute one notebook with papermill; a failure is reported with its cell, never raised."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    executed = fig_dir / "executed" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    error = None
    try:
        pm.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name="python3",
                            cwd=str(repo_root()), progress_bar=False, execution_timeout=timeout)
    except PapermillExecutionError as exc:
        error = f"cell {exc.cell_index} (`{_failing_line(exc)[:80]}`) failed: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, unreadable notebook
        error = f"{type(exc).__name__}: {exc}"
    files, missing = _check_outputs(fig_dir, figure, start)
    error = error or missing
    return NotebookResult(figure, error is None, time.time() - start, executed, files, error)


def run_batch(
    preset: str = "demo",
    *,
    only: Iterable[str] | None = None,
    run_root: str | os.PathLike | None = None,
    fig_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    device: str | None = None,
    params: dict[str, Any] | None = None,
    prefetch: bool = True,
    timeout: int | None = None,
    notebook_dir: Path | None = None,
) -> list[NotebookResult]:
    """Execute the figure notebooks at ``preset`` (see the module docstring); returns one result per figure."""
    from . import io as cio
    from .devices import resolve_device

    if device:
        resolve_device(device)  # a missing CUDA device: one clear error now, not one per notebook
    run_root = Path(run_root or default_run_root()).resolve()
    fig_dir = Path(fig_dir or default_fig_dir(preset)).resolve()
    workers = workers or default_workers(preset)
    notebooks = discover_notebooks(only, notebook_dir)
    parameters = {"preset": preset, "run_root": str(run_root), "fig_dir": str(fig_dir), "workers": workers,
                  **({"device": device} if device else {}), **(params or {})}
    prefetch_error = prefetch_runs(notebooks, parameters, run_root, workers) if prefetch else None
    if prefetch_error:
        print(f"prefetch: some runs failed ({prefetch_error}); their notebooks will report it", flush=True)
    results = []
    for fig, path in notebooks.items():
        print(f"{fig}: executing {path.name} …", flush=True)
        declared = notebook_parameters(path)
        dropped = sorted(set(parameters) - set(declared) - set(BATCH_PARAMETERS))
        if dropped:
            print(f"{fig}: the notebook has no parameter(s) {dropped}; not passed", flush=True)
        res = execute_figure(fig, path, {k: v for k, v in parameters.items() if k in declared}, fig_dir, timeout)
        print(f"{fig}: {'ok' if res.ok else 'FAILED — ' + str(res.error)} ({res.seconds:.0f} s)", flush=True)
        results.append(res)
    summary = {"preset": preset, "run_root": str(run_root), "fig_dir": str(fig_dir), "parameters": parameters,
               "git_commit": cio.git_commit(repo_root()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "figures": [dict(figure=r.figure, ok=r.ok, seconds=round(r.seconds, 1), error=r.error,
                                executed=str(r.executed.relative_to(fig_dir)),
                                files=[str(Path(f).relative_to(fig_dir)) for f in r.files]) for r in results]}
    (fig_dir / "executed").mkdir(parents=True, exist_ok=True)
    (fig_dir / "executed" / "batch_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results


# ---------------------------------------------------------------------------------------------- CLI
def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value
    return key.strip(), _tuples_to_lists(parsed)


def _tuples_to_lists(value: Any) -> Any:
    """``sizes=64,256`` parses as a tuple, which papermill would pass on as the string "(64, 256)"."""
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    return value


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("figures", help="execute the figure notebooks with papermill and write the figures",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=PRESETS, default="demo")
    p.add_argument("--only", help="comma-separated figure ids, e.g. F2,F4 (default: every notebooks/F*.ipynb)")
    p.add_argument("--run-root", help="the run store (default: $COLLAPSE_RUNS or <repo>/runs)")
    p.add_argument("--fig-dir", help="where figures go (default: figures/ for demo, figures/<preset> otherwise)")
    p.add_argument("--workers", type=int, help="parallel training processes (default: 2 on CPU presets, 1 for paper)")
    p.add_argument("--device", help="torch device for training and metrics (default: CUDA if available)")
    p.add_argument("--param", action="append", default=[], type=_parse_param, metavar="KEY=VALUE",
                   help="a notebook parameter for every notebook, as a python literal (e.g. sizes=[64,256])")
    p.add_argument("--no-prefetch", action="store_true", help="let each notebook train its own runs")
    p.add_argument("--timeout", type=int, help="per-cell timeout in seconds")
    p.add_argument("--notebook-dir", type=Path, help="run the F*.ipynb of another folder (default: <repo>/notebooks)")
    p.set_defaults(func=_cmd_figures)


def _cmd_figures(args: argparse.Namespace) -> int:
    results = run_batch(args.preset, only=args.only.split(",") if args.only else None, run_root=args.run_root,
                        fig_dir=args.fig_dir, workers=args.workers, device=args.device, params=dict(args.param),
                        prefetch=not args.no_prefetch, timeout=args.timeout, notebook_dir=args.notebook_dir)
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} figure(s) written", flush=True)
    for r in failed:
        print(f"  {r.figure} FAILED: {r.error}\n    executed notebook: {r.executed}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------- F11 (issue 8)
def cfg_figure_configs(preset: str, *, dataset: str | Sequence[str] | None = None,
                       sizes: int | Sequence[int] | None = None, paradigms: Sequence[str] = ("accumulate_subsample",),
                       methods: Sequence[str] = ("none", "threshold"), feature_space: str | None = None,
                       guidance_scale: float | None = None, class_selection: str | None = None,
                       **common: Any) -> list["RunConfig"]:
    """F11's runs (:func:`collapse_utils.experiments.cfg_experiment`): unconditional, CFG, CFG + the one selection
    method in ``methods`` besides ``none``, under the single paradigm in ``paradigms``."""
    from . import experiments as E

    chosen = [m for m in methods if m != "none"]
    if len(chosen) != 1 or len(paradigms) != 1 or (dataset is not None and len(_datasets(dataset)) != 1):
        raise ValueError(f"F11 compares CFG with one selection method under one paradigm on one dataset; got "
                         f"methods={list(methods)}, paradigms={list(paradigms)}, dataset={dataset!r}")
    return E.cfg_experiment(preset, dataset=_datasets(dataset)[0], n=_single_size(sizes), paradigm=paradigms[0],
                            selection=chosen[0], feature_space=feature_space,
                            guidance_scale=2.0 if guidance_scale is None else guidance_scale,
                            class_selection=class_selection or "per_class", **common)


def held_out_real(cfg: "RunConfig", count: int) -> "Any | None":
    """``count`` real images the run never saw (the next ones of the same seeded draw), or ``None`` if the dataset
    has no more (e.g. the bundled 12,000-image MNIST at n = 12,000)."""
    import numpy as np

    from .data import load_dataset
    from .loop import real_images_needed

    used = real_images_needed(cfg)
    try:
        ds = load_dataset(cfg.dataset, used + count, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                          root=cfg.data_root, resize_method=cfg.resize_method)
        ref = load_dataset(cfg.dataset, used, seed=cfg.seed, resolution=cfg.resolution, channels=cfg.channels,
                           root=cfg.data_root, resize_method=cfg.resize_method)
    except (ValueError, OSError) as exc:
        log.info("no held-out real images for the FID reference: %s", exc)
        return None
    if not np.array_equal(ds.indices[:used], ref.indices):  # a larger draw must extend the run's own
        return None
    return ds.images[used:used + count]


def ensure_last_generation_fid(runs: Sequence["RunResult"], *, max_samples: int | None = None,
                               device: str | None = None) -> dict[str, Any] | None:
    """FID of each run's last generation against its first n real images, stored as ``fid`` / ``fid_samples`` in
    that generation's metrics.json (the convention of :func:`ensure_fd`, so F8 reuses it and vice versa).

    Only the last generation: F11 reports FID there ([PN]: "FID at Iter. 8"). ``max_samples`` caps both sets
    (``None``: the run's n). The Fréchet distance uses the exact ``eigh`` form (seconds instead of ~30 s for 2048-d
    on a CPU; equal to scipy's sqrtm to ~1e-8). Returns the sample-size floor: FID of as many held-out real images
    against the same real set (``None`` where the dataset has no held-out images), cached in the first run's
    ``real/`` folder.
    """
    from . import io as cio
    from .features import extract_features
    from .metrics import frechet_distance

    real_cache: dict[tuple[str, int], Any] = {}
    reference = None

    def real_features(r: "RunResult", cap: int) -> tuple[Any, Any]:
        real = r.real_images()[: r.config.n][:cap]
        key = (hashlib.sha1(real.tobytes()).hexdigest(), len(real))
        if key not in real_cache:
            real_cache[key] = extract_features(real, "inception", device=device)
        return real, real_cache[key]

    for r in runs:
        if not r.generations:
            continue
        g = r.generations[-1]
        cap = r.config.n if max_samples is None else int(max_samples)
        k = _fd_sample_count(g, cap)
        if "fid" not in g.metrics or g.metrics.get("fid_samples", g.metrics.get("num_samples")) != k:
            _, feats = real_features(r, cap)
            g.metrics["fid"] = frechet_distance(extract_features(g.samples[:k], "inception", device=device), feats,
                                                method="eigh")
            g.metrics["fid_samples"] = k
            cio.atomic_write_json(g.dir / "metrics.json", g.metrics)
    if runs and runs[0].generations:
        r = runs[0]
        cap = r.config.n if max_samples is None else int(max_samples)
        count = min(cap, r.config.n)
        path = r.run_dir / "real" / f"fid_reference_{count}.json"
        try:
            reference = cio.read_json(path)
        except (cio.CorruptArtifactError, FileNotFoundError):
            held = held_out_real(r.config, count)
            if held is not None and len(held) == count:
                _, feats = real_features(r, cap)
                reference = {"fid": frechet_distance(extract_features(held, "inception", device=device), feats,
                                                     method="eigh"),
                             "samples": count, "what": "FID of held-out real images against the run's real set"}
                cio.atomic_write_json(path, reference)
    return reference

