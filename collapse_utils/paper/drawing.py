"""Drawing primitives every figure shares: theme, axis labels, colours, line and image helpers, figure files.

The files a figure writes are ``<FIG>.png``, ``.pdf``, ``.csv``, ``<FIG>_<part>.csv`` and ``<FIG>.json`` (JSON
through :func:`collapse_utils.core.io.json_default`, the package's one encoder hook).

The paper's figures are drawn by :mod:`collapse_utils.paper.plotting` with these; the numbers come from
:mod:`collapse_utils.paper.analysis`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
import textwrap
from pathlib import Path
from typing import Any, Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .analysis import scale_notes
from ..core.io import json_default
from ..core.vocab import PARADIGM_LABELS, PARADIGMS  # noqa: F401  (PARADIGM_LABELS re-exported)
from ..core.vocab import REAL_REFERENCE_FEATURE_METRICS, REAL_REFERENCE_METRICS, real_reference_metrics

# Selection methods are drawn in the registry's order (vanilla first, then the paper's two, random, then methods
# of one's own) with the registry's colours (collapse_utils.core.methods); paradigms in the vocabulary's order.
PARADIGM_ORDER = PARADIGMS
SPACE_LABELS = {"pixel": "pixel space, 0–255", "dinov2": "DINOv2-small CLS", "inception": "Inception pool3",
                "lenet": "MNIST LeNet fc2"}
GEN_LABEL = "Generation"

# Print sizes of a two-column journal page: every figure is one column or the full page wide (inches), drawn at a
# fixed resolution so that redrawing the same numbers gives the same files.
ONE_COLUMN = 3.5
TWO_COLUMNS = 7.2
DPI = 300
# Font sizes in points at print size (nothing smaller than 7 pt).
FONT_SIZE = 8
SMALL_FONT = 7
TITLE_FONT = 9


@dataclass
class FigureOutput:
    """What a plotting function wrote: the figure, its files and the plotted numbers.

    ``fig`` is the drawn (and closed) figure: it can still be rendered, e.g. to check its layout
    (:func:`text_layout_problems`).
    """

    figure_id: str
    fig: plt.Figure
    files: dict[str, Path]
    data: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def png(self) -> Path:
        return self.files["png"]


# ---------------------------------------------------------------------------------------------- labels
# Axis labels are short: the quantity, its direction (↑ higher is better, ↓ lower) and its unit / space. What the
# quantity is exactly lives in METRIC_NOTES (for captions and notebooks), not on the axis.
_SPACE_SHORT = {"pixel": "px", "dinov2": "DINOv2", "inception": "Inception", "lenet": "LeNet"}
_LABELS = {
    "fid": "FID ↓ (Inception)",
    "fid_torchvision": "FID ↓ (torchvision Inc.)",
    "fd_dinov2": "FD_DINO ↓",
    "fd_lenet": "FD_LeNet ↓",
    "cov_trace": "Trace of cov. (px²)",
    "mnnd": "MNND (px L2)",
    "mem_ratio": "Memorized share",
    "real_share": "Share of real images",
    "mem_index_pixel": "Memorization index",
    "copy_rate_pixel": "Copy rate",
    "rho_pixel": "ρ (NN dist. ÷ real's)",
    "contraction_pixel": "κ (NN dist. ÷ real's)",
    "copy_rate_real_pixel": "Copy rate (real ref.)",
}
METRIC_NOTES = {
    "gs": "Generalization score: mean L2 distance from each generated image to its nearest training image",
    "entropy": "Training-set entropy in nats: Kozachenko–Leonenko estimator with k = 1",
    "fid": "FID: Fréchet distance in the pool3 features of clean-fid's standard FID Inception",
    "fid_torchvision": "FID through torchvision's ImageNet inception_v3 (the authors' FID.py)",
    "fd_dinov2": "FD_DINO: Fréchet distance in DINOv2-small CLS features",
    "fd_lenet": "FD_LeNet: Fréchet distance in the bundled MNIST LeNet's fc2 features between held-out samples and "
                "MNIST test images (stands in for FID at demo/smoke scale; not comparable with Inception FID)",
    "cov_trace": "Trace of the covariance of the training images (pixel values 0–255, squared)",
    "mnnd": "MNND: mean nearest-neighbour L2 distance inside the training set (pixel values 0–255)",
    "mem_ratio": "Memorized share: samples whose nearest training image is closer than ⅓ of the 2nd nearest (pixels)",
    "mem_index_pixel": "Memorization index (beyond the source): median NN distance of samples to D_t divided by "
                       "that of held-out draws of D_t's source (1: as novel as fresh draws, 0: copies)",
    "copy_rate_pixel": "Copy rate (beyond the source): share of samples closer to D_t than 95% of held-out draws of "
                       "D_t's source (fresh draws: 0.05)",
    "rho_pixel": "ρ: median NN distance of samples to D_t divided by that of held-out real images to D_1, a fixed "
                 "real reference (= memorization index × κ; held-out real images: 1)",
    "contraction_pixel": "κ: median NN distance of held-out draws of D_t's source to D_t divided by that of "
                         "held-out real images to D_1 (the source's contraction; 1 at generation 1)",
    "copy_rate_real_pixel": "Copy rate vs a fixed real reference: share of samples closer to D_t than 95% of "
                            "held-out real images are to D_1 (held-out real images: 0.05)",
    "px": "px: pixel space, values 0–255",
}


def _real_reference_space(metric: str) -> tuple[str, str] | None:
    """``("rho_pixel", "lenet")`` for ``rho_lenet``: a real-referenced metric in a network's space
    (vocab.REAL_REFERENCE_FEATURE_METRICS) as its pixel name and the space; None for any other metric."""
    space = REAL_REFERENCE_FEATURE_METRICS.get(metric)
    if space is None:
        return None
    return dict(zip(real_reference_metrics(space), REAL_REFERENCE_METRICS))[metric], space


def metric_label(metric: str) -> str:
    """A short axis label: the quantity, ↑/↓ and its unit or space, e.g. ``GS ↑ (px L2)``, ``Entropy ↑ (nats,
    px)`` (the full definition: :func:`metric_note`)."""
    feature = _real_reference_space(metric)
    if feature is not None:
        return _LABELS[feature[0]].replace("(", f"({_SPACE_SHORT[feature[1]]} ", 1) if "(" in _LABELS[feature[0]] \
            else f"{_LABELS[feature[0]]} ({_SPACE_SHORT[feature[1]]})"
    if metric.startswith("gs_"):
        space = metric[3:]
        return f"GS ↑ ({_SPACE_SHORT.get(space, space)} L2)"
    if metric.startswith("entropy_"):
        space = metric[8:]
        return f"Entropy ↑ (nats, {_SPACE_SHORT.get(space, space)})"
    return _LABELS.get(metric, metric)


def metric_note(metric: str) -> str:
    """The full definition behind :func:`metric_label`'s short label (for captions)."""
    feature = _real_reference_space(metric)
    if feature is not None:
        return f"{METRIC_NOTES[feature[0]]}; distances in {SPACE_LABELS[feature[1]]} features, not pixels"
    for prefix in ("gs_", "entropy_"):
        if metric.startswith(prefix):
            space = SPACE_LABELS.get(metric[len(prefix):], metric[len(prefix):])
            return f"{METRIC_NOTES[prefix[:-1]]} ({space})"
    return METRIC_NOTES.get(metric, metric)


