"""Crash-safe files: every artifact is written to a temporary name and renamed into place, and checked on reading.

A reader therefore sees either the previous complete file or the new complete file, never half of one.
A generation counts as finished only when its ``DONE`` marker exists (written last).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from .testhooks import kill_point


class CorruptArtifactError(RuntimeError):
    """An artifact on disk is unreadable or truncated; the step that wrote it must be redone."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, fsync, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on the device while writing {path}; free some disk (the run "
                                        "resumes from what is written)", str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    kill_point(path.as_posix())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n").encode())


def json_default(o: Any) -> Any:
    """The package's one JSON encoder hook (``json.dumps(..., default=json_default)``) for every file it writes.

    numpy booleans, integers and floats become Python ones (a NaN numpy float becomes ``null``; Python floats
    never reach this hook), arrays become lists, paths strings; anything else is refused.
    """
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if math.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    _atomic_write(path, lambda fh: np.save(fh, np.ascontiguousarray(array), allow_pickle=False))


def load_npy(path: str | os.PathLike, *, dtype: np.dtype | None = None, ndim: int | None = None) -> np.ndarray:
    """Load a .npy fully, turning truncation or garbage into :class:`CorruptArtifactError`."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptArtifactError(f"{path} is corrupt or truncated ({exc}); it will be rewritten") from exc
    if dtype is not None and arr.dtype != dtype:
        raise CorruptArtifactError(f"{path} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    if ndim is not None and arr.ndim != ndim:
        raise CorruptArtifactError(f"{path} has {arr.ndim} dimensions, expected {ndim}")
    return arr


def check_npy(path: str | os.PathLike, *, dtype: np.dtype | None = None, ndim: int | None = None) -> tuple[int, ...]:
    """Check a .npy without reading its data: the header parses and the file is exactly as long as it says.

    Returns the array's shape; raises :class:`CorruptArtifactError` (truncated, padded, garbage, wrong dtype or
    rank) or ``FileNotFoundError``.
    """
    path = Path(path)
    fmt = np.lib.format
    with open(path, "rb") as fh:
        try:
            version = fmt.read_magic(fh)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dt = read(fh)
        except (ValueError, OSError, EOFError, SyntaxError) as exc:
            raise CorruptArtifactError(f"{path} is corrupt or truncated ({exc}); it will be rewritten") from exc
        expected = fh.tell() + int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    size = path.stat().st_size
    if size != expected:
        raise CorruptArtifactError(f"{path} is truncated or padded ({size} bytes, expected {expected}); it will be rewritten")
    if dtype is not None and dt != dtype:
        raise CorruptArtifactError(f"{path} has dtype {dt}, expected {np.dtype(dtype)}")
    if ndim is not None and len(shape) != ndim:
        raise CorruptArtifactError(f"{path} has {len(shape)} dimensions, expected {ndim}")
    return tuple(shape)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise CorruptArtifactError(f"{path} is corrupt or unreadable ({exc})") from exc


def atomic_replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written directory into place, replacing any previous one."""
    final_dir = Path(final_dir)
    old = final_dir.with_name(f".{final_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old.exists():
        shutil.rmtree(old)
    _fsync_dir(final_dir.parent)
    kill_point(final_dir.as_posix())


def restore_replaced_dir(final_dir: Path) -> None:
    """Undo a kill inside :func:`atomic_replace_dir` between its two renames: put the previous copy back."""
    final_dir = Path(final_dir)
    old = final_dir.with_name(f".{final_dir.name}.old")
    if old.exists() and not final_dir.exists():
        try:
            os.replace(old, final_dir)
        except OSError:  # another process restored it first
            pass


def remove_stale_tmp(directory: Path) -> None:
    """Delete temporary files and folders (``.NAME….tmp``, ``.NAME.old``) left behind by a killed writer."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def check_safetensors(path: str | os.PathLike) -> None:
    """Cheap integrity check of a ``.safetensors`` file: the header parses and the file holds every tensor's bytes.

    Raises :class:`CorruptArtifactError` for a missing, truncated or garbled file (no tensor is read).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than its 8-byte header length")
            n = int.from_bytes(head, "little")
            if n <= 0 or 8 + n > size:
                raise ValueError(f"header of {n} bytes does not fit a {size}-byte file")
            header = json.loads(fh.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CorruptArtifactError(f"{path} is corrupt or truncated ({exc})") from exc
    if 8 + n + end != size:
        raise CorruptArtifactError(f"{path} is truncated or padded: {size} bytes, the header describes {8 + n + end}")


def fresh_tmp_dir(parent: Path, name: str) -> Path:
    tmp = Path(parent) / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


# ---------------------------------------------------------------------- content hashes
HASHES = "hashes.json"  # per folder: {relative path: sha256} of the artifacts written into it
_HASH_MEMO: dict[tuple, str] = {}  # (path, inode, size, mtime_ns) -> sha256: a file is hashed once per process


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file (memoized per process while the file is unchanged)."""
    path = Path(path)
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def read_hashes(folder: str | os.PathLike) -> dict[str, str] | None:
    """A folder's hash record, ``None`` when it has none; raises :class:`CorruptArtifactError` when damaged."""
    path = Path(folder) / HASHES
    if not path.exists():
        return None
    hashes = read_json(path)
    if not isinstance(hashes, dict):
        raise CorruptArtifactError(f"{path} is not a hash record")
    return hashes


def record_hashes(folder: str | os.PathLike, *names: str | os.PathLike) -> None:
    """Record the sha256 of the files ``names`` (relative to ``folder``), just written, in its ``hashes.json``."""
    folder = Path(folder)
    try:
        hashes = read_hashes(folder) or {}
    except CorruptArtifactError:
        hashes = {}  # a damaged record: what it vouched for is checked against nothing and redone
    for name in names:
        hashes[str(name)] = file_sha256(folder / name)
    atomic_write_json(folder / HASHES, hashes)


def verify_hashes(folder: str | os.PathLike, *names: str | os.PathLike, unrecorded_ok: bool = False) -> None:
    """Raise :class:`CorruptArtifactError` naming the file unless each existing file of ``names`` matches the sha256
    recorded when it was written. A file without a record counts as damaged, and so does a recorded file that is
    gone; ``unrecorded_ok``: a folder with no record at all passes (written before hashes were recorded)."""
    folder = Path(folder)
    hashes = read_hashes(folder)
    present = [n for n in names if (folder / n).exists()]
    if hashes is None:
        if present and not unrecorded_ok:
            raise CorruptArtifactError(f"{folder} has no recorded hashes (written by an interrupted step); redoing it")
        return
    for name in names:
        if str(name) in hashes and not (folder / name).exists():
            raise CorruptArtifactError(f"{folder / name} is missing (it was recorded when written); redoing the step "
                                       "that wrote it")
    for name in present:
        path = folder / name
        recorded = hashes.get(str(name))
        if recorded is None:
            raise CorruptArtifactError(f"{path} has no recorded hash (written by an interrupted step); redoing it")
        if file_sha256(path) != recorded:
            raise CorruptArtifactError(f"{path} does not match the sha256 recorded when it was written "
                                       "(the file was changed or damaged); redoing the step that wrote it")


def verify_record(folder: str | os.PathLike, skip: tuple[str, ...] = ()) -> None:
    """All or nothing: raise :class:`CorruptArtifactError` unless ``folder`` has a hash record, every file it lists
    is present and matches, and every file in the folder (below it too) is listed; ``skip``: names never recorded
    (markers written after the record)."""
    folder = Path(folder)
    hashes = read_hashes(folder)
    if hashes is None:
        raise CorruptArtifactError(f"{folder} has no {HASHES} (the list of its files written with it)")
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    unlisted = sorted(files - set(hashes) - {HASHES, *skip})
    if unlisted:
        raise CorruptArtifactError(f"{folder / unlisted[0]} was not written with the rest of {folder.name}")
    verify_hashes(folder, *sorted(hashes))


def record_digest(folder: str | os.PathLike) -> str | None:
    """The sha256 of ``folder``'s hash record itself (what a ``DONE`` marker vouches for), None without one."""
    path = Path(folder) / HASHES
    return file_sha256(path) if path.exists() else None


def free_disk_bytes(path: str | os.PathLike) -> int:
    path = Path(path)
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free
