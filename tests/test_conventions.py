"""The authors' measurement conventions offered as options: statistics of the samples G_t next to those of the
training set D_t, FID through torchvision's ImageNet Inception, the DINOv2 token-map score, the FID sample cap."""

import math
import os

import numpy as np
import pytest
import torch

from collapse_utils.measure import features as F
from collapse_utils.paper import figures
from collapse_utils.measure import metrics as M
from collapse_utils.core import vocab
from collapse_utils.core.config import make_config
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.core.presets import scale
from collapse_utils.loop.rundir import load_run
from collapse_utils.loop.run_metrics import ensure_figure_metrics, ensure_metrics

SAMPLE_METRICS = ["samples_entropy_pixel", "samples_cov_trace", "samples_mnnd"]


def _images(seed: int, n: int, size: int = 4, channels: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


@pytest.fixture(scope="module")
def replace_run(tmp_path_factory):
    """A smoke run (real tiny UNet) under replace with n samples per generation: G_g is D_{g+1}."""
    cfg = make_config("smoke", n=16, generations=3, train_steps=2, num_inference_steps=2, progress=False)
    assert cfg.paradigm == "replace" and cfg.samples_per_generation == cfg.n
    return run_self_consuming(cfg, tmp_path_factory.mktemp("conventions") / "run")


# ----------------------------------------------------------------------------------------- vocabulary
def test_names_and_spaces():
    assert {"samples_entropy_pixel", "samples_entropy_dinov2", "samples_entropy_inception", "samples_cov_trace",
            "samples_mnnd", "fid_torchvision", "gs_dinov2_tokens"} <= set(vocab.METRIC_NAMES)
    assert vocab.FD_METRICS["fid_torchvision"] == "inception_torchvision"
    assert not set(vocab.METRIC_ONLY_SPACES) & set(vocab.FEATURE_SPACES)  # a run's selection cannot use them
    assert vocab.metric_feature_spaces(["samples_entropy_dinov2"]) == {"dinov2"}
    assert vocab.metric_feature_spaces(["samples_cov_trace", "samples_mnnd"]) == set()
    assert vocab.metric_feature_spaces(["fid_torchvision", "gs_dinov2_tokens"]) == {"inception_torchvision",
                                                                                   "dinov2_tokens"}
    assert make_config("demo").run_key() == "94b0468b5483"  # the new names do not enter run keys


# ----------------------------------------------------------------------------------------- samples_* metrics
def _brute_entropy(x: np.ndarray) -> float:
    n, d = x.shape
    eps = [min(np.sqrt(((x[i] - x[j]) ** 2).sum()) for j in range(n) if j != i) for i in range(n)]
    log_cd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    from scipy.special import digamma
    return float(digamma(n) - digamma(1) + log_cd + d * np.mean(np.log(np.array(eps) + 1e-10)))


def test_samples_metrics_are_the_statistics_of_the_samples_brute_force():
    train, gen = _images(0, 7), _images(1, 9)
    out = M.generation_metrics(train, gen, names=SAMPLE_METRICS + ["entropy_pixel", "cov_trace", "mnnd"])
    g = gen.reshape(len(gen), -1).astype(np.float64)
    nn = [min(np.sqrt(((g[i] - g[j]) ** 2).sum()) for j in range(len(g)) if j != i) for i in range(len(g))]
    assert out["samples_mnnd"] == pytest.approx(np.mean(nn), rel=1e-6)
    assert out["samples_cov_trace"] == pytest.approx(g.var(0, ddof=1).sum(), rel=1e-9)
    assert out["samples_entropy_pixel"] == pytest.approx(_brute_entropy(g), rel=1e-6)
    t = train.reshape(len(train), -1).astype(np.float64)
    assert out["entropy_pixel"] == pytest.approx(_brute_entropy(t), rel=1e-6)  # D_t, not G_t
    assert out["cov_trace"] == pytest.approx(t.var(0, ddof=1).sum(), rel=1e-9)


def test_under_replace_samples_of_g_are_the_training_set_of_g_plus_1(replace_run):
    # computed after the fact from the stored run, through run_metrics
    ensure_metrics(replace_run, SAMPLE_METRICS + ["cov_trace", "mnnd"])
    gens = load_run(replace_run.run_dir).generations  # read back from metrics.json
    for g, nxt in zip(gens, gens[1:]):
        np.testing.assert_array_equal(g.samples, nxt.train_images)
        assert g.metrics["samples_entropy_pixel"] == nxt.metrics["entropy_pixel"]
        assert g.metrics["samples_cov_trace"] == nxt.metrics["cov_trace"]
        assert g.metrics["samples_mnnd"] == nxt.metrics["mnnd"]
    assert gens[0].metrics["samples_entropy_pixel"] != gens[0].metrics["entropy_pixel"]


# ----------------------------------------------------------------------------------------- torchvision FID
def _torchvision_weights_present() -> bool:
    return os.path.isfile(F.torchvision_inception_weights()[0])


def test_torchvision_inception_offline_error_names_the_file_and_where_it_goes():
    if _torchvision_weights_present():
        pytest.skip("torchvision's inception_v3 weights are in the torch hub cache here")
    F._load_torchvision_inception.cache_clear()
    path, url = F.torchvision_inception_weights()
    with pytest.raises(F.FeatureSpaceUnavailableError) as err:
        F.check_feature_space("inception_torchvision", device="cpu")
    msg = str(err.value)
    assert os.path.basename(path) in msg and os.path.dirname(path) in msg and url in msg
    assert "TORCH_HOME" in msg and "fid_mode='clean'" in msg
    F._load_torchvision_inception.cache_clear()


def test_fid_mode_torchvision_fails_before_training_anything(tmp_path):
    if _torchvision_weights_present():
        pytest.skip("torchvision's inception_v3 weights are in the torch hub cache here")
    F._load_torchvision_inception.cache_clear()
    with pytest.raises(F.FeatureSpaceUnavailableError, match="inception_v3"):
        figures.figure_runs("F8", "smoke", run_root=str(tmp_path / "runs"), fid_mode="torchvision", workers=1)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    F._load_torchvision_inception.cache_clear()
    with pytest.raises(ValueError, match="fid_mode must be one of clean, torchvision"):
        figures.figure_runs("F8", "smoke", run_root=str(tmp_path / "runs"), fid_mode="tensorflow")


class _StandIn(torch.nn.Module):
    """A tiny real network in the place of the ImageNet inception_v3 (whose weights are not here)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 5, stride=4)
        self.inputs: list[tuple] = []

    def forward(self, x):
        self.inputs.append((tuple(x.shape), float(x.min()), float(x.max())))
        return torch.nn.functional.adaptive_avg_pool2d(torch.tanh(self.conv(x)), 1).flatten(1)


@pytest.fixture
def stand_in(monkeypatch):
    net = _StandIn().eval()
    monkeypatch.setattr(F, "_load_torchvision_inception", lambda device_str: net)
    return net


def test_fid_torchvision_through_the_fd_path(replace_run, stand_in):
    ensure_figure_metrics([replace_run], ["fid_torchvision"])
    real = replace_run.real_images()[: replace_run.config.n]
    for g in load_run(replace_run.run_dir).generations:
        assert g.metrics["fid_torchvision_samples"] == len(g.samples)
        expected = M.frechet_distance(F.extract_features(g.samples, "inception_torchvision"),
                                      F.extract_features(real, "inception_torchvision"), method="eigh")
        assert g.metrics["fid_torchvision"] == pytest.approx(expected, rel=1e-9)
    shape, lo, hi = stand_in.inputs[0]
    assert shape[1:] == (3, 299, 299) and -1.0 <= lo < hi <= 1.0  # resized to 299, normalised to [-1, 1]
    loop = M.generation_metrics(replace_run.generations[0].train_images, replace_run.generations[0].samples,
                                real_images=real, names=["fid_torchvision"])
    assert loop["fid_torchvision"] == pytest.approx(replace_run.generations[0].metrics["fid_torchvision"], rel=1e-5)


def test_fid_mode_selects_the_metric_the_figure_computes_and_plots(tmp_path, stand_in):
    from collapse_utils.paper import plotting

    fr = figures.figure_runs("F12", "smoke", run_root=str(tmp_path / "runs"), fig_dir=str(tmp_path / "fig"),
                             paradigms=["replace"], methods=["none"], generations=1, workers=1,
                             fid_mode="torchvision")
    assert fr.plot_options["fid_metric"] == "fid_torchvision"
    for r in fr.runs:
        g = r.generations[-1]
        assert "fid_torchvision" in g.metrics and "fid" not in g.metrics
        assert g.metrics["fid_torchvision_samples"] == min(len(g.samples), r.config.n)  # smoke: capped at n
    out = plotting.plot_f12(fr.runs, fr.fig_dir, **fr.plot_options)
    assert "fid_torchvision" in set(out.data["metric"])
    assert figures.figure_metrics("F8", "pixel", fid_metric="fid_torchvision") == ["fid_torchvision"]
    assert figures.figure_metrics("F8", "pixel") == ["fid"]


def test_fid_sample_cap_follows_the_authors_at_paper_scale():
    assert scale("paper").fid_samples == 32768  # FID.py keeps the first 32,768 generated images
    assert scale("demo").fid_samples is None and scale("smoke").fid_samples is None  # the run's n
    assert figures.PARAMETERS["fid_samples"].default is None and "32,768" in figures.PARAMETERS["fid_samples"].help
    assert figures.PARAMETERS["fid_mode"].default is None and figures.PARAMETERS["fid_mode"].role == "runs"
    assert scale("paper").fid_mode == "clean" and scale("demo").fid_mode == "lenet"  # None: the preset's
    for fig in ("F8", "F11", "F12", "F13"):
        assert "fid_mode" in figures.SPECS[fig].options


# ----------------------------------------------------------------------------------------- token-map score
def _brute_token_score(gen: np.ndarray, train: np.ndarray, m: int) -> float:
    total = 0.0
    for a in gen[:m]:
        total += min(np.mean((a.astype("float") - b.astype("float")) ** 2) for b in train)
    return total / min(m, len(gen))


def test_generalization_score_tokens_brute_force():
    rng = np.random.default_rng(0)
    gen = rng.normal(size=(7, 5, 3)).astype(np.float32)
    train = rng.normal(size=(11, 5, 3)).astype(np.float32)
    train[3] = gen[1]  # an exact copy: distance 0
    want = _brute_token_score(gen, train, 5)
    assert M.generalization_score_tokens(gen, train, max_generated=5) == pytest.approx(want, rel=1e-5)
    chunks = (train[s:s + 4] for s in range(0, len(train), 4))  # streamed in chunks: the same value
    assert M.generalization_score_tokens(gen, chunks, max_generated=5) == pytest.approx(want, rel=1e-5)
    chunks = (train[s:s + 4] for s in range(0, len(train), 4))
    assert M.generalization_score_tokens(gen, chunks, max_generated=None, max_training=6) == pytest.approx(
        _brute_token_score(gen, train[:6], 7), rel=1e-5)


@pytest.fixture
def tiny_dinov2(tmp_path, monkeypatch):
    """A randomly initialised small ``Dinov2Model`` with the authors' preprocessing (resize 256, crop 224),
    saved to a folder and loaded through the package's own DINOv2 loader."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    model = Dinov2Model(Dinov2Config(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2,
                                     image_size=224, patch_size=14))
    processor = BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                  resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    model.save_pretrained(tmp_path / "dinov2")
    processor.save_pretrained(tmp_path / "dinov2")
    monkeypatch.setenv(F.DINOV2_PATH_ENV, str(tmp_path / "dinov2"))
    F._load_dinov2.cache_clear()
    yield model.eval(), processor
    F._load_dinov2.cache_clear()