def seed_note(wide: pd.DataFrame, what: str = "lines") -> str:
    """How many seeds each plotted line averages: ``"1 seed"`` or ``"mean ± sd over 3 seeds"`` (a range where the
    settings differ)."""
    if "seed" not in wide or wide.empty:
        return ""
    keys = [c for c in ("dataset", "n", "paradigm", "selection", "decay", "feature_space", "setting") if c in wide]
    counts = wide.groupby(keys, dropna=False)["seed"].nunique() if keys else pd.Series([wide["seed"].nunique()])
    lo, hi = int(counts.min()), int(counts.max())
    if hi <= 1:
        return f"{what}: 1 seed"
    return f"{what}: mean ± sd over {lo if lo == hi else f'{lo}–{hi}'} seeds"


# ---------------------------------------------------------------------------------------------- files
def wrap_to_width(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped (at spaces, each line separately) to fit ``width_in`` inches at ``fontsize`` points, with
    the lines of a wrapped paragraph balanced (no one-word last line)."""
    chars = max(20, int(width_in * 72 / (0.56 * fontsize)))

    def wrap(line: str, width: int) -> list[str]:
        return textwrap.wrap(line, width, break_on_hyphens=False)

    def balanced(line: str) -> str:
        lines = wrap(line, chars) or [line]
        width = chars
        while width > 10 and len(wrap(line, width - 1)) == len(lines):
            width -= 1
        return "\n".join(wrap(line, width)) if len(lines) > 1 else line

    return "\n".join(balanced(line) if line else line for line in text.split("\n"))


def figure_title(fig: plt.Figure, figure_id: str, text: str, wide: pd.DataFrame, extra: str = "", *,
                 seeds: str | None = None) -> None:
    """The figure's title: ``<FIG>: text (seeds)`` with the seed count (``seeds``, default :func:`seed_note`), then
    the scale note for figures below paper scale and ``extra``, each wrapped to the figure's width.

    Figure heights are chosen for a title of two lines; a longer title makes the figure taller by its extra lines
    (so the panels keep their size).
    """
    width = fig.get_figwidth() - 0.15
    seeds = seed_note(wide) if seeds is None else seeds
    lines = [f"{figure_id}: {text}" + (f" ({seeds})" if seeds else "")] + [s for s in (scale_notes(wide), extra) if s]
    title = "\n".join(wrap_to_width(s, width, FONT_SIZE) for s in lines)
    extra_lines = title.count("\n") + 1 - 2
    if extra_lines > 0:
        fig.set_figheight(round(fig.get_figheight() + extra_lines * FONT_SIZE * 1.3 / 72, 2))
    fig.suptitle(title, fontsize=FONT_SIZE)


def save_figure(fig: plt.Figure, fig_dir: str | Path, figure_id: str, data: pd.DataFrame, *,
                parts: dict[str, pd.DataFrame] | None = None, summary: dict[str, Any] | None = None) -> FigureOutput:
    """Write ``<FIG>.png``, ``.pdf``, ``.csv`` (+ ``<FIG>_<part>.csv``, ``<FIG>.json``) and close the figure.

    The PNG and PDF keep the figure's size (no tight bounding box: the layout engine places everything inside
    it) at :data:`DPI`; the PDF carries no creation date, so the same figure gives the same bytes.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    files = {"png": fig_dir / f"{figure_id}.png", "pdf": fig_dir / f"{figure_id}.pdf",
             "csv": fig_dir / f"{figure_id}.csv"}
    fig.savefig(files["png"], dpi=DPI, metadata={"Software": None})
    fig.savefig(files["pdf"], dpi=DPI, metadata={"CreationDate": None, "ModDate": None, "Producer": None,
                                                 "Creator": None})
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
    """The seaborn theme every figure of the package is drawn in: white grid, print font sizes (7–9 pt), thin
    lines."""
    sns.set_theme(style="whitegrid", context="paper", rc={
        "font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE, "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": SMALL_FONT, "ytick.labelsize": SMALL_FONT, "legend.fontsize": SMALL_FONT,
        "legend.title_fontsize": SMALL_FONT, "figure.titlesize": TITLE_FONT, "axes.titlepad": 3.0,
        "axes.labelpad": 2.0, "lines.linewidth": 1.2, "lines.markersize": 3.5, "axes.linewidth": 0.6,
        "grid.linewidth": 0.4, "xtick.major.pad": 2.0, "ytick.major.pad": 2.0, "legend.borderaxespad": 0.3,
        "legend.handlelength": 1.6, "legend.labelspacing": 0.3, "legend.framealpha": 0.85, "pdf.fonttype": 42,
        "figure.constrained_layout.h_pad": 0.03, "figure.constrained_layout.w_pad": 0.03,
        "savefig.dpi": DPI})


