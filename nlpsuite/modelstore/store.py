"""The cache of converted backbones: one folder per (model, precision), published atomically.

A folder is complete when its manifest exists, has the current format version and every file it
lists has the recorded size; anything else (an interrupted conversion, a truncated file) is treated
as missing and rebuilt. Before first use its files' content is checked against the sha256 the
manifest records (``damaged``; integrity.py keeps later checks to a few stats).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..artefacts import MANIFEST_FILE, MANIFEST_VERSION, PRECISIONS
from ..fsutil import disk_full, ensure_writable_dir, exclusive, is_disk_full, write_json_atomic
from . import integrity


@dataclass(frozen=True)
class CachedModel:
    key: str
    precision: str
    path: Path
    manifest: dict

    def footprint(self) -> dict[str, int]:
        """What the entry holds on disk, in bytes: its own files (weights, graph, tokenizer, manifest), the copy made
        from them for this machine in its subfolders (runtime/prepacked.py), what tasks derived from it
        (``derived_folder``), and their total. `models list`, `models info` and `models rm` all say these numbers."""
        own = tree_bytes(self.path, top_only=True)
        copies = tree_bytes(self.path) - own
        derived = tree_bytes(derived_folder(self.manifest))
        total = own + copies + derived
        return {"model_bytes": own, "packed_copy_bytes": copies, "derived_bytes": derived, "total_bytes": total}


def tree_bytes(folder: Path, top_only: bool = False) -> int:
    """The size of the files in ``folder`` (and its subfolders, unless ``top_only``); 0 when it does not exist."""
    total = 0
    for path in folder.glob("*") if top_only else folder.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete converted folder, or None if the folder can't be trusted."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != MANIFEST_VERSION:
        return None
    files, hashes = manifest.get("files"), manifest.get("sha256")
    if not isinstance(files, dict) or not files or not isinstance(hashes, dict) or set(hashes) != set(files):
        return None
    for name, size in files.items():
        try:
            if (folder / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return manifest


def derived_folder(manifest: dict) -> Path:
    """Where tasks keep what they compute from this converted model alone (heads/derived.py): it is keyed by
    the conversion (name, precision, creation time, source sha256), so it goes with the model."""
    identity = {
        "model": manifest.get("name"),
        "precision": manifest.get("precision"),
        "created": manifest.get("created"),
        "source": (manifest.get("source") or {}).get("sha256"),
    }
    return config.home() / "derived" / hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def damaged(folder: Path, manifest: dict) -> list[str]:
    """The files of a complete folder whose content no longer matches the sha256 its manifest records."""
    return integrity.mismatched(folder, manifest["sha256"])


def graph_parses(folder: Path) -> bool:
    """Whether the graph file of a converted folder is intact protobuf (used after a failed load)."""
    import onnx

    from ..artefacts import MODEL_FILE

    try:
        onnx.load(str(folder / MODEL_FILE), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure means damaged
        return False
    return True


class ModelStore:
    """Converted models under ``root/<key>/<precision>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, key: str, precision: str) -> Path:
        return self.root / key / precision

    def get(self, key: str, precision: str) -> CachedModel | None:
        folder = self.folder(key, precision)
        manifest = read_manifest(folder)
        return CachedModel(key, precision, folder, manifest) if manifest else None

    def build(self, key: str, precision: str, write: Callable[[Path], dict]) -> CachedModel:
        """Run ``write(tmp_folder) -> manifest`` unless another process already built it, then publish. A build
        that fails leaves nothing behind: no partial folder, and no empty model folder."""
        final = self.folder(key, precision)
        ensure_writable_dir(final.parent.parent)
        with self._writing(key):
            cached = self.get(key, precision)
            if cached:
                return cached
            for stale in final.parent.glob(f".{precision}-partial-*"):  # left by a killed build
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{precision}-partial-"))
            try:
                manifest = write(tmp)
                manifest["format_version"] = MANIFEST_VERSION
                manifest["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
                manifest["sha256"] = integrity.hash_files(tmp, manifest["files"])
                write_json_atomic(tmp / MANIFEST_FILE, manifest)
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                wrote = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
                shutil.rmtree(tmp, ignore_errors=True)  # before saying how much is free
                raise disk_full(final.parent, f"writing {key} ({precision})", wrote=wrote) from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        cached = self.get(key, precision)
        assert cached is not None, "a freshly published model failed validation"
        return cached

    @contextlib.contextmanager
    def _writing(self, key: str):
        """Be the one process changing a model's folder (another waits, told who it waits for); a folder left
        with nothing in it (a build that failed) is removed on the way out."""
        folder = self.root / key
        with exclusive(folder, f"the cache of {key}", wait=True, folder=True):
            try:
                yield
            finally:
                with contextlib.suppress(OSError):
                    leftovers = [p for p in folder.iterdir() if p.suffix != ".lock"]  # .lock: older versions'
                    if not leftovers:
                        shutil.rmtree(folder)

    def discard(self, key: str, precision: str) -> None:
        """Drop one precision of a model (e.g. a damaged one) so the next build starts afresh."""
        folder = self.folder(key, precision)
        if not folder.parent.is_dir():
            return
        with self._writing(key):
            with contextlib.suppress(OSError, ValueError, AttributeError):  # no manifest: nothing was derived
                manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
                shutil.rmtree(derived_folder(manifest), ignore_errors=True)
            integrity.forget(folder)
            shutil.rmtree(folder, ignore_errors=True)

    def entries(self) -> list[CachedModel]:
        found = []
        if not self.root.is_dir():
            return found
        for key_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for prec_dir in sorted(p for p in key_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                cached = self.get(key_dir.name, prec_dir.name)
                if cached:
                    found.append(cached)
        return found

    def remove(self, key: str, precisions: tuple[str, ...] = PRECISIONS) -> bool:
        """Drop ``precisions`` of a model (with what was derived from them), and its folder once none is left;
        whether there was anything to remove."""
        target = self.root / key
        if not target.is_dir():
            return False
        for precision in precisions:  # the same locks builds hold: never delete under a running build
            self.discard(key, precision)
        if set(precisions) >= set(PRECISIONS) or not any(p.is_dir() for p in target.iterdir()):
            shutil.rmtree(target, ignore_errors=True)
        return True
