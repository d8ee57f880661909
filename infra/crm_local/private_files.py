"""Files only this user may read: the state folder holds KMS key material, the blind-index
secret and the token-signing secret, so nothing in it is ever readable by others, not even for
the moment between creating a file and restricting it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` (and its parents) and close it to others when it is ours: a folder given
    with --state-dir that belongs to someone else (say /tmp) is left as it is."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_uid == os.getuid():
        path.chmod(DIR_MODE)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Replace `path` atomically with `data`, mode 0600 from the first byte: mkstemp creates
    the temporary file 0600 whatever the umask, and a reader sees the old file or the new."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