def new_figure(width: float = TWO_COLUMNS, height: float = 3.0, nrows: int = 1, ncols: int = 1,
               **kw: Any) -> tuple[plt.Figure, np.ndarray]:
    """A ``width`` × ``height`` inch figure (use :data:`ONE_COLUMN` or :data:`TWO_COLUMNS`) with an
    ``nrows`` × ``ncols`` array of axes, laid out by matplotlib's constrained layout (titles, labels and legends
    outside the axes are kept inside the canvas)."""
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", squeeze=False, **kw)


def size_hue(wide: pd.DataFrame) -> tuple[pd.Series, list[str], list]:
    sizes = sorted(wide["n"].unique())
    labels = [f"n = {n:,}" for n in sizes]
    return wide["n"].map(dict(zip(sizes, labels))), labels, sns.color_palette("viridis", len(sizes))


def log_y(ax: plt.Axes) -> None:
    """A log y axis labelled in plain numbers (30, 50, 100, 200) instead of powers of ten."""
    from matplotlib import ticker

    ax.set_yscale("log")

    def minor(value: float, _: Any) -> str:
        lead = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return f"{value:g}" if lead in (2, 5) else ""

    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(minor))


def integer_generations(ax: plt.Axes) -> None:
    ax.xaxis.get_major_locator().set_params(integer=True)


def lines_by_size(ax: plt.Axes, wide: pd.DataFrame, metric: str, legend: bool = True) -> None:
    """One line per dataset size (mean and ±1 sd band over seeds) of ``metric`` against the generation."""
    hue, order, palette = size_hue(wide)
    sns.lineplot(data=wide.assign(size=hue), x="generation", y=metric, hue="size", hue_order=order, palette=palette,
                 marker="o", markeredgewidth=0, errorbar="sd", ax=ax, legend=legend)
    ax.set_xlabel(GEN_LABEL)
    ax.set_ylabel(metric_label(metric))
    integer_generations(ax)
    if legend:
        ax.legend(title="dataset size")


