"""Every figure of the paper as one plotting function (seaborn / matplotlib), shared by the notebooks.

Each ``plot_fNN`` takes the runs of its experiment (a list of :class:`~collapse_utils.loop.RunResult`) or, for
figures drawn from metrics alone, the table :func:`~collapse_utils.analysis.metrics_frame` makes of them, and writes
``<fig_dir>/<FIG>.png``, ``.pdf`` and the plotted numbers as ``<FIG>.csv`` (tidy: one row per run, generation
and metric, with the run's directory name, so every number can be traced to ``gen_XX/metrics.json``). Extra
panels write ``<FIG>_<part>.csv``; fitted statistics go to ``<FIG>.json``.

Feature spaces follow the paper (PAPER.md §3): Section 3 figures (F2–F4, F14) use pixel-space GS and entropy;
Sections 4–5 (F7–F10, F12, F13) use the runs' feature space (DINOv2 at paper scale, pixels at demo/smoke scale).
Axes name the space. Figures made below paper scale say so in their title
(:func:`collapse_utils.analysis.scale_note`). What is plotted is computed in :mod:`collapse_utils.analysis`; this
module only draws and writes the files.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .analysis import (F11_SETTINGS, METHOD_LABELS, RunsOrTable, as_frame, dataset_label, default_generations,
                       f11_diversity, f11_fid_summary, f11_fid_table, f11_grid_images, f11_label, f11_runs_frame,
                       f11_setting, f11_summary, feature_space_of, is_table, log_fit, long_table, method_label,
                       metrics_frame, nearest_training_pairs, pick_run, require_metrics, source_table, svd_points,
                       with_method_labels)
from .drawing import (GEN_LABEL, METHOD_COLORS, METHOD_ORDER, PARADIGM_LABELS, PARADIGM_ORDER, FigureOutput,
                      figure_title, lines_by_size, method_line, metric_label, panel_grid, save_figure, size_hue, theme,
                      tile_images)

if TYPE_CHECKING:  # pragma: no cover
    from .rundir import RunResult


# ---------------------------------------------------------------------------------------------- F2
def _pairs_image(run: "RunResult", pairs: pd.DataFrame) -> tuple[np.ndarray, list[float], list[str]]:
    blocks, ticks, labels, top = [], [], [], 0
    by_gen = {g.generation: g for g in run.generations}
    for gen, sub in pairs.groupby("generation"):
        g = by_gen[gen]
        gen_imgs = g.samples[sub["sample_index"].to_numpy()]
        nn_imgs = g.train_images[sub["train_index"].to_numpy()]
        block = tile_images(np.concatenate([gen_imgs, nn_imgs]), ncols=len(sub))
        h = block.shape[0]
        ticks += [top + h / 4, top + 3 * h / 4]
        labels += [f"gen {gen}: generated", f"nearest training\n(mean L2 {sub['l2_pixel'].mean():.0f})"]
        blocks += [block, np.full((max(2, h // 8), block.shape[1], 3), 255, np.uint8)]
        top += h + blocks[-1].shape[0]
    return np.concatenate(blocks[:-1]), ticks, labels


def plot_f2(runs: RunsOrTable, fig_dir: str | Path, *, pair_size: int | None = None,
            pair_generations: Sequence[int] | None = None, n_pairs: int = 6) -> FigureOutput:
    """F2 (paper Fig. 2): generalization score (pixels, log axis) vs generation per dataset size (replace), with
    generated samples above their nearest training images at early, middle and late generations (smallest n),
    and, where the runs have them, the memorization index and copy rate per generation (PAPER.md §3.7)."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["gs_pixel"], "F2")
    with_pairs = not is_table(runs)
    memo = [m for m in MEMORIZATION_PANELS if m in wide.columns and wide[m].notna().any()]
    cols = (2 if with_pairs else 1) + len(memo)
    ratios = ([1.1] if with_pairs else []) + [1] * (cols - int(with_pairs))
    fig, axes = plt.subplots(1, cols, figsize=(6 * cols, 4.6), squeeze=False, gridspec_kw={"width_ratios": ratios})
    ax = axes[0, int(with_pairs)]
    lines_by_size(ax, wide, "gs_pixel")
    ax.set_yscale("log")
    ax.set_ylabel(metric_label("gs_pixel") + ", log scale")
    ax.set_title("Generalization score vs generation (replace)")
    for ax, metric in zip(axes[0, int(with_pairs) + 1:], memo):
        lines_by_size(ax, wide, metric)
        ax.axhline(MEMORIZATION_PANELS[metric], color="0.4", lw=1, ls=":", label="fresh draws (expected)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title({"mem_index_pixel": "Memorization index vs generation",
                      "copy_rate_pixel": "Copy rate vs generation"}[metric])
        ax.legend(fontsize=8)
    parts = {}
    if with_pairs:
        run = pick_run(runs, pair_size)
        pairs = nearest_training_pairs(run, pair_generations or default_generations(run), k=n_pairs)
        img, ticks, labels = _pairs_image(run, pairs)
        axes[0, 0].imshow(img, interpolation="nearest")
        axes[0, 0].set_yticks(ticks, labels, fontsize=8)
        axes[0, 0].set_xticks([])
        axes[0, 0].grid(False)
        axes[0, 0].set_title(f"Generated images and their nearest training image (n = {run.config.n:,})")
        parts["pairs"] = pairs
    figure_title(fig, "F2", "the generalization-to-memorization transition", wide)
    fig.tight_layout()
    return save_figure(fig, fig_dir, "F2", long_table(wide, ["gs_pixel", *memo], "F2"), parts=parts)


