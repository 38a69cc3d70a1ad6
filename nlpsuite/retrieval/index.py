"""A named search index in the user cache: passages, their embeddings and a BM25 index, published atomically.

Layout of ``<home>/indexes/<name>/``: ``index.json`` (the manifest, rewritten atomically) names the
generation folder that holds the data (``passages.json``, ``embeddings.npy``, ``bm25/``). An update
writes a new generation folder, then switches ``index.json`` to it, then deletes the old one, all
under the index's file lock; an interrupted update leaves the previous index whole.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from ..arrays import write_npy
from ..errors import NlpsuiteError
from ..fsutil import ensure_writable_dir, exclusive, write_json_atomic
from . import terms

FORMAT_VERSION = 1
MANIFEST = "index.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GENERATION = re.compile(r"gen-[A-Za-z0-9_]{1,64}")  # tempfile.mkdtemp(prefix="gen-") names


def indexes_dir() -> Path:
    return config.home() / "indexes"


def index_dir(name: str) -> Path:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise NlpsuiteError(f"bad index name {name!r}: use letters, digits, '.', '_' or '-' (64 at most)")
    return indexes_dir() / name


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete index, or None when there is none (or it is from an unknown format)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        return None
    data = manifest.get("data")
    return manifest if isinstance(data, str) and (folder / data).is_dir() else None


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 40


def check_manifest(manifest: dict) -> None:
    """Raise ValueError unless the manifest has the fields and types this version writes."""
    if not GENERATION.fullmatch(manifest.get("data", "")):
        raise ValueError("its data folder is not one of its generations")
    model = manifest.get("model")
    if not (isinstance(model, dict) and all(isinstance(model.get(k), str) for k in ("key", "precision", "embedding"))):
        raise ValueError("the model it was embedded with is not recorded")
    for field in ("documents", "passages", "dim"):
        if not _count(manifest.get(field)):
            raise ValueError(f"its {field} count is not a whole number")
    if not all(isinstance(manifest.get(k), str) for k in ("created", "updated")):
        raise ValueError("its dates are not text")
    bm25 = manifest.get("bm25", {"analyzer": terms.LEGACY})  # indexes written before it was recorded
    languages = bm25.get("languages", []) if isinstance(bm25, dict) else None
    if not (
        isinstance(bm25, dict)
        and bm25.get("analyzer") in (terms.ANALYZER, terms.LEGACY)
        and isinstance(languages, list)
        and all(language in terms.STEMMERS for language in languages)
    ):
        raise ValueError("its BM25 analyzer is not one this version knows")


def bm25_record(manifest: dict) -> dict:
    """How the index's BM25 terms were made: ``{"analyzer", "languages"}``; queries are cut the same way."""
    return manifest.get("bm25", {"analyzer": terms.LEGACY, "languages": ["en"]})


@dataclass
class Index:
    """A loaded index: everything a search needs, in memory."""

    name: str
    manifest: dict
    passages: list[dict]  # {"source", "text", "start", "end"}
    embeddings: np.ndarray  # [passages, dim], unit rows
    bm25: object  # bm25s.BM25
    documents: dict[str, dict]  # source -> {"sha256", "passages"}

    def bm25_scores(self, query: str) -> np.ndarray:
        if not self.passages:
            return np.zeros(0, np.float32)
        record = bm25_record(self.manifest)
        if record["analyzer"] == terms.LEGACY:
            words = terms.legacy_terms([query])[0]
        else:
            words = terms.query_terms(query, record["languages"])
        ids = self.bm25.get_tokens_ids(words)
        ids = [i for i in ids if i != self.bm25.vocab_dict.get("")]  # the empty-document placeholder
        if not ids:
            return np.zeros(len(self.passages), np.float32)
        return np.asarray(self.bm25.get_scores_from_ids(ids), np.float32)


def _damaged(name: str, why: str) -> NlpsuiteError:
    return NlpsuiteError(f"index {name!r} is damaged ({why}); remove it with 'nlpsuite index rm {name}' and add again")


