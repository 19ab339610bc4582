"""The figure batch: execute the figure notebooks with papermill, and the ``figures`` sub-command that does it.

``python -m collapse_utils figures --preset demo [--only F2,F4]`` first trains every missing run of the selected
figures in one parallel pass, then executes the figure notebooks ``notebooks/F*.ipynb`` and ``D*.ipynb`` with papermill (working directory: the
repository), keeps the executed notebooks in ``<fig-dir>/executed/`` with a ``batch_summary.json`` and checks that
every figure wrote its PNG, PDF and data file. A failing notebook is reported with its failing cell; the others
still run, finished runs stay in the store, and the command exits non-zero at the end. The run store and figure
folder are passed to the notebooks (and recorded) relative to the repository when they lie inside it.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .figures import (PARAMETERS, SPECS, default_fig_dir, default_workers, figure_configs, parameter_error,
                      parameter_names)
from ..core.paths import default_run_root, repo_root
from ..loop.store import ensure_runs
from ..core import provenance
from ..core.devices import resolve_device
from .results import read_bundle, redraw, parse_seeds, write_bundle
from .claims import check_claims, registered_run_sets

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- notebooks
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


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it (notebooks execute there), else absolute."""
    root = repo_root().resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def figure_sort_key(figure: str) -> tuple[int, str]:
    """The paper's figures (F2 … F17) by number, then the appendix figures without a number (D1, D5: appendix D)."""
    digits = "".join(ch for ch in figure if ch.isdigit())
    return ((int(digits) if digits else 10**6) + (10**3 if figure.startswith("D") else 0), figure)


def is_figure_notebook(path: Path) -> bool:
    """A figure's notebook is named by its figure id, a capital letter and a number: ``F2.ipynb`` (a figure of the
    paper), ``D1.ipynb`` (appendix D's figure of section D.1); other notebooks (explore_selection) are no figure."""
    stem = path.stem
    return path.suffix == ".ipynb" and stem[:1].isupper() and stem[1:].isdigit()


def discover_notebooks(only: Iterable[str] | None = None, directory: Path | None = None) -> dict[str, Path]:
    """``{figure id: notebook}`` for the figure notebooks of ``notebooks/`` (``F*.ipynb``, ``D*.ipynb``:
    :func:`is_figure_notebook`), restricted to ``only``."""
    directory = directory or notebooks_dir()
    found = {p.stem: p for p in directory.glob("*.ipynb") if is_figure_notebook(p)}
    if only:
        wanted = [f.strip().upper() for f in only if f.strip()]
        missing = [f for f in wanted if f not in found]
        if missing:
            raise ValueError(f"no notebook for {missing} in {directory}; available: {sorted(found, key=figure_sort_key)}")
        found = {f: found[f] for f in wanted}
    return dict(sorted(found.items(), key=lambda kv: figure_sort_key(kv[0])))


# Parameters the batch command sets in every notebook that declares them.
BATCH_PARAMETERS = ("preset", "run_root", "fig_dir", "workers", "device")


def check_parameters(params: dict[str, Any] | None, notebooks: dict[str, Path] | None = None) -> None:
    """Refuse, before any kernel starts or run trains, a parameter no notebook knows (a typo such as ``size`` for
    ``sizes`` would otherwise leave every figure at its default) and a value that cannot be what its name means.
    The known names are those of the one parameter table (:data:`collapse_utils.paper.figures.PARAMETERS`) and any
    other name a chosen notebook's parameters cell declares."""
    params = params or {}
    known = set(PARAMETERS)
    unknown = sorted(set(params) - known)
    if unknown and notebooks:
        known |= {name for path in notebooks.values() for name in notebook_parameters(path)}
        unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown figure parameter(s) {', '.join(unknown)} (--param KEY=VALUE); the parameters "
                         f"are: {', '.join(sorted(known))}")
    bad = [e for k, v in params.items() if (e := parameter_error(k, v))]
    if bad:
        raise ValueError("figure parameter(s) refused: " + "; ".join(bad))


