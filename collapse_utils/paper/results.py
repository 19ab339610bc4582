"""The results bundle: a figure set's runs without their models, small enough to commit, from which every figure
and the claims table are redrawn in seconds with no training.

A bundle is one folder (the one owner of its layout is this module)::

    BUNDLE/BUNDLE.json     what made it: preset, seeds, figures and their runs, the git commit(s) of the code that
                           trained the runs and of the code that wrote the bundle, package versions, the sha256 and
                           size of every file below
    BUNDLE/metrics.csv     every metric of every run and generation (one row per run × generation), for readers
    BUNDLE/store/<run>/    each run as a weights-free copy (:func:`collapse_utils.loop.rundir.copy_results`): config,
                           real set, and per generation the training set, samples, metrics (held-out ones
                           included) and training log; no weights, checkpoints or held-out samples

:func:`write_bundle` makes it from a run store whose runs are finished (it computes the metrics the figures need,
as the figure notebooks would, and trains nothing); :func:`redraw` draws the figures from it with the same code
the notebooks run (:func:`collapse_utils.paper.figures.figure_runs` on the bundle's store, then the figure's plotting
function) and checks afterwards that nothing in the bundle was written. The demo-scale bundle of the committed
figures lives in ``results/demo/``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..core.io import file_sha256
from ..core.paths import default_run_root, repo_root
from ..core.presets import scale
from ..core.provenance import git_commit, installed_versions, package_versions
from ..loop import rundir, store
from . import plotting
from .figures import SPECS, default_fig_dir, figure_configs, figure_runs


BUNDLE_FILE = "BUNDLE.json"
METRICS_FILE = "metrics.csv"
STORE = "store"
FORMAT = 1
# Metric-record entries that are bookkeeping rather than measurements: kept in the store's metrics.json, flattened
# to JSON text in metrics.csv.
_NESTED = ("source_counts", "timings", "heldout_sources")


class BundleError(ValueError):
    """A results bundle that is missing, damaged, or lacks what a figure needs."""


def default_bundle_dir(preset: str) -> Path:
    """``results/<preset>`` in the repository: where the committed bundle of a preset lives."""
    return repo_root() / "results" / preset


def store_dir(bundle: str | os.PathLike) -> Path:
    """The bundle's weights-free run store."""
    return Path(bundle) / STORE


def _figure_ids(figures: Sequence[str] | None) -> list[str]:
    ids = list(SPECS) if figures is None else list(figures)
    unknown = [f for f in ids if f not in SPECS]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {', '.join(SPECS)}")
    return ids


def figure_seeds(preset: str, seeds: Any, figures: Sequence[str] | None) -> dict[str, list[int]]:
    """The seeds of each figure: one list for all (None: the preset's), or a dict by figure id (figures it does not
    name take the preset's)."""
    default = list(scale(preset).seeds)
    ids = _figure_ids(figures)
    if isinstance(seeds, dict):
        return {f: [int(s) for s in seeds.get(f, default)] for f in ids}
    return {f: [int(s) for s in (default if seeds is None else seeds)] for f in ids}


def figure_set(preset: str, seeds: dict[str, list[int]]) -> dict[str, list[Any]]:
    """Each figure's run configurations at ``preset`` and its seeds."""
    return {f: figure_configs(f, preset, seeds=list(s)) for f, s in seeds.items()}


def _sha256(path: Path) -> str:
    return file_sha256(path)


def _files(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder`` but BUNDLE.json: relative path -> sha256 and size, in sorted order."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != BUNDLE_FILE:
            out[p.relative_to(folder).as_posix()] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
    return out


def metrics_csv(runs: Sequence[Any]) -> str:
    """One row per run × generation: the run's identifying fields, then every metric (sorted), nested records as
    JSON text; runs in the given order."""
    rows = []
    for r in runs:
        for row in r.metrics_table():
            rows.append({k: (json.dumps(v, sort_keys=True) if k in _NESTED or isinstance(v, (dict, list)) else v)
                         for k, v in row.items()})
    head = ["run", "dataset", "n", "paradigm", "selection", "feature_space", "seed", "decay", "generation"]
    rest = sorted({k for row in rows for k in row} - set(head))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=head + rest, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in head + rest})
    return buf.getvalue()


def common_seeds(per_figure: Mapping[str, Sequence[int]]) -> list[int]:
    """The seeds most figures of a bundle hold (ties: the longer list), e.g. ``[0, 1, 2]`` when only F8 has more."""
    counts: dict[tuple[int, ...], int] = {}
    for v in per_figure.values():
        counts[tuple(v)] = counts.get(tuple(v), 0) + 1
    return list(max(counts, key=lambda v: (counts[v], len(v)))) if counts else []