def _check_passages(stored) -> tuple[list[dict], dict[str, dict]]:
    """The passages and documents of a passages.json, or ValueError saying what does not hold."""
    if not (isinstance(stored, dict) and isinstance(stored.get("passages"), list)):
        raise ValueError("passages.json does not hold a list of passages")
    passages, documents = stored["passages"], stored.get("documents")
    if not isinstance(documents, dict):
        raise ValueError("passages.json does not list its documents")
    for i, p in enumerate(passages):
        if not (
            isinstance(p, dict)
            and isinstance(p.get("source"), str)
            and isinstance(p.get("text"), str)
            and _count(p.get("start"))
            and _count(p.get("end"))
            and p["start"] <= p["end"]
        ):
            raise ValueError(f"passage {i} in passages.json lacks a source, text or span")
    for source, doc in documents.items():
        if not (isinstance(doc, dict) and isinstance(doc.get("sha256"), str) and _count(doc.get("passages"))):
            raise ValueError(f"document {source!r} in passages.json lacks its sha256 or passage count")
    if sum(doc["passages"] for doc in documents.values()) != len(passages):
        raise ValueError("the documents' passage counts do not add up to the passages")
    if any(p["source"] not in documents for p in passages):
        raise ValueError("a passage comes from a document it does not list")
    return passages, documents


