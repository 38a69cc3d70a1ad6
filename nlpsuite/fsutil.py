"""Atomic writes and file locks: an interrupted or concurrent run never leaves a trusted half-file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import NlpsuiteError


def read_utf8(path: Path) -> str:
    """A text file's contents, with one-line errors for a missing file or bytes that aren't UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise NlpsuiteError(f"{path} is not UTF-8 text") from None


def ensure_writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise NlpsuiteError(
            f"cannot write to {path} ({exc.strerror or exc}); set NLPSUITE_HOME to a writable folder"
        ) from None
    return path


@contextlib.contextmanager
def atomic_dir_lock(path: Path):
    """Hold an inter-process lock named after ``path`` (the lock file sits beside it)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