def write_bundle(out: str | os.PathLike, preset: str = "demo", *, run_root: str | os.PathLike | None = None,
                 seeds: Any = None, figures: Sequence[str] | None = None,
                 device: str | None = None, log: Any = print,
                 claims_metrics: Any = None, extra_runs: Any = None) -> dict[str, Any]:
    """Write the results bundle of ``figures`` (None: all) at ``preset`` and ``seeds`` (one list for every figure,
    or a dict by figure id; None: the preset's) from the run store ``run_root`` into ``out`` (replaced whole);
    returns its BUNDLE.json record.

    Every run must be finished (a BundleError names those that are not and the command that trains them). The
    metrics each figure plots are computed first where the runs lack them, exactly as the figure notebooks do
    (:func:`collapse_utils.paper.figures.figure_runs`; held-out metrics draw their samples from the saved models here,
    which is why a bundle is written from the full store and not from another bundle). When every figure is
    bundled, ``claims_metrics(preset, run_root=, seeds=, device=)`` (the `bundle` command passes
    :func:`collapse_utils.paper.claims.check_claims`) computes the metrics the claims table reads as well, and
    ``extra_runs`` (``{name: (seeds, configs)}``; the `bundle` command passes the runs of the claims registered
    before their data, :func:`collapse_utils.paper.claims.registered_run_sets`) are bundled beside the figures'
    runs, listed under ``extra`` in BUNDLE.json.
    """
    t0 = time.perf_counter()
    root = Path(run_root) if run_root is not None else default_run_root()
    per_figure = figure_seeds(preset, seeds, figures)
    sets = figure_set(preset, per_figure)
    everything = set(sets) == set(_figure_ids(None))
    extra = {name: ([int(s) for s in seeds_], list(configs))
             for name, (seeds_, configs) in (extra_runs or {}).items()} if everything else {}
    unique: dict[str, Any] = {}
    for configs in [*sets.values(), *(cs for _, cs in extra.values())]:
        for c in configs:
            unique.setdefault(c.run_key(), c)
    missing = [store.run_name(c) for c in unique.values() if not store.is_finished(c, root)]
    if missing:
        first = next((f for f, cs in sets.items() if any(store.run_name(c) == missing[0] for c in cs)), None)
        if first is None:
            name, (seeds_, _) = next((k, v) for k, v in extra.items()
                                     if any(store.run_name(c) == missing[0] for c in v[1]))
            raise BundleError(f"{len(missing)} of {len(unique)} runs are not finished in {root} (first: "
                              f"{missing[0]}, of the {name}, seeds {seeds_}); train them first (the claims table "
                              "names each one's figure command)")
        raise BundleError(f"{len(missing)} of {len(unique)} runs are not finished in {root} (first: {missing[0]}); "
                          f"train them first: python -m collapse_utils figures --preset {preset} --only {first} "
                          f"--param 'seeds={per_figure[first]}' --run-root {root}")
    out = Path(out)
    with_runs: dict[str, dict[str, Any]] = {}
    for fig in sets:
        log(f"bundle: {fig}: metrics of {len(sets[fig])} run(s)")
        fr = figure_runs(fig, preset, run_root=str(root), seeds=per_figure[fig], device=device)
        with_runs[fig] = {"seeds": per_figure[fig], "runs": [r.run_dir.name for r in fr.runs]}
    if claims_metrics is not None and everything:  # the claims table reads these runs too
        log("bundle: metrics of the claims table")
        claims_metrics(preset, run_root=root, seeds=common_seeds(per_figure), figure_seeds=per_figure, device=device)
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / STORE).mkdir(parents=True)
    runs = []
    for c in unique.values():
        src = store.run_dir_for(c, root)
        rundir.copy_results(src, tmp / STORE / src.name)
        runs.append(rundir.load_run(tmp / STORE / src.name))
    (tmp / METRICS_FILE).write_text(metrics_csv(runs), encoding="utf-8")
    trained_by = sorted({s.get("git_commit") or "unknown" for r in runs
                         for s in json.loads((r.run_dir / "manifest.json").read_text()).get("sessions", [])})
    files = _files(tmp)
    record = {
        "format": FORMAT,
        "what": "a weights-free results bundle: python -m collapse_utils figures --from-results DIR redraws the "
                "figures and claims --from-results DIR the claims table, with no training",
        "preset": preset,
        "figures": with_runs,
        "extra": {name: {"seeds": seeds_, "runs": sorted(store.run_name(c) for c in configs)}
                  for name, (seeds_, configs) in extra.items()},
        "runs": len(runs),
        "generations": sum(len(r.generations) for r in runs),
        "trained_by_commit": trained_by,
        "written_by_commit": git_commit(),
        "written": time.strftime("%Y-%m-%d %H:%M %Z"),
        "versions": {**package_versions(), **drawing_versions()},
        "bytes": sum(f["bytes"] for f in files.values()),
        "files": files,
    }
    (tmp / BUNDLE_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log(f"bundle: wrote {out}: {len(runs)} runs, {record['generations']} generations, "
        f"{record['bytes'] / 1e6:.1f} MB in {len(files) + 1} files ({time.perf_counter() - t0:.0f} s)")
    return record


def drawing_versions() -> dict[str, str | None]:
    """The packages whose versions a figure file's bytes depend on: matplotlib (every pixel and PDF operator, with
    the FreeType it bundles), fonttools (the font subsets embedded in a PDF) and Pillow (the PNG encoder). The
    figures' data (CSV/JSON) depend on none of them."""
    return installed_versions(("matplotlib", "fonttools", "pillow"))


def read_bundle(bundle: str | os.PathLike, *, verify: bool = True) -> dict[str, Any]:
    """The bundle's BUNDLE.json record; with ``verify``, every file listed is checked against its sha256 and no
    file may be missing or extra (a BundleError names the first that differs)."""
    bundle = Path(bundle)
    path = bundle / BUNDLE_FILE
    if not path.exists():
        raise BundleError(f"{bundle} is not a results bundle (no {BUNDLE_FILE}); write one with "
                          "python -m collapse_utils bundle --preset demo --out DIR")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != FORMAT:
        raise BundleError(f"{path}: bundle format {record.get('format')!r}, this version reads {FORMAT}")
    if verify:
        check_unchanged(bundle, record)
    return record


def check_unchanged(bundle: str | os.PathLike, record: dict[str, Any]) -> None:
    """Raise BundleError unless the bundle's files are exactly those its record lists, with their sha256."""
    now = _files(Path(bundle))
    listed = record["files"]
    extra, gone = sorted(set(now) - set(listed)), sorted(set(listed) - set(now))
    changed = sorted(k for k in set(now) & set(listed) if now[k]["sha256"] != listed[k]["sha256"])
    if extra or gone or changed:
        what = "; ".join(f"{label}: {names[:3]}" for label, names in
                         (("changed", changed), ("missing", gone), ("unlisted", extra)) if names)
        raise BundleError(f"{bundle} differs from its {BUNDLE_FILE} ({what})")


def plot_function(figure: str) -> Any:
    """The plotting function of ``figure`` (``plotting.plot_f2`` for F2): the one the figure's notebook calls."""
    return plotting.PLOTTERS[figure]


def redraw(bundle: str | os.PathLike, *, fig_dir: str | os.PathLike | None = None,
           figures: Sequence[str] | None = None, device: str | None = None, log: Any = print) -> dict[str, Any]:
    """Draw ``figures`` (None: every figure the bundle holds) from the bundle into ``fig_dir`` (None: the preset's
    figure folder, ``figures/`` for demo) with the notebooks' own calls; trains and samples nothing. Returns
    ``{figure: FigureOutput}``. A BundleError if the bundle is damaged, lacks a figure, or was written to while
    drawing (a metric the figure needs was missing from it)."""
    bundle = Path(bundle)
    record = read_bundle(bundle)
    preset = record["preset"]
    ids = [f for f in _figure_ids(None) if f in record["figures"]] if figures is None else _figure_ids(figures)
    lacking = [f for f in ids if f not in record["figures"]]
    if lacking:
        raise BundleError(f"{bundle} holds no runs for {lacking}; it has {', '.join(record['figures'])}")
    out_dir = Path(fig_dir) if fig_dir is not None else default_fig_dir(preset)
    outputs = {}
    for fig in ids:
        t0 = time.perf_counter()
        held = record["figures"][fig]
        fr = figure_runs(fig, preset, run_root=str(store_dir(bundle)), seeds=held["seeds"], fig_dir=str(out_dir),
                         device=device, workers=1)
        names = sorted(r.run_dir.name for r in fr.runs)
        if names != sorted(held["runs"]):
            raise BundleError(f"{fig}: the bundle lists other runs than the figure's configurations give "
                              "(written by another version?)")
        outputs[fig] = plot_function(fig)(fr.runs, fr.fig_dir, **fr.plot_options)
        log(f"redraw: {fig} -> {out_dir} ({time.perf_counter() - t0:.1f} s)")
    check_unchanged(bundle, record)
    return outputs


# ---------------------------------------------------------------------------------------------- CLI
def parse_seeds(text: str | None) -> Any:
    """``0,1,2`` (every figure) or ``F11=0;F12=0,1`` (those figures; the others take the preset's seeds)."""
    if not text:
        return None
    try:
        if "=" in text:
            return {k.strip(): [int(s) for s in v.split(",") if s.strip()]
                    for k, v in (part.split("=", 1) for part in text.split(";") if part.strip())}
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected 0,1,2 or F11=0;F12=0,1, got {text!r}") from None
