"""Arrays a task computes from the model alone (a prompt prefix's state, label priors, embedding statistics),
kept in the cache so that a one-off call does not pay for them again.

A file lives in a folder per converted model (name, precision, conversion time, source sha256: store.py's
derived_folder, removed with the model) and is named by what was computed, so a reconverted model or a changed
prompt measures afresh. Files are written atomically and checked
on load like any file others may have written (arrays.py): a damaged one is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..fsutil import atomic_dir_lock, write_bytes_atomic
from ..modelstore.store import derived_folder

Shapes = dict[str, tuple[int, ...]]
Arrays = dict[str, np.ndarray]
Check = Callable[[Arrays], bool]  # a test of the values beyond finite and bounded
MAX_VALUE = 1e6  # far above any hidden state, cache entry or log-probability a sane model produces


def path_for(manifest: dict, what: dict) -> Path:
    """The cache file of ``what`` (a JSON-able description of the computation) for the model of ``manifest``:
    in the model's own folder of derived files, which `models rm` removes with it."""
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]
    return derived_folder(manifest) / f"{digest}.npz"


def load(path: Path, shapes: Shapes, valid: Check | None = None) -> Arrays | None:
    """The arrays of ``path`` if it holds exactly ``shapes``, finite, bounded and ``valid``; None if absent or
    damaged."""
    from ..arrays import read_npz

    with contextlib.suppress(OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        arrays = read_npz(path, {name: len(shape) for name, shape in shapes.items()}, MAX_VALUE)
        arrays = {name: value.astype(np.float32) for name, value in arrays.items()}
        if all(arrays[name].shape == shape for name, shape in shapes.items()) and (valid is None or valid(arrays)):
            return arrays
    return None


def save(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` atomically; a read-only cache only costs computing them again next time."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with contextlib.suppress(OSError), atomic_dir_lock(path):
        write_bytes_atomic(path, buffer.getvalue())


def cached(manifest: dict, what: dict, shapes: Shapes, build: Callable[[], Arrays], valid: Check | None = None):
    """``build()``'s arrays (float32, exactly ``shapes``), from the cache when a valid copy is there."""
    path = path_for(manifest, what)
    found = load(path, shapes, valid)
    if found is not None:
        return found
    arrays = {name: np.asarray(value, np.float32) for name, value in build().items()}
    if {name: value.shape for name, value in arrays.items()} != shapes:
        raise ValueError(f"built {sorted(arrays)} do not have the shapes {shapes}")
    save(path, arrays)
    return arrays
