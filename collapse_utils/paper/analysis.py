"""The numbers behind the figures: metrics tables, fits, projections, image pairs, diversity and the paper's values.

Everything a plotting function (:mod:`collapse_utils.paper.plotting`) draws or writes to its data file is computed
here from the runs (:class:`~collapse_utils.loop.run.RunResult`) or from the table :func:`metrics_frame` makes of
them: the tidy data file (:func:`long_table`), F2's nearest training images, F3's SVD projections, F4's Pearson r
of log GS (PAPER.md §3; the paper reports r = 0.91 for entropy), F10's source shares and F11's FID table,
within-digit diversity and the paper's values. The names written into data files (dataset, method and scale
labels) are defined here too; nothing here draws.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence, Union

import numpy as np
import pandas as pd

from ..core.methods import label_of
from ..measure.metrics import nearest_neighbors, svd_projection, mean_nn_distance

if TYPE_CHECKING:  # pragma: no cover
    from ..core.config import RunConfig
    from ..loop.rundir import RunResult

RunsOrTable = Union[Sequence["RunResult"], pd.DataFrame]


# ---------------------------------------------------------------------------------------------- names in the data files
ID_COLUMNS = ("run", "preset", "dataset", "n", "paradigm", "selection", "feature_space", "decay", "seed", "generation")
DATASET_LABELS = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar10_catdog": "CIFAR-10 cats/dogs", "ffhq32": "FFHQ",
                  "fashion_mnist": "Fashion-MNIST", "digits": "sklearn digits"}


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def scale_note(cfg: "RunConfig") -> str:
    """``""`` at paper scale, else a line saying the preset and what differs (for titles)."""
    preset = cfg.extra.get("preset", "custom")
    if preset == "paper":
        return ""
    res = f"{cfg.resolution}×{cfg.resolution} " if cfg.resolution else ""
    return (f"{preset} scale, not the paper's: {res}{dataset_label(cfg.dataset)}, UNet '{cfg.model}', "
            f"{cfg.train_steps:,} training steps per generation, {cfg.num_inference_steps} sampling steps")


def method_label(selection: str, paradigm: str = "replace", decay: float | None = None) -> str:
    if paradigm == "replace_2n":
        return "Vanilla with 2N images"
    label = label_of(selection)  # the registry's (collapse_utils.core.methods)
    if selection == "threshold" and decay is not None and not _isnan(decay):
        label += f" (α = {decay:.2f})"
    return label


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


# ---------------------------------------------------------------------------------------------- the metrics table
def is_table(x: RunsOrTable) -> bool:
    return isinstance(x, pd.DataFrame)


def metrics_frame(runs: Sequence["RunResult"]) -> pd.DataFrame:
    """One row per (run, generation): identifying fields, preset, scale note and every scalar metric.

    ``source_counts`` (F10) stays a dict column; other dicts (timings) are dropped.
    """
    rows: list[dict[str, Any]] = []
    for r in runs:
        preset, note = r.config.extra.get("preset", "custom"), scale_note(r.config)
        for row in r.metrics_table():
            flat = {k: v for k, v in row.items() if not isinstance(v, (dict, list))}
            flat.update(preset=preset, scale=note, source_counts=row.get("source_counts"))
            rows.append(flat)
    if not rows:
        raise ValueError("no finished generations in the runs given")
    return pd.DataFrame(rows).drop_duplicates(subset=["run", "generation"]).reset_index(drop=True)


def as_frame(x: RunsOrTable) -> pd.DataFrame:
    return x.copy() if is_table(x) else metrics_frame(x)


def require_metrics(wide: pd.DataFrame, metrics: Iterable[str], figure_id: str) -> None:
    for m in metrics:
        if m not in wide or wide[m].isna().any():
            raise KeyError(f"{figure_id}: metric {m!r} is missing for some generations; compute it first "
                           f"(run_metrics.ensure_metrics or collapse_utils.paper.figures.figure_runs)")


def long_table(wide: pd.DataFrame, metrics: Sequence[str], figure_id: str, *, panel: pd.Series | None = None,
               extra: Sequence[str] = ()) -> pd.DataFrame:
    """The tidy data file: ``figure, panel, <ID_COLUMNS>, metric, value`` (one row per plotted number)."""
    require_metrics(wide, metrics, figure_id)
    wide = wide.assign(panel=panel if panel is not None else "")
    ids = ["panel"] + [c for c in ID_COLUMNS if c in wide] + [c for c in extra if c in wide]
    out = wide.melt(id_vars=ids, value_vars=list(metrics), var_name="metric", value_name="value")
    out.insert(0, "figure", figure_id)
    return out.sort_values(["panel", "run", "metric", "generation"]).reset_index(drop=True)


def scale_notes(wide: pd.DataFrame) -> str:
    notes = [s for s in wide.get("scale", pd.Series(dtype=str)).dropna().unique() if s]
    return "; ".join(notes)


def feature_space_of(wide: pd.DataFrame, feature_space: str | None) -> str:
    if feature_space:
        return feature_space
    spaces = wide["feature_space"].dropna().unique()
    if len(spaces) != 1:
        raise ValueError(f"runs use several feature spaces {list(spaces)}; pass feature_space=")
    return str(spaces[0])


def with_method_labels(wide: pd.DataFrame) -> pd.DataFrame:
    return wide.assign(label=[method_label(s, p, d) for s, p, d in
                              zip(wide["selection"], wide["paradigm"], wide["decay"])])


# ---------------------------------------------------------------------------------------------- what a panel shows
def pick_run(runs: Sequence["RunResult"], size: int | None, default: str = "smallest") -> "RunResult":
    sizes = sorted({r.config.n for r in runs})
    if size is None:
        size = sizes[0] if default == "smallest" else sizes[len(sizes) // 2]
    chosen = [r for r in runs if r.config.n == size]
    if not chosen:
        raise ValueError(f"no run with n = {size}; available sizes: {sizes}")
    return sorted(chosen, key=lambda r: r.config.seed)[0]


def default_generations(run: "RunResult", count: int = 3) -> list[int]:
    gens = [g.generation for g in run.generations]
    picks = sorted({gens[0], gens[len(gens) // 2], gens[-1]})
    return picks[:count] if len(picks) > count else picks


# ---------------------------------------------------------------------------------------------- F2
def nearest_training_pairs(run: "RunResult", generations: Sequence[int], k: int = 6) -> pd.DataFrame:
    """For F2's left panel: the first ``k`` samples of each generation and their nearest training image (pixels)."""
    rows = []
    for g in run.generations:
        if g.generation not in generations:
            continue
        samples, train = g.samples[:k], g.train_images
        d, idx = nearest_neighbors(samples.reshape(len(samples), -1).astype(np.float32),
                                   train.reshape(len(train), -1).astype(np.float32), k=1)
        for i in range(len(samples)):
            rows.append(dict(run=run.run_dir.name, n=run.config.n, generation=g.generation, sample_index=i,
                             train_index=int(idx[i, 0]), l2_pixel=float(d[i, 0])))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- F3