def _load(name: str, folder: Path, manifest: dict) -> Index:
    import bm25s

    from ..arrays import read_npy

    try:
        check_manifest(manifest)
        data = folder / manifest["data"]
        passages, documents = _check_passages(json.loads((data / "passages.json").read_text(encoding="utf-8")))
        if (len(passages), len(documents)) != (manifest["passages"], manifest["documents"]):
            raise ValueError("index.json counts other passages or documents than passages.json holds")
        try:  # unit rows: any value beyond 1 (plus rounding) is not an embedding this tool wrote
            embeddings = read_npy(data / "embeddings.npy", ndim=2, limit=1.001)
        except ValueError as exc:
            raise ValueError(f"embeddings.npy {exc}") from None
        if embeddings.shape != (len(passages), manifest["dim"]) and (passages or len(embeddings)):
            raise ValueError(f"embeddings.npy has shape {embeddings.shape}, not ({len(passages)}, {manifest['dim']})")
        bm25 = None
        if passages:
            bm25 = bm25s.BM25.load(str(data / "bm25"), allow_pickle=False, show_progress=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged(name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return Index(name, manifest, passages, embeddings.astype(np.float32), bm25, documents)


_LOADED: dict[Path, Index] = {}  # per process: repeated searches reuse what was read, until the index changes


def load(name: str) -> Index:
    """The named index, read once per process and re-read only after it changes on disk.

    Reading takes no lock, so a read-only cache stays searchable: an update publishes its new generation
    before it deletes the old one, so a read that loses its generation midway reads the new one instead.
    """
    folder = index_dir(name)
    for _attempt in range(3):
        manifest = read_manifest(folder)
        if manifest is None:
            raise NlpsuiteError(f"no index named {name!r} (see 'nlpsuite index list')")
        cached = _LOADED.get(folder)
        if cached and cached.manifest["data"] == manifest["data"]:
            return cached
        try:
            index = _load(name, folder, manifest)
        except NlpsuiteError:
            if (read_manifest(folder) or {}).get("data") != manifest["data"]:
                continue  # an update replaced this generation while it was read
            raise
        _LOADED[folder] = index
        return index
    raise NlpsuiteError(f"index {name!r} changed three times while it was read; try again")


def check_model(manifest: dict, name: str, model: dict) -> None:
    """Refuse to mix embeddings from different models (or embedding methods) in one index."""
    built = manifest["model"]
    if built != model:
        raise NlpsuiteError(
            f"index {name!r} was embedded with {built['key']} ({built['precision']}, {built['embedding']}), "
            f"not {model['key']} ({model['precision']}, {model['embedding']}): use that model or rebuild the index"
        )


def _write(data: Path, passages: list[dict], embeddings: np.ndarray, documents: dict) -> dict:
    """Fill a generation folder; returns how its BM25 terms were made."""
    import bm25s

    (data / "passages.json").write_text(
        json.dumps({"passages": passages, "documents": documents}, ensure_ascii=False), encoding="utf-8"
    )
    write_npy(data / "embeddings.npy", embeddings.astype(np.float32))
    record = {"analyzer": terms.ANALYZER, "languages": []}
    if passages:
        tokens, record["languages"] = terms.passage_terms([p["text"] for p in passages])
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        bm25.save(str(data / "bm25"), allow_pickle=False, show_progress=False)
    return record


def update(
    name: str,
    model: dict,
    change: Callable[[Index | None], tuple[list[dict], np.ndarray, dict] | None],
    wait: bool = False,
) -> dict:
    """As the index's one writer (another is refused, or with ``wait`` waited for): ``change(current index or
    None) -> (passages, embeddings, documents)``, then publish the result (``None``: nothing changed, nothing
    written). Returns the manifest. A failed update leaves the index as it was, and no new index behind."""
    folder = index_dir(name)
    ensure_writable_dir(folder.parent)
    try:
        with exclusive(folder, f"index {name!r}", wait, folder=True):
            try:
                return _update(name, folder, model, change)
            except BaseException:
                if read_manifest(folder) is None:  # a new index: nothing was published, so nothing is left
                    shutil.rmtree(folder, ignore_errors=True)
                raise
    finally:
        _LOADED.pop(folder, None)


def _update(name: str, folder: Path, model: dict, change) -> dict:
    manifest = read_manifest(folder)
    current = None
    if manifest is not None:
        current = _load(name, folder, manifest)
        check_model(manifest, name, model)
    changed = change(current)
    if changed is None and manifest is not None:
        return manifest
    passages, embeddings, documents = changed
    _remove_generations(folder, keep=manifest["data"] if manifest else None)  # left by interrupted updates
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = Path(tempfile.mkdtemp(dir=folder, prefix="gen-"))
    try:
        bm25 = _write(data, passages, embeddings, documents)
        new = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "model": model,
            "data": data.name,
            "documents": len(documents),
            "passages": len(passages),
            "dim": int(embeddings.shape[1]),
            "bm25": bm25,
            "created": manifest["created"] if manifest else now,
            "updated": now,
        }
        write_json_atomic(folder / MANIFEST, new)
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)  # the index stays as it was: its old generation is still named
        raise  # a full disk is one line where it is reported (it names the file and the room left)
    _remove_generations(folder, keep=data.name)  # the one replaced
    return new


def _remove_generations(folder: Path, keep: str | None) -> None:
    for stale in folder.glob("gen-*"):
        if stale.name != keep:
            shutil.rmtree(stale, ignore_errors=True)


def list_indexes() -> list[dict]:
    """The manifest of each index, named by its folder (the name ``search`` takes, whatever the file says).
    A damaged one is listed with ``damaged`` saying why, no counts, and "damaged" as its model."""
    root = indexes_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name)):
        manifest = read_manifest(folder)
        if manifest is None:
            continue
        try:
            check_manifest(manifest)
            found.append({**manifest, "name": folder.name})
        except ValueError as exc:
            found.append(
                {
                    "name": folder.name,
                    "documents": None,
                    "passages": None,
                    "updated": "",
                    "model": {"key": "damaged"},
                    "damaged": f"{exc}; remove it with 'nlpsuite index rm {folder.name}'",
                }
            )
    return found


def remove(name: str) -> bool:
    folder = index_dir(name)
    if not folder.is_dir():
        return False
    ensure_writable_dir(folder.parent)  # on a read-only disk: one line, not a removal that did not happen
    with exclusive(folder, f"index {name!r}", folder=True):
        shutil.rmtree(folder, ignore_errors=True)
    _LOADED.pop(folder, None)
    return True
