"""A writable shadow of a finished run that lives on read-only media (a mounted archive, a shared read-only store).

Reading a finished run writes nothing, but post-hoc metrics (collapse_utils.loop.run_metrics) are written into the
run they measure: its generations' metrics.json, content records and held-out samples. When the run's folder
cannot be written, :func:`shadow_run` mirrors it in a scratch folder: the same folders, each file a symbolic link
to the original. The metrics code then works on the shadow unchanged: every write of this package replaces a file
whole (write a temporary file, then rename it over the old name), which replaces the link and never writes
through it, so the original is never touched. Reading the originals through the links verifies them as usual.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def writable(folder: str | os.PathLike) -> bool:
    """Whether a file can be created in ``folder`` (probed by creating and removing one; read-only media,
    missing permission: False)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    except OSError as exc:
        if exc.errno in _READ_ONLY:
            return False
        raise
    os.close(fd)
    os.unlink(probe)
    return True


def shadow_run(run_dir: str | os.PathLike, into: str | os.PathLike) -> Path:
    """Mirror the folder ``run_dir`` at ``into`` (which must not exist): real folders, a symbolic link to each
    original file; returns ``into``."""
    src, dst = Path(run_dir).resolve(), Path(into)
    dst.mkdir(parents=True)
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        for d in dirs:
            (dst / rel / d).mkdir()
        for f in files:
            if f.startswith(".write-probe-") or f.endswith(".lock"):
                continue
            (dst / rel / f).symlink_to(Path(folder) / f)
    return dst