# Memorization panels and the value fresh draws of the training set's source give (PAPER.md §3.7).
MEMORIZATION_PANELS = {"mem_index_pixel": 1.0, "copy_rate_pixel": 0.05}


# ---------------------------------------------------------------------------------------------- F3
def plot_f3(runs: RunsOrTable, fig_dir: str | Path, *, svd_size: int | None = None,
            svd_generations: Sequence[int] | None = None, components: Sequence[int] = (1, 2)) -> FigureOutput:
    """F3 (paper Fig. 3): training-set entropy (pixels) vs generation by size, and 2-D SVD projections of real
    vs generated images at the first and last generation (median size unless ``svd_size``)."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["entropy_pixel"], "F3")
    with_svd = not is_table(runs)
    fig, axes = plt.subplots(1, 3 if with_svd else 1, figsize=(15 if with_svd else 5.5, 4.4), squeeze=False)
    lines_by_size(axes[0, 0], wide, "entropy_pixel")
    axes[0, 0].set_title("Entropy of the training set (replace)")
    parts = {}
    if with_svd:
        run = pick_run(runs, svd_size, default="median")
        gens = list(svd_generations or [run.generations[0].generation, run.generations[-1].generation])
        pts = svd_points(run, gens, components)
        real = pts[pts["set"] == "real"]
        for ax, gen in zip(axes[0, 1:], gens[:2]):
            ax.scatter(real["x"], real["y"], s=6, alpha=0.45, color="tab:blue", label="Real images")
            sub = pts[(pts["set"] == "generated") & (pts["generation"] == gen)]
            ax.scatter(sub["x"], sub["y"], s=6, alpha=0.45, color="tab:orange", label=f"Generation {gen}")
            ax.set_xlabel(f"projection on real singular vector {components[0] + 1}")
            ax.set_ylabel(f"projection on real singular vector {components[1] + 1}")
            ax.set_title(f"Real vs generated, generation {gen} (n = {run.config.n:,})")
            ax.legend(fontsize=8, markerscale=2)
        parts["svd"] = pts
    figure_title(fig, "F3", "entropy declines and generated images concentrate", wide)
    fig.tight_layout()
    return save_figure(fig, fig_dir, "F3", long_table(wide, ["entropy_pixel"], "F3"), parts=parts)


# ---------------------------------------------------------------------------------------------- F4
def _scatter_fit(ax: plt.Axes, wide: pd.DataFrame, xcol: str, fit: dict[str, Any]) -> None:
    hue, order, palette = size_hue(wide)
    sns.scatterplot(data=wide.assign(size=hue), x=xcol, y="gs_pixel", hue="size", hue_order=order, palette=palette,
                    ax=ax, s=40)
    ax.set_yscale("log")
    ax.set_xlabel(metric_label(xcol))
    ax.set_ylabel(metric_label("gs_pixel") + ", log scale")
    if fit["pearson_r"] is not None:
        xs = np.linspace(wide[xcol].min(), wide[xcol].max(), 50)
        ax.plot(xs, np.exp(fit["slope"] * xs + fit["intercept"]), "r--", lw=1.5, label="fit of log GS")
        text = f"Pearson r (x, log GS) = {fit['pearson_r']:.3f}\n{fit['points']} points"
    else:
        text = f"Pearson r undefined ({fit['points']} points)"
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=9,
            bbox=dict(boxstyle="round", facecolor="white", alpha=0.85))
    ax.legend(fontsize=8, loc="lower right")


def plot_f4(runs: RunsOrTable, fig_dir: str | Path) -> FigureOutput:
    """F4 (paper Fig. 4a/b): GS (log) against training-set entropy and against covariance trace, pooled over
    sizes and generations; Pearson r of entropy vs log GS (paper: 0.91) printed with its fit line."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["gs_pixel", "entropy_pixel", "cov_trace"], "F4")
    fits = {"entropy_pixel": log_fit(wide["entropy_pixel"], wide["gs_pixel"]),
            "cov_trace": log_fit(wide["cov_trace"], wide["gs_pixel"])}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, xcol, title in zip(axes, fits, ("(a) entropy", "(b) variance (trace of covariance)")):
        _scatter_fit(ax, wide, xcol, fits[xcol])
        ax.set_title(title)
    figure_title(fig, "F4", "generalization score vs properties of the training set (each point: one generation of one "
           "run, pooled over sizes)", wide)
    fig.tight_layout()
    summary = {"entropy_vs_log_gs": fits["entropy_pixel"], "cov_trace_vs_log_gs": fits["cov_trace"]}
    return save_figure(fig, fig_dir, "F4", long_table(wide, ["gs_pixel", "entropy_pixel", "cov_trace"], "F4"),
                       summary=summary)