def test_gs_dinov2_tokens_with_a_tiny_dinov2(tiny_dinov2):
    model, processor = tiny_dinov2
    train, gen = _images(2, 70, size=8, channels=3), _images(3, 5, size=8, channels=3)  # 70: two token chunks
    train[10] = gen[0]
    tokens = F.extract_features(gen, "dinov2_tokens", device="cpu")
    assert tokens.shape == (5, 257 * 8)  # CLS + 16 x 16 patches of the 224 crop, flattened
    with torch.no_grad():
        direct = model(**processor(images=list(gen), return_tensors="pt")).last_hidden_state.numpy()
        train_maps = model(**processor(images=list(train), return_tensors="pt")).last_hidden_state.numpy()
    np.testing.assert_allclose(tokens, direct.reshape(5, -1), rtol=1e-5, atol=1e-5)
    cls = F.extract_features(gen, "dinov2", device="cpu")
    np.testing.assert_allclose(cls, direct[:, 0], rtol=1e-5, atol=1e-5)  # gs_dinov2 reads the CLS token only
    out = M.generation_metrics(train, gen, names=["gs_dinov2_tokens"], device="cpu")
    want = _brute_token_score(direct, train_maps, 1000)
    assert out["gs_dinov2_tokens"] == pytest.approx(want, rel=1e-4)
    assert vocab.metric_feature_spaces(["gs_dinov2_tokens"]) == {"dinov2_tokens"}
    F.check_feature_space("dinov2_tokens", device="cpu")
