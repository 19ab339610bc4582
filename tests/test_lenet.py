"""The LeNet feature space: bundled weights, their checksum, accuracy on held-out MNIST, features, and FD_LeNet."""

import shutil

import numpy as np
import pytest

from collapse_utils.core import data as D
from collapse_utils.measure import features as F
from collapse_utils.measure import lenet as L
from collapse_utils.measure import metrics as M

N = 2000  # per side: the sample size at which FD_LeNet must separate digit sets


@pytest.fixture(scope="module")
def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 4,000 of the bundled MNIST test images (uint8 N×28×28×1) and labels."""
    images, labels = D.mnist_test_images()
    return images[: 2 * N], labels[: 2 * N]


def low_res(images: np.ndarray) -> np.ndarray:
    """The demo's 8×8 digits: 28→8 by area averaging."""
    return D.resize_images(images, 8, "area")


def accuracy(images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(L.lenet_logits(images).argmax(1) == labels))


# ----------------------------------------------------------------------------------------- bundled data
def test_mnist_test_set_is_bundled_in_the_original_order():
    images, labels = D.mnist_test_images()
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958,
                                                                           1028, 974, 1009]
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the first t10k labels


def test_weights_load_and_match_the_architecture():
    model = L.load_lenet("cpu")
    assert L.load_lenet("cpu") is model  # cached
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["conv1.weight"] == (6, 1, 5, 5) and shapes["fc2.weight"] == (84, 120)
    assert shapes["fc3.weight"] == (10, 84)


def test_corrupted_or_missing_weights_are_refused(tmp_path, monkeypatch):
    for name in ("SHA256SUMS", L.LENET_FILE):
        shutil.copy(D.bundled_data_dir() / name, tmp_path / name)
    raw = bytearray((tmp_path / L.LENET_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / L.LENET_FILE).write_bytes(bytes(raw))
    monkeypatch.setenv("COLLAPSE_DATA_DIR", str(tmp_path))
    L._load.cache_clear()
    try:
        with pytest.raises(D.ChecksumError, match=r"checksum mismatch.*python data/build_lenet.py"):
            L.load_lenet("cpu")
        with pytest.raises(F.FeatureSpaceUnavailableError, match="build_lenet.py"):
            F.check_feature_space("lenet", device="cpu")
        (tmp_path / L.LENET_FILE).unlink()
        with pytest.raises(D.DatasetUnavailableError, match=r"not found.*python data/build_lenet.py"):
            L.load_lenet("cpu")
    finally:
        L._load.cache_clear()  # later tests load the real weights again


# ----------------------------------------------------------------------------------------- accuracy
def test_accuracy_on_held_out_digits(test_digits):
    images, labels = test_digits[0][:N], test_digits[1][:N]
    assert accuracy(images, labels) >= 0.98
    degraded = D.resize_images(low_res(images), 28, "bilinear")
    assert accuracy(degraded, labels) >= 0.90
    assert accuracy(low_res(images), labels) >= 0.90  # the same, with the network's own resize


# ----------------------------------------------------------------------------------------- features
def test_features_shape_dtype_and_determinism(test_digits):
    images = low_res(test_digits[0][:64])
    f = F.extract_features(images, "lenet")
    assert f.shape == (64, F.FEATURE_DIMS["lenet"]) == (64, 84) and f.dtype == np.float32
    np.testing.assert_array_equal(f, F.extract_features(images, "lenet"))
    np.testing.assert_array_equal(f, F.extract_features(images[..., 0], "lenet"))  # N×H×W is grey too
    np.testing.assert_allclose(L.lenet_features(images, batch_size=7), f, rtol=1e-4, atol=1e-4)  # float rounding
    assert (f < 0).any()  # taken before the ReLU


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="grayscale digit"):
        F.extract_features(np.zeros((2, 28, 28, 3), np.uint8), "lenet")
    with pytest.raises(ValueError, match="uint8"):
        F.extract_features(np.zeros((2, 28, 28, 1), np.float32), "lenet")
    with pytest.raises(ValueError, match="empty"):
        F.extract_features(np.zeros((0, 28, 28, 1), np.uint8), "lenet")
    F.check_feature_space("lenet", device="cpu")


# ----------------------------------------------------------------------------------------- FD_LeNet
def test_fd_lenet_noise_floor_is_small_against_a_real_degradation(test_digits):
    a, b = low_res(test_digits[0][:N]), low_res(test_digits[0][N:])
    noisy = np.random.default_rng(0).normal(0, 32, b.shape)
    noisy = np.clip(b.astype(np.float64) + noisy, 0, 255).round().astype(np.uint8)
    fa, fb, fn = (F.extract_features(x, "lenet") for x in (a, b, noisy))
    floor, signal = M.frechet_distance(fa, fb), M.frechet_distance(fa, fn)
    assert floor < 0.25 * signal, (floor, signal)
    assert abs(M.frechet_distance(fa, fa)) < 1e-6 * signal
    assert M.fd_lenet(a[:500], b[:500]) == pytest.approx(M.frechet_distance(fa[:500], fb[:500]), rel=1e-9)


def test_generation_metrics_leaves_fd_lenet_to_the_held_out_path(test_digits):
    real, gen = low_res(test_digits[0][:200]), low_res(test_digits[0][200:400])
    out = M.generation_metrics(gen, real, names=("gs_lenet",))
    assert out["gs_lenet"] > 0
    with pytest.raises(ValueError, match="held-out images"):
        M.generation_metrics(gen, gen, real_images=real, names=("fd_lenet",))


def test_preflight_refuses_lenet_for_colour_datasets(tmp_path):
    from collapse_utils.core.config import make_config
    from collapse_utils.loop.preflight import preflight

    cfg = make_config("smoke", dataset="cifar10_catdog", metrics=["gs_lenet"])
    with pytest.raises(ValueError, match="'lenet'.*grey images"):
        preflight(cfg, np.zeros((cfg.n * 4, 8, 8, 3), np.uint8), tmp_path)