# ---------------------------------------------------------------------------------------------- F7, F8, F9, F15
def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda v: (order.index(v) if v in order else len(order), v))


def plot_methods_grid(runs: RunsOrTable, fig_dir: str | Path, *, figure_id: str, metric: str, title: str,
                      note: str | None = None, ylabel: str | None = None, log_y: bool = False,
                      floor: dict[str, Any] | None = None) -> FigureOutput:
    """Vanilla / Threshold Decay Filter / Greedy lines, one panel per dataset (rows) × paradigm (columns), with a
    Fréchet distance's noise ``floor`` (figures.noise_floor) as a dotted line when given."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, [metric], figure_id)
    datasets = list(dict.fromkeys(wide["dataset"]))
    paradigms = _ordered(wide["paradigm"], PARADIGM_ORDER)
    fig, axes = plt.subplots(len(datasets), len(paradigms), figsize=(4.6 * len(paradigms), 3.6 * len(datasets)),
                             squeeze=False)
    panel = wide["dataset"].map(dataset_label) + " " + wide["paradigm"].map(lambda p: PARADIGM_LABELS.get(p, p))
    for i, ds in enumerate(datasets):
        for j, par in enumerate(paradigms):
            ax, sub = axes[i, j], wide[(wide["dataset"] == ds) & (wide["paradigm"] == par)]
            for m in _ordered(sub["selection"], METHOD_ORDER):
                method_line(ax, sub[sub["selection"] == m], metric, method_label(m), METHOD_COLORS.get(m),
                             dashed=m == "none")
            draw_floor(ax, floor)
            ax.set_title(f"{dataset_label(ds)} {PARADIGM_LABELS.get(par, par)}")
            ax.set_xlabel(GEN_LABEL)
            ax.set_ylabel(ylabel or metric_label(metric))
            ax.xaxis.get_major_locator().set_params(integer=True)
            if log_y:
                ax.set_yscale("log")
            ax.legend(fontsize=8)
    note = " ".join(x for x in (note, floor_note(floor)) if x)
    figure_title(fig, figure_id, title, wide, extra=textwrap.fill(note, 110) if note else "")
    fig.tight_layout()
    return save_figure(fig, fig_dir, figure_id, long_table(wide, [metric], figure_id, panel=panel),
                       parts=floor_part(floor))


def plot_f7(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None) -> FigureOutput:
    """F7 (paper Fig. 5): generalization score ("Gen ↑") of vanilla / TDF / Greedy, panels dataset × paradigm."""
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
            "fd_lenet": " (FD_LeNet: held-out samples vs MNIST test images, in place of FID at this scale)"
            }.get(fid_metric, f" ({fid_metric})")


def draw_floor(ax: plt.Axes, floor: dict[str, Any] | None) -> None:
    """The noise floor of a Fréchet distance as a dotted line (nothing when it could not be measured)."""
    if floor and floor.get("value") is not None:
        ax.axhline(floor["value"], color="0.35", lw=1, ls=":", label=f"noise floor ({floor['samples']:,}/side)")


def floor_note(floor: dict[str, Any] | None) -> str:
    if not floor:
        return ""
    if floor.get("value") is None:
        return floor.get("what", "")
    return f"noise floor {floor['value']:.3g} = {floor['what']}"


def plot_f9(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None) -> FigureOutput:
    """F9 (paper Fig. 7): training-set entropy ("Entropy ↑") of vanilla / TDF / Greedy, panels dataset × paradigm."""
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
    label = {"fid": "Inception pool3 space", "fd_lenet": "MNIST LeNet space"}.get(metric, metric)
    out = plot_methods_grid(runs, fig_dir, figure_id="F15", metric=metric,
                            title="Fréchet distance in DINO space (FD_DINO ↓)" if dino
                            else "Fréchet distance — FALLBACK space, not DINO", note=fallback_note,
                            ylabel=None if dino else f"FD ↓ in {label}\n(fallback for FD_DINO)")
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
                     + data["selection"].map(lambda s: METHOD_LABELS.get(s, s)))
    panels = list(dict.fromkeys(data["panel"]))
    fig, axes = panel_grid(len(panels), min(4, len(panels)))
    max_gen = int(data["generation"].max())
    colors = ["tab:blue"] + list(sns.color_palette("YlOrBr", max(2, max_gen))[: max_gen])
    for ax, name in zip(axes.flat, panels):
        shares = data[data["panel"] == name].groupby(["generation", "source"])["share"].mean().unstack(fill_value=0)
        bottom = np.zeros(len(shares))
        for src in shares.columns:
            ax.bar(shares.index, shares[src], bottom=bottom, color=colors[src], width=0.8,
                   label="real" if src == 0 else f"generation {src}", edgecolor="white", linewidth=0.5)
            bottom += shares[src].to_numpy()
        g = np.arange(1, shares.index.max() + 1)
        ax.plot(g, 1 / g, "r-o", ms=4, label="even mix: 1/g real")
        ax.set_title(name)
        ax.set_xlabel(GEN_LABEL)
        ax.set_ylabel("Share of the training set")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(g)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="source")
    figure_title(fig, "F10", "where the selected training set comes from", wide)
    fig.tight_layout(rect=(0, 0, 0.87, 1))
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
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)


def floor_part(floor: dict[str, Any] | None) -> dict[str, pd.DataFrame]:
    """The noise floor as its own CSV beside the figure's (``<figure>_floor.csv``)."""
    return {"floor": pd.DataFrame([floor])} if floor else {}


