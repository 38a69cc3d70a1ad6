"""Numeric arrays from files others may have written (.npy, .npz): checked before they are trusted.

The header is read first, so a file that claims 1e11 rows is refused before anything is allocated;
then the dtype (plain floats only, never pickled objects), the shape, the file's real size and the
values (finite, bounded) are checked. Every failure is a ``ValueError`` saying what is wrong; the
caller names the file and the fix.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAX_ITEMS = 1 << 30  # 4 GiB of float32: far above any index or head this tool writes


def _header(fh: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"has .npy format version {version}, which nlpsuite does not write")
    shape, fortran, dtype = readers[version](fh)
    if fortran:
        raise ValueError("Fortran-ordered arrays are not written by nlpsuite")
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise ValueError(f"holds {dtype} values, not floats")
    return tuple(int(n) for n in shape), dtype


def _check_shape(shape: tuple[int, ...], ndim: int, max_items: int) -> int:
    if len(shape) != ndim:
        raise ValueError(f"has {len(shape)} dimensions, not {ndim}")
    items = 1
    for n in shape:
        items *= n
    if items > max_items:
        raise ValueError(f"claims {items} values (shape {shape}), more than {max_items}")
    return items


def _finite(array: np.ndarray, limit: float) -> np.ndarray:
    if not np.isfinite(array).all():
        raise ValueError("holds NaN or infinite values")
    if array.size and float(np.abs(array).max()) > limit:
        raise ValueError(f"holds values beyond ±{limit:g}")
    return array


def read_npy(path: Path, ndim: int, limit: float, max_items: int = MAX_ITEMS) -> np.ndarray:
    """A float array of ``ndim`` dimensions from an .npy file whose values are finite and within ±limit."""
    with open(path, "rb") as fh:
        shape, dtype = _header(fh)
        items = _check_shape(shape, ndim, max_items)
        offset = fh.tell()
    if path.stat().st_size != offset + items * dtype.itemsize:
        raise ValueError(f"is {path.stat().st_size} bytes, not the {offset + items * dtype.itemsize} its header says")
    array = np.load(path, mmap_mode="r", allow_pickle=False) if items else np.zeros(shape, dtype)
    return _finite(np.array(array, dtype=np.float32 if dtype.itemsize <= 4 else np.float64), limit)


def read_npz(path: Path, names: dict[str, int], limit: float, max_items: int = MAX_ITEMS) -> dict[str, np.ndarray]:
    """The arrays ``{name: ndim}`` of an .npz file, each checked as ``read_npy`` checks one."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name, ndim in names.items():
            member = f"{name}.npy"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ValueError(f"has no array {name!r}") from None
            with archive.open(info) as fh:
                shape, dtype = _header(fh)
                items = _check_shape(shape, ndim, max_items)
                expected = items * dtype.itemsize
                data = fh.read(expected + 1)
            if len(data) != expected:
                raise ValueError(f"array {name!r} holds {len(data)} bytes, not the {expected} its header says")
            try:
                array = np.frombuffer(data, dtype).reshape(shape).astype(np.float64)
                arrays[name] = _finite(array, limit)
            except ValueError as exc:
                raise ValueError(f"array {name!r} {exc}") from None
    return arrays


WRITE_BYTES = 1 << 24  # written a slice at a time: a failed write raises the OS's own error, never numpy's


def write_npy(path: Path, array: np.ndarray) -> None:
    """``array`` as a .npy file. numpy's own writer reports a full disk as "N requested and M written", with no
    error number; here the disk's own error (ENOSPC...) comes through, naming the file."""
    from numpy.lib import format as npy

    array = np.ascontiguousarray(array)
    try:
        with open(path, "wb") as fh:
            npy.write_array_header_1_0(fh, npy.header_data_from_array_1_0(array))
            data = memoryview(array.reshape(-1).view(np.uint8))
            for start in range(0, len(data), WRITE_BYTES):
                fh.write(data[start : start + WRITE_BYTES])
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
