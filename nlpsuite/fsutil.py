"""Atomic writes and file locks: an interrupted or concurrent run never leaves a trusted half-file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
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


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def free_bytes(path: Path) -> int | None:
    """Free space on the filesystem that holds ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return None


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10_000_000 else f"{n / 1e6:.1f} MB"


def disk_full(path: Path, what: str, needed: int | None = None, wrote: int | None = None) -> NlpsuiteError:
    """The one-line error for a disk too full for ``what``: where, how much is free and how much it needs
    (``needed``, or more than the ``wrote`` bytes written before the disk filled up)."""
    free = free_bytes(path)
    room = f"{megabytes(free)} free" if free is not None else "no room"
    need = f"; it needs about {megabytes(needed)}" if needed else ""
    need = f"; it needs more than the {megabytes(wrote)} it wrote" if wrote is not None else need
    return NlpsuiteError(
        f"disk full: {what} in {path} ({room}{need}); free some space or set NLPSUITE_HOME to a larger disk"
    )


def check_free(path: Path, needed: int, what: str) -> None:
    """Refuse before writing ``needed`` bytes under ``path`` when the disk cannot hold them."""
    free = free_bytes(path)
    if free is not None and free < needed:
        raise disk_full(path, what, needed)


def os_error_line(exc: OSError) -> str | None:
    """One line for a filesystem error the user can act on (disk full, read-only, not permitted), else None."""
    where = exc.filename or "a file"
    if exc.errno in DISK_FULL:
        free = free_bytes(Path(exc.filename)) if exc.filename else None
        room = f" ({megabytes(free)} free)" if free is not None else ""
        return f"disk full: cannot write {where}{room}; free some space or write somewhere else"
    if exc.errno == errno.EROFS:
        return f"cannot write to {where} (read-only file system)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot access {where} ({exc.strerror or 'permission denied'})"
    return None


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


class CannotWrite(NlpsuiteError, OSError):
    """A folder nlpsuite must write to is read-only or not ours: one line for the CLI, and still an OSError
    for the callers that treat an unwritable cache as a cost (measure again) rather than a failure."""


@contextlib.contextmanager
def atomic_dir_lock(path: Path):
    """Hold an inter-process lock named after ``path`` (the lock file sits beside it); only writers take it."""
    from filelock import FileLock

    lock = FileLock(str(path) + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as exc:
        raise CannotWrite(
            f"cannot write to {path.parent} ({exc.strerror or exc}); set NLPSUITE_HOME to a writable folder"
        ) from None
    try:
        yield
    finally:
        lock.release()


class Busy(NlpsuiteError):
    """Another process holds the lock of what this one would write."""


@contextlib.contextmanager
def exclusive(path: Path, what: str, wait: bool = False, folder: bool = False):
    """Be the one writer of ``path`` (a file, created empty if missing; or a ``folder``, made if missing) while the
    block runs: an advisory lock on the path itself, which the kernel drops when this process ends, even by
    kill -9 (nothing stale is left, and no lock file). Held elsewhere, it raises Busy naming the holder's process,
    or with ``wait`` waits for it. Yields whether this call created the path."""
    import fcntl

    while True:
        created = not path.exists()
        try:
            if folder:
                path.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise CannotWrite(f"cannot write to {path} ({exc.strerror or exc})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_holder(path)
                if not wait:
                    raise Busy(f"{what} is being written by another nlpsuite run{holder}: wait for it to end, "
                               "or add --wait to start when it does") from None  # fmt: skip
                print(f"waiting: {what} is being written by another nlpsuite run{holder}", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # the holder may have removed the path (a failed run cleans up): lock the one that is there now
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if not same:
                continue
            yield created
            return
        finally:
            os.close(fd)  # releases the lock


def lock_holder(path: Path) -> str:
    """`` (process 1234)`` for the process holding a lock on ``path``, as Linux lists it in /proc/locks; "" if
    unknown."""
    try:
        st = os.stat(path)
        wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted and fields[4].isdigit():
                    return f" (process {fields[4]})"
    except OSError:
        pass
    return ""


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