def plot_f12(runs: RunsOrTable, fig_dir: str | Path, *, feature_space: str | None = None,
             fid_metric: str = "fid", noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F12 (appendix C.1): replace with N images, with 2N unselected images, and N selected by TDF / Greedy;
    FID (``fid_metric``, the figure's ``fid_mode``) and generalization score."""
    theme()
    wide = with_method_labels(as_frame(runs))
    fs = feature_space_of(wide, feature_space)
    metrics = [fid_metric, f"gs_{fs}"]
    require_metrics(wide, metrics, "F12")
    styles = {"Vanilla": ("tab:blue", True), "Vanilla with 2N images": ("tab:purple", True),
              "Threshold Decay Filter": ("tab:green", False), "Greedy Selection": ("tab:red", False)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, m in zip(axes, metrics):
        _labelled_lines(ax, wide, m, styles)
        ax.set_title(f"{', '.join(map(dataset_label, wide['dataset'].unique()))} Replace")
    draw_floor(axes[0], noise_floor)
    axes[0].legend(fontsize=8)
    figure_title(fig, "F12", f"ablation: vanilla with 2N images vs selecting N{_fid_note(fid_metric)}", wide,
                 extra=textwrap.fill(floor_note(noise_floor), 110))
    fig.tight_layout()
    return save_figure(fig, fig_dir, "F12", long_table(wide, metrics, "F12", panel=wide["label"]),
                       parts=floor_part(noise_floor))


def plot_f13(runs: RunsOrTable, fig_dir: str | Path, *, fid_metric: str = "fid",
             noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F13 (appendix C): FID (``fid_metric``, the figure's ``fid_mode``) under accumulate for vanilla, Greedy and
    the Threshold Decay Filter at each decay α."""
    theme()
    wide = with_method_labels(as_frame(runs))
    require_metrics(wide, [fid_metric], "F13")
    decays = sorted(d for d in wide.loc[wide["selection"] == "threshold", "decay"].dropna().unique())
    greens = sns.color_palette("Greens", len(decays) + 2)[2:]
    styles = {"Vanilla": ("tab:blue", True), "Greedy Selection": ("tab:red", False)}
    styles.update({method_label("threshold", decay=d): (c, False) for d, c in zip(decays, greens)})
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    _labelled_lines(ax, wide, fid_metric, styles)
    draw_floor(ax, noise_floor)
    ax.legend(fontsize=8)
    ax.set_title(f"{', '.join(map(dataset_label, wide['dataset'].unique()))} Accumulate")
    figure_title(fig, "F13", f"ablation over the decay factor α of the Threshold Decay Filter{_fid_note(fid_metric)}",
                 wide, extra=textwrap.fill(floor_note(noise_floor), 110))
    fig.tight_layout()
    return save_figure(fig, fig_dir, "F13", long_table(wide, [fid_metric], "F13", panel=wide["label"]),
                       parts=floor_part(noise_floor))


# ---------------------------------------------------------------------------------------------- F14
def plot_f14(runs: RunsOrTable, fig_dir: str | Path) -> FigureOutput:
    """F14 (appendix D.4): mean nearest-neighbour distance (left axis) and trace of covariance (right axis) of the
    training set vs generation, per dataset size (replace): neighbours collapse long before the variance does."""
    theme()
    wide = as_frame(runs)
    require_metrics(wide, ["mnnd", "cov_trace"], "F14")
    hue, order, palette = size_hue(wide)
    wide = wide.assign(size=hue)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax2 = ax.twinx()
    for label, color in zip(order, palette):
        sub = wide[wide["size"] == label]
        sns.lineplot(data=sub, x="generation", y="mnnd", ax=ax, color=color, marker="o", errorbar="sd",
                     label=f"{label}: MNND")
        sns.lineplot(data=sub, x="generation", y="cov_trace", ax=ax2, color=color, marker="s", linestyle="--",
                     errorbar="sd", label=f"{label}: trace")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label("mnnd") + " — solid")
    ax2.set_ylabel(metric_label("cov_trace") + " — dashed")
    ax2.grid(False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.get_legend().remove()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, ncol=2)
    figure_title(fig, "F14", "memorization (MNND) vs variance of the training set", wide)
    fig.tight_layout()
    return save_figure(fig, fig_dir, "F14", long_table(wide, ["mnnd", "cov_trace"], "F14"))


# ---------------------------------------------------------------------------------------------- F17
def plot_f17(runs: Sequence["RunResult"], fig_dir: str | Path, *, max_generations: int = 6, grid: int = 8) -> FigureOutput:
    """F17 (appendix D.3): the first grid×grid generated images of each generation (columns), one row per dataset
    size (replace); each panel's title carries that generation's generalization score (pixels)."""
    theme()
    runs = sorted(runs, key=lambda r: (r.config.n, r.config.seed))
    wide = metrics_frame(runs)
    require_metrics(wide, ["gs_pixel"], "F17")
    ncols = min(max_generations, max(len(r.generations) for r in runs))
    fig, axes = plt.subplots(len(runs), ncols, figsize=(2.1 * ncols, 2.6 * len(runs)), squeeze=False)
    shown = []
    for i, r in enumerate(runs):
        for j, ax in enumerate(axes[i]):
            ax.axis("off")
            if j >= len(r.generations):
                continue
            g = r.generations[j]
            k = min(grid * grid, len(g.samples))
            cols = min(grid, k)
            ax.imshow(tile_images(g.samples[:k], ncols=cols), interpolation="nearest")
            ax.set_title(f"n={r.config.n:,} · gen {g.generation}\nGS {g.metrics['gs_pixel']:.1f}", fontsize=8)
            shown.append(dict(run=r.run_dir.name, generation=g.generation, images_shown=k))
    figure_title(fig, "F17", "generated images over generations (replace), first samples of each generation", wide)
    fig.tight_layout()
    data = long_table(wide, ["gs_pixel"], "F17")
    data = data.merge(pd.DataFrame(shown), on=["run", "generation"], how="inner")
    return save_figure(fig, fig_dir, "F17", data)


# ---------------------------------------------------------------------------------------------- F11
F11_COLORS = {"unconditional": "tab:gray", "cfg": "tab:blue", "cfg_selection": "tab:green"}
def _f11_grid(ax: plt.Axes, run: "RunResult", generation: int, per_digit: int) -> dict[str, Any]:
    images, per_digit = f11_grid_images(run, generation, per_digit)
    ax.imshow(tile_images(images, ncols=per_digit), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if run.config.conditional:
        ax.set_ylabel("digit 0 → 9 (top to bottom)", fontsize=7)
    ax.set_title(f"{f11_label(run.config)}\ngeneration {generation}", fontsize=8)
    return dict(run=run.run_dir.name, setting=f11_setting(run.config), generation=generation, images_shown=len(images))


def plot_f11(runs: Sequence["RunResult"], fig_dir: str | Path, *, grid_generations: Sequence[int] | None = None,
             per_digit: int = 10, fid_reference: dict[str, Any] | None = None,
             fid_metric: str = "fid", noise_floor: dict[str, Any] | None = None) -> FigureOutput:
    """F11 (PAPER.md F11, §6 item 8): MNIST with classifier-free guidance under accumulate.

    Rows of sample grids (one image row per digit) at ``grid_generations`` (default: first and last) for CFG
    without and with selection, and unconditional samples; beside them the training-set entropy (pixels) over
    generations, the FID table at the last generation (with [PN]'s unverified numbers and the held-out-real floor
    ``fid_reference`` from :func:`collapse_utils.run_metrics.ensure_last_generation_fid`), and the within-digit
    diversity of the samples (mean nearest-neighbour distance inside each digit, real images for reference).
    ``fid_metric`` (the figure's ``fid_mode``): ``fid`` (clean-fid) or ``fid_torchvision`` (the authors' network).
    """
    theme()
    runs, wide = f11_runs_frame(runs)
    require_metrics(wide, ["entropy_pixel"], "F11")
    first = {s: next(r for r in runs if f11_setting(r.config) == s) for s in F11_SETTINGS
             if any(f11_setting(r.config) == s for r in runs)}
    gens = [g.generation for g in first[next(iter(first))].generations]
    grid_generations = list(grid_generations or sorted({gens[0], gens[-1]}))
    fig, axes = plt.subplots(3, len(grid_generations) + 1, figsize=(3.1 * len(grid_generations) + 5.2, 10.5),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * len(grid_generations) + [1.6]})
    shown = []
    for i, setting in enumerate(("cfg", "cfg_selection", "unconditional")):
        for j, gen in enumerate(grid_generations):
            ax = axes[i, j]
            if setting in first:
                shown.append(_f11_grid(ax, first[setting], gen, per_digit))
            else:
                ax.axis("off")
    # entropy over generations
    ax = axes[0, -1]
    for setting in F11_SETTINGS:
        sub = wide[wide["setting"] == setting]
        if not sub.empty:
            method_line(ax, sub, "entropy_pixel", sub["label"].iloc[0], F11_COLORS[setting], setting == "unconditional")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label("entropy_pixel"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    ax.set_title("training-set entropy (paper: CFG falls, CFG + filter rises)", fontsize=8)
    # FID table at the last generation
    fid = f11_fid_table(runs, fid_reference, fid_metric)
    ax = axes[1, -1]
    ax.axis("off")
    table = f11_fid_summary(fid)
    cells = [[textwrap.fill(row.label, 34), f"{row.fid:.1f}" + (f" ± {row.sd:.1f}" if row.sd == row.sd else ""),
              f"{int(row.samples)}", "" if row.paper != row.paper or row.paper is None else f"{row.paper:.1f}"]
             for row in table.itertuples()]
    tab = ax.table(cellText=cells, colLabels=["setting", f"FID, gen {gens[-1]}", "images", "paper (it. 8)"],
                   loc="center", cellLoc="center", colWidths=[0.52, 0.2, 0.12, 0.18])
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 2.6)
    network = {"fid": "Inception pool3, clean-fid", "fid_torchvision": "torchvision Inception, the authors' FID.py",
               "fd_lenet": "FD_LeNet, held-out samples vs MNIST test images"}.get(fid_metric, fid_metric)
    ax.set_title(f"FID ↓ at the last generation ({network})\npaper column: [PN], unverified",
                 fontsize=8)
    # within-digit diversity of the samples
    div = f11_diversity(runs)
    ax = axes[2, -1]
    for setting in ("cfg", "cfg_selection"):
        sub = div[div["setting"] == setting] if not div.empty else div
        if not sub.empty:
            sns.lineplot(data=sub, x="generation", y="within_digit_mnnd_samples", ax=ax, color=F11_COLORS[setting],
                         marker="o", errorbar="sd", label=sub["label"].iloc[0])
    if not div.empty:
        ax.axhline(div["within_digit_mnnd_real"].mean(), color="k", ls=":", lw=1, label="real training images")
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel("within-digit MNND of samples\n(pixel space, 0–255)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    ax.set_title("diversity inside each digit (samples)", fontsize=8)
    figure_title(fig, "F11", "MNIST with classifier-free guidance (accumulate): per-digit samples, entropy, FID", wide)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    data = pd.concat([long_table(wide, ["entropy_pixel"], "F11", panel=wide["setting"], extra=("setting",)),
                      fid[fid["metric"] == fid_metric].assign(figure="F11", panel="fid")[
                          ["figure", "panel", "run", "setting", "seed", "generation", "metric", "value"]]],
                     ignore_index=True)
    summary = f11_summary(runs, wide, table, shown)
    return save_figure(fig, fig_dir, "F11", data, parts={"fid": fid, "diversity": div}, summary=summary)


PLOTTERS = {"F2": plot_f2, "F3": plot_f3, "F4": plot_f4, "F7": plot_f7, "F8": plot_f8, "F9": plot_f9,
            "F10": plot_f10, "F11": plot_f11, "F12": plot_f12, "F13": plot_f13, "F14": plot_f14, "F15": plot_f15, "F17": plot_f17}