def svd_points(run: "RunResult", generations: Sequence[int], components: Sequence[int] = (1, 2),
               max_points: int = 2000) -> pd.DataFrame:
    """F3's projections: real images and each generation's samples on the real data's singular vectors
    ``components`` (the authors' 2nd and 3rd), pixels scaled to [0, 1] as in the authors' ``svd.py``."""
    real = run.real_images()[: run.config.n].astype(np.float64) / 255.0
    rows = []
    for g in run.generations:
        if g.generation not in generations:
            continue
        gen = g.samples[:max_points].astype(np.float64) / 255.0
        pr, pg = svd_projection(real, gen, components)
        if not rows:
            rows.append(pd.DataFrame(dict(set="real", generation=0, x=pr[:max_points, 0], y=pr[:max_points, 1])))
        rows.append(pd.DataFrame(dict(set="generated", generation=g.generation, x=pg[:, 0], y=pg[:, 1])))
    out = pd.concat(rows, ignore_index=True)
    out.insert(0, "run", run.run_dir.name)
    return out


# ---------------------------------------------------------------------------------------------- F4
def log_fit(x: np.ndarray, gs: np.ndarray) -> dict[str, Any]:
    """Pearson r of ``x`` vs log(GS) with the least-squares line log(GS) = slope·x + intercept (F4)."""
    from scipy import stats

    x, gs = np.asarray(x, float), np.asarray(gs, float)
    keep = np.isfinite(x) & np.isfinite(gs) & (gs > 0)
    x, y = x[keep], np.log(gs[keep])
    out: dict[str, Any] = {"points": int(keep.sum()), "dropped_nonpositive_gs": int((~keep).sum()),
                           "pearson_r": None, "p_value": None, "slope": None, "intercept": None}
    if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        r, p = stats.pearsonr(x, y)
        slope, intercept = np.polyfit(x, y, 1)
        out.update(pearson_r=float(r), p_value=float(p), slope=float(slope), intercept=float(intercept))
    return out


