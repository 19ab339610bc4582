"""Drawing primitives every figure shares: theme, axis labels, colours, line and image helpers, figure files.

The files a figure writes are ``<FIG>.png``, ``.pdf``, ``.csv``, ``<FIG>_<part>.csv`` and ``<FIG>.json`` (JSON
through :func:`collapse_utils.io.json_default`, the package's one encoder hook).

The paper's figures are drawn by :mod:`collapse_utils.plotting` with these; the numbers come from
:mod:`collapse_utils.analysis`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .analysis import scale_notes
from .io import json_default
from .vocab import PARADIGMS

# Legend order of the selection methods: vanilla first, then the paper's two (vocab.SELECTION_METHODS is not a
# display order); paradigms are shown in the vocabulary's order.
METHOD_ORDER = ("none", "threshold", "greedy", "random")
METHOD_COLORS = {"none": "tab:blue", "threshold": "tab:green", "greedy": "tab:red", "random": "tab:gray"}
PARADIGM_ORDER = PARADIGMS
PARADIGM_LABELS = {"replace": "Replace", "replace_2n": "Replace, 2N images", "accumulate_subsample": "Accumulate",
                   "accumulate": "Accumulate (growing set)", "fresh": "Fresh real data"}
SPACE_LABELS = {"pixel": "pixel space, 0–255", "dinov2": "DINOv2-small CLS", "inception": "Inception pool3",
                "lenet": "MNIST LeNet fc2"}
GEN_LABEL = "Generation (train → sample iteration)"


@dataclass
class FigureOutput:
    """What a plotting function wrote: the figure, its files and the plotted numbers."""

    figure_id: str
    fig: plt.Figure
    files: dict[str, Path]
    data: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def png(self) -> Path:
        return self.files["png"]


# ---------------------------------------------------------------------------------------------- labels
def metric_label(metric: str) -> str:
    """An axis label naming the quantity, its unit and the space it is measured in (PAPER.md §3)."""
    if metric.startswith("gs_"):
        space = metric[3:]
        unit = "L2 distance in pixel space, values 0–255" if space == "pixel" else f"L2 distance, {SPACE_LABELS.get(space, space)}"
        return f"Generalization score ↑\n(to nearest training image; {unit})"
    if metric.startswith("entropy_"):
        return f"Training-set entropy, nats\n(KL estimator k=1; {SPACE_LABELS.get(metric[8:], metric[8:])})"
    labels = {
        "fid": "FID ↓ (Inception pool3)",
        "fid_torchvision": "FID ↓ (torchvision ImageNet Inception,\nthe authors' FID.py)",
        "fd_dinov2": "FD_DINO ↓ (DINOv2-small CLS)",
        "fd_lenet": "FD_LeNet ↓ (MNIST LeNet fc2)",
        "cov_trace": "Trace of covariance\n(pixel values 0–255, squared)",
        "mnnd": "MNND: mean nearest-neighbour L2\n(pixel values 0–255)",
        "mem_ratio": "Memorized share\n(NN distance < ⅓ of 2nd NN, pixels)",
        "real_share": "Share of real images",
        "mem_index_pixel": "Memorization index\n(median NN distance to D_t: samples ÷ held-out; 1 novel, 0 copies)",
        "copy_rate_pixel": "Copy rate\n(share of samples closer to D_t than 95% of held-out draws)",
    }
    return labels.get(metric, metric)


# ---------------------------------------------------------------------------------------------- files
def figure_title(fig: plt.Figure, figure_id: str, text: str, wide: pd.DataFrame, extra: str = "") -> None:
    lines = [f"{figure_id}: {text}"] + [s for s in (scale_notes(wide), extra) if s]
    fig.suptitle("\n".join(lines), fontsize=10)


def save_figure(fig: plt.Figure, fig_dir: str | Path, figure_id: str, data: pd.DataFrame, *,
                parts: dict[str, pd.DataFrame] | None = None, summary: dict[str, Any] | None = None) -> FigureOutput:
    """Write ``<FIG>.png``, ``.pdf``, ``.csv`` (+ ``<FIG>_<part>.csv``, ``<FIG>.json``) and close the figure."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    files = {"png": fig_dir / f"{figure_id}.png", "pdf": fig_dir / f"{figure_id}.pdf",
             "csv": fig_dir / f"{figure_id}.csv"}
    fig.savefig(files["png"], dpi=150, bbox_inches="tight")
    fig.savefig(files["pdf"], bbox_inches="tight")
    data.to_csv(files["csv"], index=False)
    for name, table in (parts or {}).items():
        files[name] = fig_dir / f"{figure_id}_{name}.csv"
        table.to_csv(files[name], index=False)
    if summary is not None:
        files["json"] = fig_dir / f"{figure_id}.json"
        files["json"].write_text(json.dumps(summary, indent=2, default=json_default) + "\n")
    plt.close(fig)
    return FigureOutput(figure_id, fig, files, data, summary or {})


# ---------------------------------------------------------------------------------------------- drawing helpers
def theme() -> None:
    """The seaborn theme every figure of the package is drawn in."""
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def size_hue(wide: pd.DataFrame) -> tuple[pd.Series, list[str], list]:
    sizes = sorted(wide["n"].unique())
    labels = [f"n = {n:,}" for n in sizes]
    return wide["n"].map(dict(zip(sizes, labels))), labels, sns.color_palette("viridis", len(sizes))


def lines_by_size(ax: plt.Axes, wide: pd.DataFrame, metric: str) -> None:
    hue, order, palette = size_hue(wide)
    sns.lineplot(data=wide.assign(size=hue), x="generation", y=metric, hue="size", hue_order=order, palette=palette,
                 marker="o", errorbar="sd", ax=ax)
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label(metric))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(title="dataset size", fontsize=8)


def method_line(ax: plt.Axes, df: pd.DataFrame, metric: str, label: str, color: Any, dashed: bool) -> None:
    sns.lineplot(data=df, x="generation", y=metric, ax=ax, color=color, linestyle="--" if dashed else "-",
                 marker="o", errorbar="sd", label=label)


def _to_rgb(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def tile_images(images: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """A grid (rows × ncols) of uint8 NHWC images as one RGB image, separated by ``pad`` white pixels."""
    images = _to_rgb(images)
    n, h, w, _ = images.shape
    nrows = max(1, math.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def panel_grid(ax_count: int, ncols: int, size: tuple[float, float] = (4.4, 3.5)) -> tuple[plt.Figure, np.ndarray]:
    nrows = max(1, math.ceil(ax_count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[ax_count:]:
        ax.set_visible(False)
    return fig, axes
