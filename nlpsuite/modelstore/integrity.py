"""Content checks for model files: each file's sha256 is recorded when written and verified before use.

Hashing a 538 MB model takes seconds, so what was verified is remembered in a small stamp: each file's
(size, mtime_ns, ctime_ns, inode) when its hash last matched. A later load whose files still carry the
same stamp only stats them; any write to a file changes its stamp, so it is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from .. import config
from ..fsutil import write_json_atomic

STAMP_FILE = ".verified.json"
_STAMPS: dict[Path, dict] = {}  # per process too, for a read-only cache where no stamp can be written


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def stamp_path(folder: Path) -> Path:
    """Inside a folder of nlpsuite's own cache; for a user's folder, under nlpsuite's home (never written into)."""
    folder = folder.resolve()
    with contextlib.suppress(ValueError):
        folder.relative_to(config.models_dir().resolve())
        return folder / STAMP_FILE
    return config.home() / "verified" / f"{hashlib.sha1(str(folder).encode()).hexdigest()[:16]}.json"


def _save(folder: Path, stamp: dict) -> None:
    _STAMPS[folder.resolve()] = stamp
    with contextlib.suppress(OSError):  # a read-only cache only costs hashing again in the next process
        write_json_atomic(stamp_path(folder), stamp)


def hash_files(folder: Path, names) -> dict[str, str]:
    """The sha256 of each named file; remembered as verified, since the caller has just written them."""
    hashes = {name: sha256_file(folder / name) for name in names}
    _save(folder, {name: {"sha256": h, "stat": _stat(folder / name)} for name, h in hashes.items()})
    return hashes


def _stamps(folder: Path) -> list[dict]:
    """What was verified before: the stamp file, then this process's memory of it."""
    found = []
    with contextlib.suppress(OSError, ValueError):
        found.append(json.loads(stamp_path(folder).read_text(encoding="utf-8")))
    found.append(_STAMPS.get(folder.resolve()))
    return [s for s in found if isinstance(s, dict)]


def mismatched(folder: Path, expected: dict[str, str], trust_stamp: bool = True) -> list[str]:
    """The files of ``folder`` whose content differs from ``expected`` (name -> sha256); [] when all match."""
    stamps = _stamps(folder) if trust_stamp else []
    bad, verified = [], {}
    for name, want in expected.items():
        path = folder / name
        try:
            now = _stat(path)
            if {"sha256": want, "stat": now} not in (s.get(name) for s in stamps) and sha256_file(path) != want:
                bad.append(name)
                continue
            verified[name] = {"sha256": want, "stat": now}
        except OSError:
            bad.append(name)
    if verified not in stamps:
        _save(folder, verified)
    return bad


def forget(folder: Path) -> None:
    """Drop what this process remembers of a folder (it is being removed or rebuilt)."""
    _STAMPS.pop(folder.resolve(), None)
    with contextlib.suppress(OSError):
        os.unlink(stamp_path(folder))
