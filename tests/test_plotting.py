"""Plotting functions on small synthetic metric tables: files written, numbers plotted = numbers given, labels."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from collapse_utils.paper import analysis as A
from collapse_utils.paper import drawing as D
from collapse_utils.paper import plotting as P

NOTE = "demo scale, not the paper's: 8×8 MNIST"


def _table(paradigms=("replace",), methods=("none",), sizes=(64, 256), generations=4, seeds=(0,),
           decays=(None,)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p in paradigms:
        for m in methods:
            for d in decays if m == "threshold" else (None,):
                for n in sizes:
                    for s in seeds:
                        run = f"demo-mnist-{p}-{m}-n{n}-s{s}-{d}"
                        for g in range(1, generations + 1):
                            real = max(1, n // g)
                            counts = {"0": real, **({str(g - 1): n - real} if g > 1 and n > real else {})}
                            rows.append(dict(
                                run=run, preset="demo", scale=NOTE, dataset="mnist", n=n, paradigm=p, selection=m,
                                feature_space="pixel", decay=d, seed=s, generation=g,
                                gs_pixel=200 * 0.8 ** g * (1 + rng.normal(0, 0.01)), entropy_pixel=300 - 10 * g,
                                cov_trace=1e5 - 1e3 * g, mnnd=250 - 20 * g, fid=20 + 10 * g + rng.normal(),
                                source_counts=counts,
                            ))
    return pd.DataFrame(rows)


def _title(out: D.FigureOutput) -> str:
    """The suptitle with its line wrapping undone."""
    return " ".join(out.fig._suptitle.get_text().split())


@pytest.mark.parametrize("plot, metrics", [(P.plot_f2, ["gs_pixel"]), (P.plot_f3, ["entropy_pixel"]),
                                           (P.plot_f14, ["mnnd", "cov_trace"])])
def test_size_sweep_figures_from_a_table(tmp_path, plot, metrics):
    table = _table()
    out = plot(table, tmp_path)
    for kind in ("png", "pdf", "csv"):
        assert out.files[kind].exists()
    data = pd.read_csv(out.files["csv"])
    assert sorted(data["metric"].unique()) == sorted(metrics)
    merged = data.merge(table, on=["run", "generation"])
    for m in metrics:
        sub = merged[merged["metric"] == m]
        np.testing.assert_allclose(sub["value"], sub[m])
    assert NOTE in _title(out)


def test_f4_pearson_r_and_fit(tmp_path):
    table = _table(sizes=(64, 256, 1024), generations=5)
    out = P.plot_f4(table, tmp_path)
    summary = json.loads(out.files["json"].read_text())["entropy_vs_log_gs"]
    r = np.corrcoef(table["entropy_pixel"], np.log(table["gs_pixel"]))[0, 1]
    assert summary["pearson_r"] == pytest.approx(r)
    assert summary["points"] == len(table)
    texts = [t.get_text() for ax in out.fig.axes for t in ax.texts]
    assert any(f"{r:.3f}" in t for t in texts)


def test_f4_drops_nonpositive_gs():
    fit = A.log_fit(np.array([1.0, 2, 3, 4]), np.array([0.0, 1, 2, 4]))
    assert fit["points"] == 3 and fit["dropped_nonpositive_gs"] == 1


def test_selection_panels_by_dataset_and_paradigm(tmp_path):
    table = _table(paradigms=("replace", "accumulate_subsample"), methods=("none", "threshold", "greedy"), sizes=(256,))
    out = P.plot_f7(table, tmp_path)
    assert len([ax for ax in out.fig.axes if ax.get_visible()]) == 2
    assert set(pd.read_csv(out.files["csv"])["panel"]) == {"MNIST Replace", "MNIST Accumulate"}
    assert "(px L2)" in out.fig.axes[0].get_ylabel()
    labels = {t.get_text() for t in out.fig.legends[0].get_texts()}
    assert labels == {"Vanilla", "Threshold Decay Filter", "Greedy Selection"}


def test_f8_needs_fid(tmp_path):
    table = _table(methods=("none", "greedy")).drop(columns="fid")
    with pytest.raises(KeyError, match="fid"):
        P.plot_f8(table, tmp_path)


def test_f10_shares_and_even_mix(tmp_path):
    table = _table(paradigms=("accumulate_subsample",), methods=("none", "greedy"), sizes=(256,))
    out = P.plot_f10(table, tmp_path)
    data = pd.read_csv(out.files["csv"])
    assert set(data["selection"]) == {"greedy"}  # vanilla has no selection to show
    sums = data.groupby(["run", "generation"])["share"].sum()
    np.testing.assert_allclose(sums, 1.0)
    even = pd.read_csv(out.files["even_mix"])
    np.testing.assert_allclose(even["even_mix_real_share"], 1 / even["generation"])


def test_f12_and_f13_labels(tmp_path):
    t12 = pd.concat([_table(methods=("none", "threshold", "greedy"), sizes=(256,)),
                     _table(paradigms=("replace_2n",), sizes=(256,))])
    out = P.plot_f12(t12, tmp_path)
    assert set(pd.read_csv(out.files["csv"])["panel"]) == {"Vanilla", "Vanilla with 2N images",
                                                           "Threshold Decay Filter", "Greedy Selection"}
    t13 = _table(paradigms=("accumulate_subsample",), methods=("none", "greedy", "threshold"), sizes=(256,),
                 decays=(0.8, 0.95))
    out = P.plot_f13(t13, tmp_path)
    assert {"Threshold Decay Filter (α = 0.80)", "Threshold Decay Filter (α = 0.95)"} <= set(
        pd.read_csv(out.files["csv"])["panel"])


def test_f15_fallback_is_said(tmp_path):
    table = _table(paradigms=("replace", "accumulate_subsample"), methods=("none", "greedy"), sizes=(256,))
    out = P.plot_f15(table, tmp_path, metric="fid", fallback_note="FALLBACK: DINOv2 weights are unavailable")
    assert "FALLBACK" in _title(out)
    assert "fallback" in out.fig.axes[0].get_ylabel()
    assert set(pd.read_csv(out.files["csv"])["fd_space"]) == {"inception (fallback)"}


def test_paper_scale_title_has_no_note(tmp_path):
    table = _table().assign(preset="paper", scale="")
    title = _title(P.plot_f14(table, tmp_path))
    assert "scale, not the paper's" not in title and "1 seed" in title


def test_tile_images_layout():
    imgs = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1)
    out = D.tile_images(imgs, ncols=3, pad=1)
    assert out.shape == (2 * 3 + 1, 3 * 3 + 1, 3)
    assert out[1, 1, 0] == imgs[0, 0, 0, 0] and out[4, 1, 0] == imgs[3, 0, 0, 0]


def test_titles_say_the_seed_count(tmp_path):
    three = _table(seeds=(0, 1, 2))
    assert "mean ± sd over 3 seeds" in _title(P.plot_f2(three, tmp_path))
    assert "1 seed" in _title(P.plot_f3(_table(), tmp_path))


def test_axis_labels_are_short_and_name_their_unit():
    for metric, unit in (("gs_pixel", "px L2"), ("entropy_pixel", "nats"), ("fd_lenet", "FD_LeNet"),
                         ("fid", "Inception"), ("mnnd", "px L2"), ("cov_trace", "px²")):
        label = D.metric_label(metric)
        assert unit in label and len(label) <= 30 and "\n" not in label, label
        assert len(D.metric_note(metric)) > len(label)