def resolve_dirs(preset: str, run_root: str | os.PathLike | None = None,
                 fig_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """The run store and the figure folder a batch uses: the ones given, else the defaults (absolute)."""
    return (Path(run_root or default_run_root()).resolve(), Path(fig_dir or default_fig_dir(preset)).resolve())


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


def notebook_configs(notebooks: dict[str, Path], params: dict[str, Any],
                     skipped: dict[str, str] | None = None) -> dict[str, list]:
    """``{figure: run configurations}``: what each notebook asks for, its parameters cell's defaults overridden by
    ``params`` (a figure the parameters do not fit is left out, logged, and named in ``skipped`` with why)."""
    out = {}
    for fig, path in notebooks.items():
        if fig not in SPECS:
            continue
        values = {**notebook_defaults(path), **params}
        kwargs = {k: values.get(k) for k in parameter_names("config") if values.get(k) is not None}
        try:
            out[fig] = figure_configs(fig, **kwargs)
        except ValueError as exc:
            log.warning("prefetch: %s skipped (%s)", fig, exc)
            if skipped is not None:
                skipped[fig] = str(exc)
    return out


def prefetch_runs(notebooks: dict[str, Path], params: dict[str, Any], run_root: Path, workers: int) -> str | None:
    """Train every run the selected figures need in one parallel pass (notebooks then only reuse them).

    Returns an error message if some run failed (the others finish and stay in the store), else ``None``.
    """
    configs = [c for cs in notebook_configs(notebooks, params).values() for c in cs]
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


def _relative_papermill_paths(executed: Path) -> None:
    """papermill records the notebook's input and output paths in its metadata; keep them repository-relative."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception as exc:  # not written (kernel never started) or unreadable: nothing to rewrite
        log.debug("executed notebook %s not rewritten: %s", executed, exc)
        return
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = repo_relative(Path(meta[key]).resolve())
    nbformat.write(nb, executed)


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
    _relative_papermill_paths(executed)
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
    if device:
        resolve_device(device)  # a missing CUDA device: one clear error now, not one per notebook
    notebooks = discover_notebooks(only, notebook_dir)
    check_parameters(params, notebooks)  # one clear error now, before any kernel starts
    run_root, fig_dir = resolve_dirs(preset, run_root, fig_dir)
    workers = workers or default_workers(preset)
    # what the notebooks get and the summary records: repository-relative where possible
    shown = {"run_root": repo_relative(run_root), "fig_dir": repo_relative(fig_dir)}
    parameters = {"preset": preset, **shown, "workers": workers,
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
    summary = {"preset": preset, **shown, "parameters": parameters,
               "git_commit": provenance.git_commit(repo_root()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "figures": [dict(figure=r.figure, ok=r.ok, seconds=round(r.seconds, 1), error=r.error,
                                executed=str(r.executed.relative_to(fig_dir)),
                                files=[str(Path(f).relative_to(fig_dir)) for f in r.files]) for r in results]}
    (fig_dir / "executed").mkdir(parents=True, exist_ok=True)
    (fig_dir / "executed" / "batch_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return results


# ---------------------------------------------------------------------------------------------- CLI
def _cmd_from_results(args: argparse.Namespace) -> int:
    """``figures --from-results DIR``: every figure of the bundle (or ``--only``) drawn from it."""
    record = read_bundle(args.from_results, verify=False)
    if args.preset_given and args.preset != record["preset"]:
        raise ValueError(f"{args.from_results} holds {record['preset']}-scale runs; leave out --preset {args.preset}")
    if args.run_root or args.param or args.workers:
        raise ValueError("--from-results draws the bundle as it is: --run-root, --param and --workers do not apply")
    outputs = redraw(args.from_results, fig_dir=args.fig_dir, figures=args.only.split(",") if args.only else None,
                     device=args.device)
    fig_dir = next(iter(outputs.values())).png.parent if outputs else args.fig_dir
    print(f"\n{len(outputs)} figure(s) redrawn from {args.from_results}\nfigures: {fig_dir}", flush=True)
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    if args.from_results:
        return _cmd_from_results(args)
    results = run_batch(args.preset, only=args.only.split(",") if args.only else None, run_root=args.run_root,
                        fig_dir=args.fig_dir, workers=args.workers, device=args.device, params=dict(args.param),
                        prefetch=not args.no_prefetch, timeout=args.timeout, notebook_dir=args.notebook_dir)
    failed = [r for r in results if not r.ok]
    run_root, fig_dir = resolve_dirs(args.preset, args.run_root, args.fig_dir)
    print(f"\n{len(results) - len(failed)}/{len(results)} figure(s) written", flush=True)
    print(f"figures: {fig_dir} (executed notebooks and batch_summary.json in {fig_dir / 'executed'})\n"
          f"run store: {run_root}", flush=True)
    for r in failed:
        print(f"  {r.figure} FAILED: {r.error}\n    executed notebook: {r.executed}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_bundle(args: Any) -> int:
    figures = args.only.split(",") if args.only else None
    write_bundle(args.out, args.preset, run_root=args.run_root, seeds=parse_seeds(args.seeds), figures=figures,
                 device=args.device, claims_metrics=check_claims, extra_runs=registered_run_sets(args.preset))
    return 0