# ---------------------------------------------------------------------------------------------- F10
def source_table(wide: pd.DataFrame) -> pd.DataFrame:
    """F10's numbers: per run and generation, the count and share of training images from each source."""
    rows = []
    for _, r in wide.iterrows():
        counts = r["source_counts"] if isinstance(r.get("source_counts"), dict) else {}
        total = sum(counts.values())
        for src, cnt in sorted(counts.items(), key=lambda kv: int(kv[0])):
            rows.append({**{c: r[c] for c in ID_COLUMNS if c in r}, "metric": f"source_counts.{src}",
                         "source": int(src), "value": cnt, "share": cnt / total})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- F11
F11_SETTINGS = ("unconditional", "cfg", "cfg_selection")
# [PN]'s table (PAPER.md F11, unverified) and the entropy read off mnist_entropy.png (×10³, 28×28 pixels).
F11_PAPER = {"fid_iter8": {"unconditional": 74.4, "cfg": 66.2, "cfg_selection": 22.4},
             "entropy_read_off": {"cfg": [3.93e3, 3.67e3], "cfg_selection": [3.93e3, 3.995e3]}}


def f11_setting(cfg: "RunConfig") -> str:
    """``unconditional`` | ``cfg`` | ``cfg_selection``: which of F11's three runs ``cfg`` is."""
    if not cfg.conditional:
        return "unconditional"
    return "cfg" if cfg.selection == "none" else "cfg_selection"


def f11_label(cfg: "RunConfig") -> str:
    setting = f11_setting(cfg)
    if setting == "unconditional":
        return "Unconditional"
    label = f"CFG (w = {cfg.guidance_scale:g})"
    if setting == "cfg_selection":
        per = ", per digit" if cfg.class_selection == "per_class" else ", global"
        label += f" + {label_of(cfg.selection)}{per}"
    return label


