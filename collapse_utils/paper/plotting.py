"""Every figure of the paper as one plotting function (seaborn / matplotlib), shared by the notebooks.

Each ``plot_fNN`` takes the runs of its experiment (a list of :class:`~collapse_utils.loop.run.RunResult`) or, for
figures drawn from metrics alone, the table :func:`~collapse_utils.paper.analysis.metrics_frame` makes of them, and writes
``<fig_dir>/<FIG>.png``, ``.pdf`` and the plotted numbers as ``<FIG>.csv`` (tidy: one row per run, generation
and metric, with the run's directory name, so every number can be traced to ``gen_XX/metrics.json``). Extra
panels write ``<FIG>_<part>.csv``; fitted statistics go to ``<FIG>.json``.

Feature spaces follow the paper (PAPER.md §3): Section 3 figures (F2–F4, F14) use pixel-space GS and entropy;
Sections 4–5 (F7–F10, F12, F13) use the runs' feature space (DINOv2 at paper scale, pixels at demo/smoke scale).
Axes name the space. Figures made below paper scale say so in their title
(:func:`collapse_utils.paper.analysis.scale_note`). What is plotted is computed in :mod:`collapse_utils.paper.analysis`; this
module only draws and writes the files.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..core.methods import colour_of, label_of, method_names, short_label_of
from .analysis import (F11_SETTINGS, RunsOrTable, as_frame, dataset_label, default_generations,
                       f11_diversity, f11_fid_summary, f11_fid_table, f11_grid_images, f11_label, f11_runs_frame,
                       f11_setting, f11_summary, feature_space_of, is_table, log_fit, long_table, method_label,
                       metrics_frame, nearest_training_pairs, pick_run, require_metrics, source_table, svd_points,
                       with_method_labels)
from .drawing import (GEN_LABEL, ONE_COLUMN, PARADIGM_LABELS, PARADIGM_ORDER, SMALL_FONT, SPACE_LABELS,
                      TWO_COLUMNS, FigureOutput, figure_title, image_axis, integer_generations, lines_by_size)
from .drawing import log_y as log_axis
from .drawing import (method_line, metric_label, new_figure, panel_grid, save_figure, seed_note, shared_legend,
                      size_hue, theme, tile_images)

from ..core.vocab import (MEMORIZATION_INDEX_METRICS, REAL_REFERENCE_FEATURE_METRICS, REAL_REFERENCE_METRICS,
                          REAL_REFERENCE_QUANTITIES, REAL_REFERENCE_SPACES, real_reference_metrics)

if TYPE_CHECKING:  # pragma: no cover
    from ..core.config import RunConfig
    from ..loop.rundir import RunResult


# ---------------------------------------------------------------------------------------------- F2
def _pairs_image(run: "RunResult", pairs: pd.DataFrame) -> tuple[np.ndarray, list[float], list[str]]:
    """F2's pairs as one image: per generation a row of generated images above the row of their nearest training
    images, generations separated by a gap; with the y positions and labels of the rows."""
    blocks, ticks, labels, top = [], [], [], 0
    by_gen = {g.generation: g for g in run.generations}
    for gen, sub in pairs.groupby("generation"):
        g = by_gen[gen]
        gen_imgs = g.samples[sub["sample_index"].to_numpy()]
        nn_imgs = g.train_images[sub["train_index"].to_numpy()]
        block = tile_images(np.concatenate([gen_imgs, nn_imgs]), ncols=len(sub))
        h = block.shape[0]
        ticks += [top + h / 4, top + 3 * h / 4]
        labels += [f"gen {gen}\ngenerated", f"nearest\nL2 {sub['l2_pixel'].mean():.0f}"]
        blocks += [block, np.full((max(2, h // 4), block.shape[1], 3), 255, np.uint8)]
        top += h + blocks[-1].shape[0]
    return np.concatenate(blocks[:-1]), ticks, labels


def plot_f2(runs: RunsOrTable, fig_dir: str | Path, *, pair_size: int | None = None,
            pair_generations: Sequence[int] | None = None, n_pairs: int = 6) -> FigureOutput:
    """F2 (paper Fig. 2): the generalization-to-memorization transition.

    (a) Generated samples (top row of each pair of rows) above their nearest training image (bottom row) at early,
    middle and late generations of one run (smallest n, lowest seed), labelled with the mean pixel L2 distance of
    the pairs: late generations are copies. (b) Generalization score GS (mean L2 distance, pixel values 0–255, from
    a sample to its nearest training image; log axis) vs generation, one line per dataset size (replace). Where the
    runs have them (PAPER.md §3.7), memorization beyond the source: (c) the memorization index (median NN distance
    of samples ÷ that of fresh held-out draws of D_t's source: 1 novel, 0 copies) and (d) the copy rate (share of
    samples closer to D_t than 95% of those draws; fresh draws: 0.05); then memorization against a fixed real
    reference (held-out real images R′ against D_1): (e) ρ = median NN distance of samples ÷ that of R′ =
    index × κ, (f) the source's contraction κ = that of the fresh draws ÷ that of R′, (g) the copy rate against
    R′'s 5th percentile; and (h–j) the same three with the distances taken in a network's features (the MNIST
    LeNet's for grey digits, DINOv2-CLS where its weights exist). Dotted: the value of fresh draws (of the source,
    or of real images). Lines: mean ± sd over seeds. A panel whose metric the runs lack is left out.
    """
    return _plot_transition(runs, fig_dir, "F2", "replace", pair_size=pair_size, pair_generations=pair_generations,
                            n_pairs=n_pairs)


def plot_d1(runs: RunsOrTable, fig_dir: str | Path, *, pair_size: int | None = None,
            pair_generations: Sequence[int] | None = None, n_pairs: int = 6) -> FigureOutput:
    """D1 (appendix D.1, "The Generalization-to-Memorization Collapse on Accumulate Paradigm"): F2's panels for the
    size sweep under accumulate-subsample (each later training set drawn evenly from the real images and every
    earlier generation's samples, PAPER.md §4.4): generated/nearest-training pairs, GS per dataset size, and the
    memorization metrics against a fixed real reference the runs have (ρ, copy rate; PAPER.md §3.7)."""
    return _plot_transition(runs, fig_dir, "D1", "accumulate_subsample", pair_size=pair_size,
                            pair_generations=pair_generations, n_pairs=n_pairs)


def _plot_transition(runs: RunsOrTable, fig_dir: str | Path, figure_id: str, paradigm: str, *,
                     pair_size: int | None, pair_generations: Sequence[int] | None, n_pairs: int) -> FigureOutput:
    """The generalization-to-memorization figure of one paradigm (F2: replace, D1: accumulate), see plot_f2."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["gs_pixel"], figure_id)
    with_pairs = not is_table(runs)
    present = [m for m in MEMORIZATION_PANELS if m in wide.columns and wide[m].notna().any()]
    rows = [r for r in ([m for m in present if m in MEMORIZATION_INDEX_METRICS],
                        [m for m in present if m in REAL_REFERENCE_METRICS],
                        *([m for m in present if REAL_REFERENCE_FEATURE_METRICS.get(m) == space]
                          for space in REAL_REFERENCE_SPACES)) if r]
    top = int(with_pairs) + 1
    nrows = 1 + len(rows)
    fig = plt.figure(figsize=(TWO_COLUMNS, 2.7 + 2.3 * len(rows) + 0.5), layout="constrained")
    grid = fig.add_gridspec(nrows, 6)
    panels: list[plt.Axes] = []
    ax_pairs = fig.add_subplot(grid[0, :3]) if with_pairs else None
    ax = fig.add_subplot(grid[0, 3:] if with_pairs else grid[0, :])
    lines_by_size(ax, wide, "gs_pixel")
    log_axis(ax)
    ax.set_ylabel("GS ↑ (px L2, log)")
    ax.set_title(f"({chr(ord('a') + top - 1)}) Generalization score ({PARADIGM_LABELS[paradigm].lower()})")
    panels.append(ax)
    letter = top
    for row, metrics in enumerate(rows, start=1):
        width = 6 // len(metrics)
        for i, metric in enumerate(metrics):
            ax = fig.add_subplot(grid[row, i * width:(i + 1) * width])
            lines_by_size(ax, wide, metric, legend=False)
            ax.axhline(MEMORIZATION_PANELS[metric], color="0.4", lw=1, ls=":",
                       label="fresh draws" if metric in MEMORIZATION_INDEX_METRICS else "held-out real")
            ax.legend(loc="best")
            ax.set_title(f"({chr(ord('a') + letter)}) " + _MEMORIZATION_TITLES[metric])
            letter += 1
    parts = {}
    if with_pairs:
        run = pick_run(runs, pair_size)
        pairs = nearest_training_pairs(run, pair_generations or default_generations(run), k=n_pairs)
        img, ticks, labels = _pairs_image(run, pairs)
        ax_pairs.imshow(img, interpolation="nearest")
        ax_pairs.set_yticks(ticks, labels, fontsize=SMALL_FONT)
        ax_pairs.tick_params(axis="y", length=0)
        ax_pairs.set_xticks([])
        ax_pairs.grid(False)
        for spine in ax_pairs.spines.values():
            spine.set_visible(False)
        ax_pairs.set_title(f"(a) Generated vs nearest training\n(n = {run.config.n:,}, seed {run.config.seed})")
        parts["pairs"] = pairs
    title = "the generalization-to-memorization transition" + ("" if paradigm == "replace" else
                                                               f" under {PARADIGM_LABELS[paradigm].lower()}")
    figure_title(fig, figure_id, title, wide)
    return save_figure(fig, fig_dir, figure_id, long_table(wide, ["gs_pixel", *present], figure_id), parts=parts)


# Memorization panels and the value fresh draws give (PAPER.md §3.7): of the training set's source for the index
# and copy rate (memorization beyond the source), of held-out real images for the fixed real reference, in pixels
# and in a network's feature space (LeNet for grey digits, DINOv2 where its weights exist).
_REAL_REFERENCE_PANELS = {"rho": 1.0, "contraction": 1.0, "copy_rate_real": 0.05}  # panel order: held-out real's
MEMORIZATION_PANELS = {"mem_index_pixel": 1.0, "copy_rate_pixel": 0.05,
                       **{dict(zip(REAL_REFERENCE_QUANTITIES, real_reference_metrics(s)))[q]: v
                          for s in ("pixel", *REAL_REFERENCE_SPACES) for q, v in _REAL_REFERENCE_PANELS.items()}}
_MEMORIZATION_TITLES = {
    "mem_index_pixel": "Memorization index beyond the\nsource (1 novel, 0 copies)",
    "copy_rate_pixel": "Copy rate beyond the source\n(vs fresh draws of D_t's source)",
    "rho_pixel": "Novelty vs a fixed real\nreference: ρ = index × κ",
    "contraction_pixel": "Source contraction κ\n(fresh draws vs real)",
    "copy_rate_real_pixel": "Copy rate vs a fixed\nreal reference",
    **{m: f"{title} ({label} features)" for s, label in (("lenet", "LeNet"), ("dinov2", "DINOv2"))
       for m, title in zip(real_reference_metrics(s), ("Copy rate vs the\nreal reference", "ρ vs the real\nreference",
                                                        "κ vs the real\nreference"))},
}


# ---------------------------------------------------------------------------------------------- F3
def plot_f3(runs: RunsOrTable, fig_dir: str | Path, *, svd_size: int | None = None,
            svd_generations: Sequence[int] | None = None, components: Sequence[int] = (1, 2)) -> FigureOutput:
    """F3 (paper Fig. 3): training-set entropy (nats; Kozachenko–Leonenko estimator, k = 1, pixel space 0–255)
    vs generation by size (mean ± sd over seeds), and 2-D SVD projections of real vs generated images at the first
    and last generation (median size unless ``svd_size``; lowest seed) on the real images' singular vectors."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["entropy_pixel"], "F3")
    with_svd = not is_table(runs)
    if with_svd:
        fig, axes = new_figure(TWO_COLUMNS, 2.9, 1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
    else:
        fig, axes = new_figure(ONE_COLUMN, 3.0)
    lines_by_size(axes[0, 0], wide, "entropy_pixel")
    axes[0, 0].set_title("(a) Training-set entropy")
    parts = {}
    if with_svd:
        run = pick_run(runs, svd_size, default="median")
        gens = list(svd_generations or [run.generations[0].generation, run.generations[-1].generation])
        pts = svd_points(run, gens, components)
        real = pts[pts["set"] == "real"]
        for k, (ax, gen) in enumerate(zip(axes[0, 1:], gens[:2])):
            ax.scatter(real["x"], real["y"], s=3, alpha=0.45, color="tab:blue", label="real", linewidths=0)
            sub = pts[(pts["set"] == "generated") & (pts["generation"] == gen)]
            ax.scatter(sub["x"], sub["y"], s=3, alpha=0.45, color="tab:orange", label=f"gen {gen}", linewidths=0)
            ax.set_xlabel(f"SV {components[0] + 1} projection")
            ax.set_ylabel(f"SV {components[1] + 1} projection")
            ax.set_title(f"({'bc'[k]}) Real vs gen {gen}\n(n = {run.config.n:,}, seed {run.config.seed})")
            ax.legend(markerscale=2.5, loc="best")
        parts["svd"] = pts
    figure_title(fig, "F3", "entropy declines and generated images concentrate", wide)
    return save_figure(fig, fig_dir, "F3", long_table(wide, ["entropy_pixel"], "F3"), parts=parts)


# ---------------------------------------------------------------------------------------------- F4
def _scatter_fit(ax: plt.Axes, wide: pd.DataFrame, xcol: str, fit: dict[str, Any]) -> None:
    hue, order, palette = size_hue(wide)
    sns.scatterplot(data=wide.assign(size=hue), x=xcol, y="gs_pixel", hue="size", hue_order=order, palette=palette,
                    ax=ax, s=14, linewidth=0)
    log_axis(ax)
    ax.set_xlabel(metric_label(xcol))
    ax.set_ylabel("GS ↑ (px L2, log)")
    if fit["pearson_r"] is not None:
        xs = np.linspace(wide[xcol].min(), wide[xcol].max(), 50)
        ax.plot(xs, np.exp(fit["slope"] * xs + fit["intercept"]), "r--", lw=1.2, label="fit of log GS")
        text = f"Pearson r (x, log GS) = {fit['pearson_r']:.3f}\n{fit['points']} points"
    else:
        text = f"Pearson r undefined ({fit['points']} points)"
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=SMALL_FONT,
            bbox=dict(boxstyle="round", facecolor="white", alpha=0.85, linewidth=0.4))


def plot_f4(runs: RunsOrTable, fig_dir: str | Path) -> FigureOutput:
    """F4 (paper Fig. 4a/b): GS (pixel L2, log axis) against training-set entropy (nats, pixels) and against the
    trace of the training images' covariance (pixel values², i.e. variance), pooled over sizes, seeds and
    generations (each point: one generation of one run); Pearson r of x vs log GS (paper: 0.91 for entropy)
    printed with its least-squares line."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["gs_pixel", "entropy_pixel", "cov_trace"], "F4")
    fits = {"entropy_pixel": log_fit(wide["entropy_pixel"], wide["gs_pixel"]),
            "cov_trace": log_fit(wide["cov_trace"], wide["gs_pixel"])}
    fig, axes = new_figure(TWO_COLUMNS, 3.1, 1, 2, sharey=True)
    for ax, xcol, title in zip(axes[0], fits, ("(a) entropy", "(b) variance (trace of covariance)")):
        _scatter_fit(ax, wide, xcol, fits[xcol])
        ax.set_title(title)
    axes[0, 1].set_ylabel("")
    shared_legend(fig, axes[0], loc="outside right center", ncol=1, title="dataset size")
    figure_title(fig, "F4", "generalization score vs properties of the training set, one point per generation "
                 "of a run", wide, seeds=_pooled_seeds(wide))
    summary = {"entropy_vs_log_gs": fits["entropy_pixel"], "cov_trace_vs_log_gs": fits["cov_trace"]}
    return save_figure(fig, fig_dir, "F4", long_table(wide, ["gs_pixel", "entropy_pixel", "cov_trace"], "F4"),
                       summary=summary)


def _pooled_seeds(wide: pd.DataFrame) -> str:
    seeds = wide["seed"].nunique() if "seed" in wide else 1
    return f"{seeds} seed{'s' if seeds != 1 else ''} pooled"


# ---------------------------------------------------------------------------------------------- F7, F8, F9, F15
def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (order.index(v) if v in order else len(order), v))


