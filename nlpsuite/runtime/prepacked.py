"""A CPU-specific copy of a backbone holding ONNX Runtime's pre-packed weights, written on first load.

Packing fp32 weights for the matrix kernels takes 0.3-0.6 s of every load and is worth ~28% of decode
speed, so it cannot be skipped; saving the packed form once makes later loads that much faster. The
packed layout depends on the ONNX Runtime version and the CPU's instruction set, so the copy lives in
a folder keyed by both and is never used elsewhere. It takes twice the weights on disk (it holds the plain
weights and the packed ones), so the model takes three times its weights in all. Its files' sha256
are recorded when it is written and checked before it is used, as for the model itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from .. import config
from ..artefacts import MODEL_FILE, WEIGHTS_FILE
from ..fsutil import free_bytes
from ..modelstore import integrity

FILES_FILE = "files.json"  # name -> {"size", "sha256"}
# The rule (benchmarks/bench_load.py, bench_coldstart.py; docs/startup-and-disk.md): the copy costs twice the weights
# on disk (1,076 MB beside the default model's 546) and saves packing them at each load: 0.2-0.4 CPU-s and as much
# of a one-off call on 2 cores (1.49 against 1.69 s for `generate --max-tokens 16`), and the weights stay in shared
# file pages rather than each process's own memory (125 against 624 MB anonymous). Up to 1 GB of weights (models of
# up to ~250M parameters in fp32) that is kept; above, the disk it takes (4 GB for a 0.5B model, 56 GB for a 7B one)
# is worth more than the fraction of a load it saves. NLPSUITE_PACKED_COPY=0 goes without it for any model.
MAX_WEIGHTS_BYTES = 1_000_000_000
SAVES = "0.2-0.4 s of each start of the default model on 2 cores"  # what `models info` says it saves
STALE_AFTER_S = 3600  # a partial copy this old was left by a killed process
ROOM_FACTOR = 2.2  # the copy is about twice the portable weights; keep a little room besides


def policy(folder: Path, precision: str) -> tuple[bool, str]:
    """Whether the converted model in ``folder`` keeps a packed copy for the CPU, and why (`models info` says it)."""
    if precision != "fp32":
        why = f"ONNX Runtime loads saved packed {precision} weights wrong"
        return False, f"{precision} weights are packed at each load ({why})"
    if not config.packed_copy():
        return False, "NLPSUITE_PACKED_COPY=0: the weights are packed at each load"
    try:
        weights = (folder / WEIGHTS_FILE).stat().st_size
    except OSError:
        weights = 0  # weights inside the graph file: a small model
    if weights > MAX_WEIGHTS_BYTES:
        return False, (
            f"{weights / 1e9:.1f} GB of weights, over {MAX_WEIGHTS_BYTES / 1e9:.0f} GB: a copy would take twice that "
            "on disk for a fraction of a load; the weights are packed at each load"
        )
    return True, (
        f"{weights / 1e9:.2f} GB of weights, up to {MAX_WEIGHTS_BYTES / 1e9:.0f} GB: the copy (twice the weights on "
        f"disk) saves packing them at each load, {SAVES}; NLPSUITE_PACKED_COPY=0 goes without it"
    )


def discard_all(folder: Path) -> None:
    for copy in folder.glob("cpu-*"):
        discard(folder, copy.name.removeprefix("cpu-"))


def machine_key(ort) -> str:
    flags = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        flags = next((line for line in fh if line.startswith("flags")), flags)
    return hashlib.sha1(f"{ort.__version__}|{platform.machine()}|{flags}".encode()).hexdigest()[:12]


def find(folder: Path, key: str, tidy: bool = True) -> Path | None:
    """The packed copy's graph if it is complete and its content unchanged; a damaged copy is removed (``tidy``)."""
    copy = folder / f"cpu-{key}"
    try:
        files = json.loads((copy / FILES_FILE).read_text(encoding="utf-8"))
        sizes_match = all((copy / name).stat().st_size == f["size"] for name, f in files.items())
        if sizes_match and not integrity.mismatched(copy, {name: f["sha256"] for name, f in files.items()}):
            return copy / MODEL_FILE
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    if tidy:
        discard(folder, key)
    return None


def verify(folder: Path) -> dict[str, bool]:
    """Hash every file of every packed copy in ``folder``: relative name -> whether it matches."""
    found = {}
    for copy in sorted(folder.glob("cpu-*")):
        try:
            files = json.loads((copy / FILES_FILE).read_text(encoding="utf-8"))
            hashes = {name: f["sha256"] for name, f in files.items()}
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            found[f"{copy.name}/{FILES_FILE}"] = False
            continue
        bad = integrity.mismatched(copy, hashes, trust_stamp=False)
        found.update({f"{copy.name}/{name}": name not in bad for name in hashes})
    return found


def discard(folder: Path, key: str) -> None:
    integrity.forget(folder / f"cpu-{key}")
    shutil.rmtree(folder / f"cpu-{key}", ignore_errors=True)


def request(options, ort, folder: Path) -> Path | None:
    """Ask ONNX Runtime to write the optimized, packed graph into a new partial folder while it builds
    the session; None when the folder cannot be written or the disk has no room for the copy."""
    now = time.time()
    for stale in folder.glob(".cpu-partial-*"):
        with contextlib.suppress(OSError):
            if now - stale.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(stale, ignore_errors=True)
    free = free_bytes(folder)
    with contextlib.suppress(OSError):  # the copy holds the weights twice (plain and packed)
        if free is not None and free < ROOM_FACTOR * (folder / WEIGHTS_FILE).stat().st_size:
            return None
    try:
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".cpu-partial-"))
    except OSError:
        return None
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp / MODEL_FILE)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", WEIGHTS_FILE)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    options.add_session_config_entry("session.save_external_prepacked_constant_initializers", "1")
    return tmp


def publish(tmp: Path, folder: Path, key: str) -> None:
    """Move a finished partial folder into place; a concurrent process may have won, which is fine."""
    try:
        sizes = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        if MODEL_FILE not in sizes:
            raise OSError("ONNX Runtime wrote no optimized graph")
        hashes = integrity.hash_files(tmp, sizes)
        files = {name: {"size": size, "sha256": hashes[name]} for name, size in sizes.items()}
        (tmp / FILES_FILE).write_text(json.dumps(files), encoding="utf-8")
        os.rename(tmp, folder / f"cpu-{key}")
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