def digit_rows(images: np.ndarray, labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """``num_classes × per_class`` images, row c holding the first ``per_class`` images labelled c (black if fewer)."""
    out = np.zeros((num_classes * per_class, *images.shape[1:]), images.dtype)
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        out[c * per_class: c * per_class + len(idx)] = images[idx]
    return out


def within_class_mnnd(images: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Mean over classes (with ≥ 2 images) of the mean nearest-neighbour pixel distance inside the class: how
    diverse the images of one digit are (falls when every row of the grid shows the same style)."""
    values = [mean_nn_distance(images[labels == c].reshape(int((labels == c).sum()), -1).astype(np.float32), device="cpu")
              for c in range(num_classes) if (labels == c).sum() >= 2]
    return float(np.mean(values)) if values else float("nan")


def f11_diversity(runs: Sequence["RunResult"]) -> pd.DataFrame:
    """Within-digit MNND of each conditional run's samples per generation, and of its real training images."""
    rows = []
    for r in runs:
        if not r.config.conditional:
            continue
        c = r.config.num_classes
        real_labels = r.real_labels()[: r.config.n]
        real_value = within_class_mnnd(r.real_images()[: r.config.n], real_labels, c)
        for g in r.generations:
            labels = g.sample_labels
            rows.append(dict(run=r.run_dir.name, setting=f11_setting(r.config), label=f11_label(r.config),
                             seed=r.config.seed, generation=g.generation, samples_per_digit=len(labels) / c,
                             within_digit_mnnd_samples=within_class_mnnd(g.samples, labels, c),
                             within_digit_mnnd_real=real_value))
    return pd.DataFrame(rows)


def f11_fid_table(runs: Sequence["RunResult"], reference: dict[str, Any] | None,
                  metric: str = "fid") -> pd.DataFrame:
    """FID (``metric``: ``fid`` or ``fid_torchvision``) at each run's last generation (with the sample count), the
    paper's value, and the real-vs-real floor."""
    rows = []
    for r in runs:
        g = r.generations[-1]
        setting = f11_setting(r.config)
        rows.append(dict(run=r.run_dir.name, setting=setting, label=f11_label(r.config), seed=r.config.seed,
                         generation=g.generation, metric=metric, value=g.metrics[metric],
                         fid_samples=g.metrics.get(f"{metric}_samples"),
                         paper_fid_iter8=F11_PAPER["fid_iter8"][setting]))
    if reference:
        rows.append(dict(run=None, setting="real_reference", label="held-out real images (floor)", seed=None,
                         generation=None, metric=f"{metric}_reference", value=reference["fid"],
                         fid_samples=reference["samples"], paper_fid_iter8=None))
    return pd.DataFrame(rows)


def f11_runs_frame(runs: Sequence["RunResult"]) -> tuple[list["RunResult"], pd.DataFrame]:
    """F11's runs in setting order (unconditional, CFG, CFG + selection; then seed) and their metrics table with
    ``setting`` and ``label`` columns."""
    runs = sorted(runs, key=lambda r: (F11_SETTINGS.index(f11_setting(r.config)), r.config.seed))
    wide = metrics_frame(runs)
    settings = {r.run_dir.name: f11_setting(r.config) for r in runs}
    wide = wide.assign(setting=wide["run"].map(settings),
                       label=wide["run"].map({r.run_dir.name: f11_label(r.config) for r in runs}))
    return runs, wide


def f11_fid_summary(fid: pd.DataFrame) -> pd.DataFrame:
    """:func:`f11_fid_table` per setting: mean and sd of FID over seeds, the sample count and the paper's value."""
    return fid.groupby(["setting", "label"], sort=False).agg(fid=("value", "mean"), sd=("value", "std"),
                                                             samples=("fid_samples", "first"),
                                                             paper=("paper_fid_iter8", "first")).reset_index()


def f11_summary(runs: Sequence["RunResult"], wide: pd.DataFrame, table: pd.DataFrame,
                grids: list[dict[str, Any]]) -> dict[str, Any]:
    """F11's ``F11.json``: each run's setting, FID at the last generation, entropy at the first and last
    generation, the paper's values, the grids shown and the scale."""
    return dict(
        settings={r.run_dir.name: dict(setting=f11_setting(r.config), label=f11_label(r.config),
                                       guidance_scale=r.config.guidance_scale if r.config.conditional else None,
                                       label_dropout=r.config.label_dropout if r.config.conditional else None,
                                       selection=r.config.selection, class_selection=r.config.class_selection
                                       if r.config.conditional else None, n=r.config.n) for r in runs},
        fid_last_generation={row.label: dict(fid=row.fid, samples=int(row.samples)) for row in table.itertuples()},
        entropy_first_last={lab: [float(m.iloc[0]), float(m.iloc[-1])] for lab, m in
                            wide.groupby(["label", "generation"])["entropy_pixel"].mean().groupby(level=0)},
        paper=F11_PAPER, grids=grids, scale=scale_notes(wide) or "paper",
    )


def f11_grid_images(run: "RunResult", generation: int, per_digit: int) -> tuple[np.ndarray, int]:
    """The images of one F11 grid and its columns: for a conditional run, one row per digit (at most as many
    columns as the most frequent digit has samples); for the unconditional run, its first classes × per_digit."""
    g = next(x for x in run.generations if x.generation == generation)
    c = run.config.num_classes
    if run.config.conditional:
        labels = g.sample_labels
        per_digit = min(per_digit, int(np.bincount(labels, minlength=c).max()))
        return digit_rows(g.samples, labels, c, per_digit), per_digit
    return g.samples[: c * per_digit], per_digit