def plot_methods_grid(runs: RunsOrTable, fig_dir: str | Path, *, figure_id: str, metric: str, title: str,
                      note: str | None = None, ylabel: str | None = None, log_y: bool = False,
                      floor: dict[str, Any] | None = None) -> FigureOutput:
    """Vanilla / Threshold Decay Filter / Greedy lines (mean ± sd over seeds), one panel per dataset (rows) ×
    paradigm (columns), one legend below, with a Fréchet distance's noise ``floor`` (figures.noise_floor) as a
    dotted line when given."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, [metric], figure_id)
    datasets = list(dict.fromkeys(wide["dataset"]))
    paradigms = _ordered(wide["paradigm"], PARADIGM_ORDER)
    width = TWO_COLUMNS if len(paradigms) > 1 else ONE_COLUMN
    fig, axes = new_figure(width, 2.3 * len(datasets) + 1.1, len(datasets), len(paradigms))
    panel = wide["dataset"].map(dataset_label) + " " + wide["paradigm"].map(lambda p: PARADIGM_LABELS.get(p, p))
    for i, ds in enumerate(datasets):
        for j, par in enumerate(paradigms):
            ax, sub = axes[i, j], wide[(wide["dataset"] == ds) & (wide["paradigm"] == par)]
            for m in _ordered(sub["selection"], method_names()):
                method_line(ax, sub[sub["selection"] == m], metric, method_label(m), colour_of(m),
                            dashed=m == "none")
            draw_floor(ax, floor)
            ax.set_title(f"{dataset_label(ds)} {PARADIGM_LABELS.get(par, par)}")
            ax.set_xlabel(GEN_LABEL)
            ax.set_ylabel((ylabel or metric_label(metric)) if j == 0 else "")
            integer_generations(ax)
            if log_y:
                log_axis(ax)
    shared_legend(fig, axes.flat)
    note = " ".join(x for x in (note, floor_note(floor)) if x)
    figure_title(fig, figure_id, title, wide, extra=note)
    return save_figure(fig, fig_dir, figure_id, long_table(wide, [metric], figure_id, panel=panel),
                       parts=floor_part(floor))


def plot_f7(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None) -> FigureOutput:
    """F7 (paper Fig. 5): generalization score ("Gen ↑": mean L2 distance from a sample to its nearest training
    image, in the runs' feature space; pixels 0–255 at demo/smoke scale) of vanilla / TDF / Greedy, panels
    dataset × paradigm, mean ± sd over seeds."""
    fs = feature_space_of(as_frame(runs), feature_space)
    return plot_methods_grid(runs, fig_dir, figure_id="F7", metric=f"gs_{fs}",
                             title="generalization score (Gen ↑) with data selection")


def plot_f8(runs: RunsOrTable, fig_dir: str | Path, *, fid_metric: str = "fid",
            noise_floor: dict[str, Any] | None = None, **_: Any) -> FigureOutput:
    """F8 (paper Fig. 6): FID of vanilla / TDF / Greedy, panels dataset × paradigm; ``fid_metric`` is ``fid``
    (clean-fid), ``fid_torchvision`` (the authors' network) or ``fd_lenet``, the figure's ``fid_mode``;
    ``noise_floor`` (figures.noise_floor) is drawn as a dotted line and printed in the title."""
    name = "FD_LeNet" if fid_metric == "fd_lenet" else "FID"
    return plot_methods_grid(runs, fig_dir, figure_id="F8", metric=fid_metric, floor=noise_floor,
                             title=f"{name} ↓ with data selection{_fid_note(fid_metric)}")


def _fid_note(fid_metric: str) -> str:
    """Title suffix saying which Fréchet distance a figure shows (clean-fid's FID is the default, unsaid)."""
    return {"fid": "", "fid_torchvision": " (torchvision Inception, the authors' FID.py)",
            "fd_lenet": " (FD_LeNet, in place of FID at this scale)"
            }.get(fid_metric, f" ({fid_metric})")


def draw_floor(ax: plt.Axes, floor: dict[str, Any] | None) -> None:
    """The noise floor of a Fréchet distance as a dotted line (nothing when it could not be measured)."""
    if floor and floor.get("value") is not None:
        ax.axhline(floor["value"], color="0.35", lw=1, ls=":", label=f"noise floor ({floor['samples']:,} per side)")


def floor_note(floor: dict[str, Any] | None) -> str:
    if not floor:
        return ""
    if floor.get("value") is None:
        return floor.get("what", "")
    return f"noise floor {floor['value']:.3g} = {floor['what']}"


def plot_f9(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None) -> FigureOutput:
    """F9 (paper Fig. 7): training-set entropy ("Entropy ↑", nats: Kozachenko–Leonenko estimator with k = 1 in the
    runs' feature space) of vanilla / TDF / Greedy, panels dataset × paradigm, mean ± sd over seeds."""
    fs = feature_space_of(as_frame(runs), feature_space)
    return plot_methods_grid(runs, fig_dir, figure_id="F9", metric=f"entropy_{fs}",
                             title="training-set entropy (Entropy ↑) with data selection")


def plot_f15(runs: RunsOrTable, fig_dir: str | Path, *, metric: str = "fd_dinov2",
             fallback_note: str | None = None) -> FigureOutput:
    """F15 (appendix D.6): Fréchet distance in DINOv2 space, vanilla vs Greedy under replace and accumulate.

    Where DINOv2 weights are missing the caller may plot ``metric="fid"`` (the FID Inception's pool3 space)
    instead; ``fallback_note`` then says so on the axes and in the title.
    """
    dino = metric == "fd_dinov2"
    space = {"fd_dinov2": "dinov2", "fid": "inception", "fd_lenet": "lenet"}.get(metric, metric)
    label = {"fid": "FD ↓ (Inception, fallback)", "fd_lenet": "FD_LeNet ↓ (fallback)"}.get(metric,
                                                                                      f"{metric} (fallback)")
    out = plot_methods_grid(runs, fig_dir, figure_id="F15", metric=metric,
                            title="Fréchet distance in DINO space (FD_DINO ↓)" if dino
                            else "Fréchet distance — FALLBACK space, not DINO", note=fallback_note,
                            ylabel=None if dino else label)
    out.data["fd_space"] = space if dino else f"{space} (fallback)"
    out.data.to_csv(out.files["csv"], index=False)
    return out


# ---------------------------------------------------------------------------------------------- F10
def plot_f10(runs: RunsOrTable, fig_dir: str | Path) -> FigureOutput:
    """F10 (paper Fig. 8): source proportions of the selected training set under accumulate + selection
    (stacked bars, real images in blue), with the 1/g real share of even mixing (accumulate-subsample)."""
    theme()
    wide = as_frame(runs)
    wide = wide[wide["paradigm"].isin(["accumulate_subsample", "accumulate"]) & (wide["selection"] != "none")]
    if wide.empty:
        raise ValueError("F10 needs accumulate runs with selection")
    data = source_table(wide)
    data["panel"] = (data["dataset"].map(dataset_label) + " Accumulate + "
                     + data["selection"].map(label_of))
    panels = list(dict.fromkeys(data["panel"]))
    fig, axes = panel_grid(len(panels), min(2, len(panels)), height=2.4,
                           width=TWO_COLUMNS if len(panels) > 1 else ONE_COLUMN + 1.0)
    max_gen = int(data["generation"].max())
    colors = ["tab:blue"] + list(sns.color_palette("YlOrBr", max(2, max_gen))[: max_gen])
    for k, (ax, name) in enumerate(zip(axes.flat, panels)):
        shares = data[data["panel"] == name].groupby(["generation", "source"])["share"].mean().unstack(fill_value=0)
        bottom = np.zeros(len(shares))
        for src in shares.columns:
            ax.bar(shares.index, shares[src], bottom=bottom, color=colors[src], width=0.8,
                   label="real" if src == 0 else f"gen {src}", edgecolor="white", linewidth=0.5)
            bottom += shares[src].to_numpy()
        g = np.arange(1, shares.index.max() + 1)
        ax.plot(g, 1 / g, "r-o", ms=3, lw=1, label="even mix: 1/g real")
        ax.set_title(name)
        ax.set_xlabel(GEN_LABEL)
        ax.set_ylabel("Share of training set" if k % axes.shape[1] == 0 else "")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(g)
    shared_legend(fig, axes.flat, loc="outside right center", ncol=1, title="source",
                  key=lambda lab: (0, 0) if lab == "real" else (1, int(lab.split()[-1])) if lab.startswith("gen ")
                  else (2, 0))
    runs_note = seed_note(wide, "bars")
    figure_title(fig, "F10", "where the selected training set comes from", wide, seeds=runs_note)
    even = pd.DataFrame({"generation": np.arange(1, max_gen + 1), "even_mix_real_share": 1 / np.arange(1, max_gen + 1)})
    data.insert(0, "figure", "F10")
    return save_figure(fig, fig_dir, "F10", data, parts={"even_mix": even})


# ---------------------------------------------------------------------------------------------- F12, F13
def _labelled_lines(ax: plt.Axes, wide: pd.DataFrame, metric: str, styles: dict[str, tuple[Any, bool]]) -> None:
    for label, (color, dashed) in styles.items():
        sub = wide[wide["label"] == label]
        if not sub.empty:
            method_line(ax, sub, metric, label, color, dashed)
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label(metric))
    integer_generations(ax)


def floor_part(floor: dict[str, Any] | None) -> dict[str, pd.DataFrame]:
    """The noise floor as its own CSV beside the figure's (``<figure>_floor.csv``)."""
    return {"floor": pd.DataFrame([floor])} if floor else {}


def plot_f12(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None,
             fid_metric: str = "fid", noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F12 (appendix C.1): replace with N images, with 2N unselected images, and N selected by TDF / Greedy;
    FID (``fid_metric``, the figure's ``fid_mode``: the axis names the distance) and generalization score
    (L2 in the runs' feature space); mean ± sd over seeds, noise floor dotted."""
    theme()
    wide = with_method_labels(as_frame(runs))
    fs = feature_space_of(wide, feature_space)
    metrics = [fid_metric, f"gs_{fs}"]
    require_metrics(wide, metrics, "F12")
    styles = {"Vanilla": ("tab:blue", True), "Vanilla with 2N images": ("tab:purple", True),
              "Threshold Decay Filter": ("tab:green", False), "Greedy Selection": ("tab:red", False)}
    fig, axes = new_figure(TWO_COLUMNS, 3.0, 1, 2)
    name = ", ".join(map(dataset_label, wide["dataset"].unique()))
    for k, (ax, m) in enumerate(zip(axes[0], metrics)):
        _labelled_lines(ax, wide, m, styles)
        ax.set_title(f"({'ab'[k]}) {name} Replace")
    draw_floor(axes[0, 0], noise_floor)
    shared_legend(fig, axes[0])
    figure_title(fig, "F12", f"ablation: vanilla with 2N images vs selecting N{_fid_note(fid_metric)}", wide,
                 extra=floor_note(noise_floor))
    return save_figure(fig, fig_dir, "F12", long_table(wide, metrics, "F12", panel=wide["label"]),
                       parts=floor_part(noise_floor))


def plot_f13(runs: RunsOrTable, fig_dir: str | Path, *, fid_metric: str = "fid",
             noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F13 (appendix C): FID (``fid_metric``, the figure's ``fid_mode``: the axis names the distance) under
    accumulate for vanilla, Greedy and the Threshold Decay Filter at each decay α; mean ± sd over seeds, noise
    floor dotted."""
    theme()
    wide = with_method_labels(as_frame(runs))
    require_metrics(wide, [fid_metric], "F13")
    decays = sorted(d for d in wide.loc[wide["selection"] == "threshold", "decay"].dropna().unique())
    greens = sns.color_palette("Greens", len(decays) + 2)[2:]
    styles = {"Vanilla": ("tab:blue", True), "Greedy Selection": ("tab:red", False)}
    styles.update({method_label("threshold", decay=d): (c, False) for d, c in zip(decays, greens)})
    fig, axes = new_figure(TWO_COLUMNS, 3.0)
    ax = axes[0, 0]
    _labelled_lines(ax, wide, fid_metric, styles)
    draw_floor(ax, noise_floor)
    ax.set_title(f"{', '.join(map(dataset_label, wide['dataset'].unique()))} Accumulate")
    shared_legend(fig, [ax], loc="outside right center", ncol=1)
    figure_title(fig, "F13", f"ablation over the decay factor α of the Threshold Decay Filter{_fid_note(fid_metric)}",
                 wide, extra=floor_note(noise_floor))
    return save_figure(fig, fig_dir, "F13", long_table(wide, [fid_metric], "F13", panel=wide["label"]),
                       parts=floor_part(noise_floor))


# ---------------------------------------------------------------------------------------------- F14
def plot_f14(runs: RunsOrTable, fig_dir: str | Path) -> FigureOutput:
    """F14 (appendix D.4): mean nearest-neighbour distance MNND (pixel L2, 0–255; left axis, solid) and trace of
    the covariance (pixel values², right axis, dashed) of the training set vs generation, per dataset size
    (replace; mean ± sd over seeds): neighbours collapse long before the variance does."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["mnnd", "cov_trace"], "F14")
    hue, order, palette = size_hue(wide)
    wide = wide.assign(size=hue)
    fig, axes = new_figure(TWO_COLUMNS, 3.0)
    ax = axes[0, 0]
    ax2 = ax.twinx()
    for label, color in zip(order, palette):
        sub = wide[wide["size"] == label]
        sns.lineplot(data=sub, x="generation", y="mnnd", ax=ax, color=color, marker="o", markeredgewidth=0,
                     errorbar="sd", label=f"{label}: MNND")
        sns.lineplot(data=sub, x="generation", y="cov_trace", ax=ax2, color=color, marker="s", markeredgewidth=0,
                     linestyle="--", errorbar="sd", label=f"{label}: trace")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label("mnnd") + ", solid")
    ax2.set_ylabel(metric_label("cov_trace") + ", dashed")
    ax2.grid(False)
    integer_generations(ax)
    shared_legend(fig, [ax, ax2], loc="outside right center", ncol=1)
    figure_title(fig, "F14", "memorization (MNND) vs variance of the training set", wide)
    return save_figure(fig, fig_dir, "F14", long_table(wide, ["mnnd", "cov_trace"], "F14"))


# ---------------------------------------------------------------------------------------------- F17
def plot_f17(runs: Sequence["RunResult"], fig_dir: str | Path, *, max_generations: int = 6, grid: int = 8) -> FigureOutput:
    """F17 (appendix D.3): generated images over generations, a compact grid of dataset sizes (rows) ×
    generations (columns) of one seed (the lowest; the title says which and of how many), each cell the first
    grid × grid samples of that generation with its generalization score (pixel L2) below it (replace). The data
    file keeps every seed's GS; ``images_shown`` is 0 for the seeds not drawn."""
    theme()
    runs = sorted(runs, key=lambda r: (r.config.n, r.config.seed))
    wide = metrics_frame(runs)
    require_metrics(wide, ["gs_pixel"], "F17")
    seeds = sorted({r.config.seed for r in runs})
    drawn = {}
    for r in runs:  # the lowest seed of each size
        drawn.setdefault(r.config.n, r)
    rows = [drawn[n] for n in sorted(drawn)]
    ncols = min(max_generations, max(len(r.generations) for r in rows))
    cell = min(1.3, (TWO_COLUMNS - 0.5) / ncols)
    # each row as tall as its grids: a size with fewer samples than grid × grid shows fewer image rows
    tile_rows = [max(1, math.ceil(min(grid * grid, len(r.generations[0].samples)) / grid)) for r in rows]
    height = sum(cell * t / grid + 0.22 for t in tile_rows) + 0.75
    fig, axes = new_figure(TWO_COLUMNS, height, len(rows), ncols, gridspec_kw={"height_ratios": tile_rows})
    shown = []
    for i, r in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            image_axis(ax)
            if j >= len(r.generations):
                ax.set_visible(False)
                continue
            g = r.generations[j]
            k = min(grid * grid, len(g.samples))
            ax.imshow(tile_images(g.samples[:k], ncols=min(grid, k)), interpolation="nearest")
            ax.set_xlabel(f"GS {g.metrics['gs_pixel']:.1f}", fontsize=SMALL_FONT, labelpad=1)
            if i == 0:
                ax.set_title(f"gen {g.generation}")
            if j == 0:
                ax.set_ylabel(f"n = {r.config.n:,}")
            shown.append(dict(run=r.run_dir.name, generation=g.generation, images_shown=k))
    seed_text = f"images: seed {seeds[0]} of {len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    figure_title(fig, "F17", f"generated images over generations (replace), first {grid * grid} samples; "
                 "GS (px L2) below each grid", wide, seeds=seed_text)
    data = long_table(wide, ["gs_pixel"], "F17")
    data = data.merge(pd.DataFrame(shown), on=["run", "generation"], how="left")
    data["images_shown"] = data["images_shown"].fillna(0).astype(int)
    return save_figure(fig, fig_dir, "F17", data)


# ---------------------------------------------------------------------------------------------- F16
def plot_f16(runs: Sequence["RunResult"], fig_dir: str | Path, *, feature_space: str | None = None,
             grid: int = 6, **_: Any) -> FigureOutput:
    """F16 (appendix D.7, "visualization of the generalization-score gain"): the first grid × grid (6 × 6, the
    paper's) samples of the last generation of vanilla accumulate (left) and accumulate with Greedy Selection
    (right) of one seed (the lowest), each titled with its generalization score in the runs' feature space; the
    data file keeps every seed's GS at every generation, and ``images_shown`` is 0 where no grid was drawn."""
    theme()
    wide = metrics_frame(runs)
    fs = feature_space_of(wide, feature_space)
    metric = f"gs_{fs}"
    require_metrics(wide, [metric], "F16")
    seeds = sorted({r.config.seed for r in runs})
    arms = {}
    for r in sorted(runs, key=lambda r: r.config.seed):
        arms.setdefault(r.config.selection, r)
    missing = [m for m in ("none", "greedy") if m not in arms]
    if missing:
        raise ValueError(f"F16 compares vanilla with Greedy Selection; the runs lack {missing}")
    fig, axes = new_figure(TWO_COLUMNS, 4.1, 1, 2)
    shown = []
    for ax, method in zip(axes[0], ("none", "greedy")):
        r = arms[method]
        g = r.generations[-1]
        k = min(grid * grid, len(g.samples))
        ax.imshow(tile_images(g.samples[:k], ncols=min(grid, k)), interpolation="nearest")
        image_axis(ax, frame=True)
        label = "Vanilla accumulate" if method == "none" else "With Greedy Selection"
        ax.set_title(f"{label}\n(GS = {g.metrics[metric]:.1f}, generation {g.generation})")
        shown.append(dict(run=r.run_dir.name, generation=g.generation, images_shown=k))
    seed_text = f"images: seed {seeds[0]} of {len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    figure_title(fig, "F16", f"samples at the last generation, vanilla vs Greedy Selection (accumulate); GS in "
                 f"{SPACE_LABELS.get(fs, fs)}", wide, seeds=seed_text)
    data = long_table(wide, [metric], "F16")
    data = data.merge(pd.DataFrame(shown), on=["run", "generation"], how="left")
    data["images_shown"] = data["images_shown"].fillna(0).astype(int)
    return save_figure(fig, fig_dir, "F16", data)


# ---------------------------------------------------------------------------------------------- F11
F11_COLORS = {"unconditional": "tab:gray", "cfg": "tab:blue", "cfg_selection": "tab:green"}
F11_SHORT = {"unconditional": "Unconditional", "cfg": "CFG", "cfg_selection": "CFG + selection"}


def _f11_short(cfg: "RunConfig") -> str:
    """A setting's name short enough for a row label: ``CFG (w = 2)``, ``CFG + TDF``, ``Unconditional``."""
    setting = f11_setting(cfg)
    if setting == "cfg":
        return f"CFG (w = {cfg.guidance_scale:g})"
    if setting == "cfg_selection":
        return f"CFG + {short_label_of(cfg.selection)}"
    return F11_SHORT[setting]


def _fd_name(fid_metric: str) -> str:
    """The name of the Fréchet distance ``fid_metric`` in a table head: FD_LeNet is not the paper's FID."""
    return {"fid": "FID (Inception)", "fid_torchvision": "FID (torchvision Inc.)", "fd_lenet": "FD_LeNet",
            "fd_dinov2": "FD_DINO"}.get(fid_metric, fid_metric)


def _f11_grid(ax: plt.Axes, run: "RunResult", generation: int, per_digit: int) -> dict[str, Any]:
    images, per_digit = f11_grid_images(run, generation, per_digit)
    ax.imshow(tile_images(images, ncols=per_digit), interpolation="nearest")
    image_axis(ax)
    return dict(run=run.run_dir.name, setting=f11_setting(run.config), generation=generation, images_shown=len(images))


def plot_f11(runs: Sequence["RunResult"], fig_dir: str | Path, *, grid_generations: Sequence[int] | None = None,
             per_digit: int = 10, fid_reference: dict[str, Any] | None = None,
             fid_metric: str = "fid", noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F11 (PAPER.md F11, §6 item 8): MNIST with classifier-free guidance under accumulate.

    Rows of sample grids (one image row per digit 0–9, top to bottom) at ``grid_generations`` (default: first and
    last) for CFG without and with selection, and unconditional samples, each of the lowest seed (labelled);
    beside them (a) the training-set entropy (nats, pixels) over generations, (b) the table of the Fréchet
    distance at the last generation, headed by its name (``fid_metric``, the figure's ``fid_mode``: ``fid``
    clean-fid Inception, ``fid_torchvision`` the authors' network, or ``fd_lenet``, which is not comparable with
    the paper's Inception FID printed in the last column, [PN] unverified) with the held-out-real floor
    ``fid_reference`` (:func:`collapse_utils.loop.run_metrics.ensure_last_generation_fid`), and (c) the within-digit
    diversity of the samples (mean nearest-neighbour pixel L2 distance inside each digit; real images dotted).
    Lines and table values: mean (± sd) over the seeds given; the title says how many.
    """
    theme()
    runs, wide = f11_runs_frame(runs)
    require_metrics(wide, ["entropy_pixel"], "F11")
    first = {s: next(r for r in runs if f11_setting(r.config) == s) for s in F11_SETTINGS
             if any(f11_setting(r.config) == s for r in runs)}
    gens = [g.generation for g in first[next(iter(first))].generations]
    grid_generations = list(grid_generations or sorted({gens[0], gens[-1]}))
    ng = len(grid_generations)
    fig = plt.figure(figsize=(TWO_COLUMNS, 7.0), layout="constrained")
    outer = fig.add_gridspec(1, 2, width_ratios=[1.05 * ng, 2.4])
    left = outer[0].subgridspec(3, ng)
    right = outer[1].subgridspec(3, 1, height_ratios=[1, 0.9, 1])
    shown = []
    for i, setting in enumerate(("cfg", "cfg_selection", "unconditional")):
        for j, gen in enumerate(grid_generations):
            ax = fig.add_subplot(left[i, j])
            if setting not in first:
                ax.axis("off")
                continue
            run = first[setting]
            shown.append(_f11_grid(ax, run, gen, per_digit))
            if i == 0:
                ax.set_title(f"gen {gen}")
            if j == 0:
                rows = "\ndigits 0–9 ↓" if run.config.conditional else ""
                ax.set_ylabel(f"{_f11_short(run.config)}\nseed {run.config.seed}{rows}", fontsize=SMALL_FONT)
    # entropy over generations
    ax = fig.add_subplot(right[0])
    short = {f11_setting(r.config): _f11_short(r.config) for r in runs}
    for setting in F11_SETTINGS:
        sub = wide[wide["setting"] == setting]
        if not sub.empty:
            method_line(ax, sub, "entropy_pixel", short[setting], F11_COLORS[setting], setting == "unconditional")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label("entropy_pixel"))
    integer_generations(ax)
    ax.legend(loc="best")
    ax.set_title("(a) Training-set entropy")
    # Fréchet distance table at the last generation
    fid = f11_fid_table(runs, fid_reference, fid_metric)
    ax = fig.add_subplot(right[1])
    ax.axis("off")
    table = f11_fid_summary(fid)
    seeds = wide["seed"].nunique()
    cells = [[textwrap.fill(short.get(row.setting, "held-out real (floor)"), 16),
              f"{row.fid:.1f}" + (f" ± {row.sd:.1f}" if row.sd == row.sd else ""),
              f"{int(row.samples)}", "" if row.paper != row.paper or row.paper is None else f"{row.paper:.1f}"]
             for row in table.itertuples()]
    name = _fd_name(fid_metric)
    tab = ax.table(cellText=cells, colLabels=["setting", f"{name} ↓\ngen {gens[-1]}", "images",
                                              "paper (it. 8)\nInception FID"],
                   cellLoc="center", colWidths=[0.3, 0.24, 0.16, 0.3], bbox=[0, 0, 1, 0.97])
    tab.auto_set_font_size(False)
    tab.set_fontsize(SMALL_FONT)
    for cell in tab.get_celld().values():
        cell.set_linewidth(0.4)
    plural = "s" if seeds != 1 else ""
    ax.set_title(f"(b) {name} at the last generation\n({seeds} seed{plural}; paper: [PN], unverified)")
    # within-digit diversity of the samples
    div = f11_diversity(runs)
    ax = fig.add_subplot(right[2])
    for setting in ("cfg", "cfg_selection"):
        sub = div[div["setting"] == setting] if not div.empty else div
        if not sub.empty:
            sns.lineplot(data=sub, x="generation", y="within_digit_mnnd_samples", ax=ax, color=F11_COLORS[setting],
                         marker="o", markeredgewidth=0, errorbar="sd", label=short[setting])
    if not div.empty:
        ax.axhline(div["within_digit_mnnd_real"].mean(), color="k", ls=":", lw=1, label="real images")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel("Within-digit MNND (px L2)")
    integer_generations(ax)
    ax.legend(loc="best")
    ax.set_title("(c) Diversity inside each digit")
    grid_seeds = sorted({r.config.seed for r in first.values()})
    figure_title(fig, "F11", "MNIST with classifier-free guidance (accumulate): per-digit samples, entropy, "
                 f"{name}", wide, seeds=seed_note(wide) + f"; grids: seed {', '.join(map(str, grid_seeds))}")
    data = pd.concat([long_table(wide, ["entropy_pixel"], "F11", panel=wide["setting"], extra=("setting",)),
                      fid[fid["metric"] == fid_metric].assign(figure="F11", panel="fid")[
                          ["figure", "panel", "run", "setting", "seed", "generation", "metric", "value"]]],
                     ignore_index=True)
    summary = f11_summary(runs, wide, table, shown)
    return save_figure(fig, fig_dir, "F11", data, parts={"fid": fid, "diversity": div}, summary=summary)


# ---------------------------------------------------------------------------------------------- D5
def plot_d5(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None, fid_metric: str = "fid",
            noise_floor: dict[str, Any] | None = None, **_: Any) -> FigureOutput:
    """D5 (appendix D.5, "Self-consuming Loop with Fresh New Data"): vanilla runs at one size under replace,
    accumulate-subsample and fresh (each later training set part new real images, part the previous generation's
    samples; PAPER.md §4.4), one line per paradigm (mean ± sd over seeds) in three panels: generalization score and
    training-set entropy in the runs' feature space, and the preset's Fréchet distance ``fid_metric`` with its
    ``noise_floor`` (figures.noise_floor) dotted."""
    theme()
    wide = as_frame(runs)
    fs = feature_space_of(wide, feature_space)
    metrics = [f"gs_{fs}", f"entropy_{fs}", fid_metric]
    require_metrics(wide, metrics, "D5")
    paradigms = _ordered(wide["paradigm"], PARADIGM_ORDER)
    palette = dict(zip(paradigms, sns.color_palette("colorblind", len(paradigms))))
    fig, axes = new_figure(TWO_COLUMNS, 3.2, 1, len(metrics))
    for ax, metric in zip(axes[0], metrics):
        for par in paradigms:
            method_line(ax, wide[wide["paradigm"] == par], metric, PARADIGM_LABELS.get(par, par), palette[par],
                        dashed=par == "replace")
        if metric == fid_metric:
            draw_floor(ax, noise_floor)
        ax.set_xlabel(GEN_LABEL)
        ax.set_ylabel(metric_label(metric))
        integer_generations(ax)
    shared_legend(fig, axes.flat)
    note = floor_note(noise_floor)
    figure_title(fig, "D5", f"self-consuming loop with fresh real data{_fid_note(fid_metric)}", wide, extra=note)
    panel = wide["paradigm"].map(lambda p: PARADIGM_LABELS.get(p, p))
    return save_figure(fig, fig_dir, "D5", long_table(wide, metrics, "D5", panel=panel), parts=floor_part(noise_floor))


PLOTTERS = {"F2": plot_f2, "F3": plot_f3, "F4": plot_f4, "F7": plot_f7, "F8": plot_f8, "F9": plot_f9,
            "F10": plot_f10, "F11": plot_f11, "F12": plot_f12, "F13": plot_f13, "F14": plot_f14, "F15": plot_f15,
            "F16": plot_f16, "F17": plot_f17, "D1": plot_d1, "D5": plot_d5}