def method_line(ax: plt.Axes, df: pd.DataFrame, metric: str, label: str, color: Any, dashed: bool) -> None:
    sns.lineplot(data=df, x="generation", y=metric, ax=ax, color=color, linestyle="--" if dashed else "-",
                 marker="o", markeredgewidth=0, errorbar="sd", label=label)


def shared_legend(fig: plt.Figure, axes: Iterable[plt.Axes], *, loc: str = "outside lower center",
                  ncol: int | None = None, title: str | None = None, key: Any = None) -> None:
    """One legend for the whole figure (outside the panels) with every distinct entry of ``axes`` (sorted by
    ``key(label)`` when given), and the panels' own legends removed."""
    axes = list(axes)
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if key is not None:
        pairs = sorted(zip(handles, labels), key=lambda hl: key(hl[1]))
        handles, labels = [h for h, _ in pairs], [lab for _, lab in pairs]
    if handles:
        fig.legend(handles, labels, loc=loc, ncol=ncol or min(len(labels), 4), title=title, frameon=False)


def image_axis(ax: plt.Axes, *, frame: bool = False) -> None:
    """An axis that shows an image: no ticks, no grid, and no frame unless ``frame``."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if not frame:
        for spine in ax.spines.values():
            spine.set_visible(False)


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


def panel_grid(ax_count: int, ncols: int, height: float = 2.4,
               width: float = TWO_COLUMNS) -> tuple[plt.Figure, np.ndarray]:
    """``ax_count`` panels in rows of ``ncols`` (each row ``height`` inches) on a ``width``-inch figure."""
    nrows = max(1, math.ceil(ax_count / ncols))
    fig, axes = new_figure(width, height * nrows + 0.6, nrows, ncols)
    for ax in axes.flat[ax_count:]:
        ax.set_visible(False)
    return fig, axes


# ---------------------------------------------------------------------------------------------- layout check
def figure_texts(fig: plt.Figure) -> list[tuple[str, Any]]:
    """Every text a drawn ``fig`` shows, as ``(kind, artist)``: the suptitle and figure texts, figure legends,
    and per visible axes its titles, texts/annotations, legend, tables and (where the axis is drawn) axis labels,
    offset texts and the tick labels inside the view."""
    out: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def add(kind: str, text: Any) -> None:
        if text is not None and id(text) not in seen and text.get_visible() and text.get_text().strip():
            seen.add(id(text))
            out.append((kind, text))

    add("suptitle", fig._suptitle)
    add("supxlabel", fig._supxlabel)
    add("supylabel", fig._supylabel)
    for t in fig.texts:
        add("figure text", t)
    for leg in fig.legends:
        if leg.get_visible():
            add("legend title", leg.get_title())
            for t in leg.get_texts():
                add("legend", t)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add("title", t)
        for t in ax.texts:
            add("text", t)
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            add("legend title", leg.get_title())
            for t in leg.get_texts():
                add("legend", t)
        for table in ax.tables:
            for cell in table.get_celld().values():
                if cell.get_visible():
                    add("table", cell.get_text())
        if not ax.axison:
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not axis.get_visible():
                continue
            add(f"{name} label", axis.label)
            add(f"{name} offset", axis.get_offset_text())
            for tick in axis._update_ticks():  # the ticks the axis draws (inside the view)
                if tick.get_visible():
                    add(f"{name} tick", tick.label1)
                    add(f"{name} tick", tick.label2)
    return out


def text_layout_problems(fig: plt.Figure, tolerance: float = 0.5) -> list[str]:
    """What is wrong with the text of ``fig`` once drawn: every text artist (:func:`figure_texts`) that extends
    past the canvas, and every pair of text artists whose boxes overlap by more than ``tolerance`` pixels (tick
    labels included: of one axis against each other and against every other text). Empty when the layout is clean."""
    if not hasattr(fig.canvas, "get_renderer"):  # a closed pyplot figure: draw it on an Agg canvas
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    boxes = []
    problems = []
    for kind, text in figure_texts(fig):
        box = text.get_window_extent(renderer)
        label = f"{kind} {text.get_text()!r}"
        if (box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance
                or box.y1 > height + tolerance):
            problems.append(f"{label} extends outside the figure ({box.x0:.0f}, {box.y0:.0f}, {box.x1:.0f}, "
                            f"{box.y1:.0f} px; canvas {width:.0f} × {height:.0f})")
        boxes.append((label, box))
    for i, (la, a) in enumerate(boxes):
        for lb, b in boxes[i + 1:]:
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > tolerance and dy > tolerance:
                problems.append(f"{la} overlaps {lb}")
    return problems
