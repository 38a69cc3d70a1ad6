"""Resolve what the user typed after ``--model`` into a model source and a cache key."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..artefacts import MANIFEST_FILE
from ..errors import ModelNotFoundError, did_you_mean

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """Where a backbone comes from and the cache key its conversions are stored under."""

    kind: str  # "catalog" | "gguf" | "hf-dir" | "hub" | "onnx-dir"
    key: str
    location: str
    description: str = ""
    spec: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.key if self.kind in ("catalog", "hub") else self.location

    @property
    def in_our_cache(self) -> bool:
        """Whether its conversions live in nlpsuite's cache (where derived copies may be written beside them), not in
        a folder of the user's (a converted folder given as --model is never written into)."""
        return self.kind != "onnx-dir"


def user_catalog_dir() -> Path:
    """Where entries the user made (tuned models) are kept, one JSON file each, beside the converted models."""
    from .. import config

    return config.home() / "catalog"


def user_entries() -> dict[str, dict]:
    """The catalog entries under user_catalog_dir(); an unreadable one is skipped (the rest still resolve)."""
    entries = {}
    folder = user_catalog_dir()
    for item in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            entry = json.loads(item.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("source"), dict):
            entries[entry["name"]] = entry
    return entries


def builtin_entries() -> dict[str, dict]:
    """The catalog manifests shipped in ``models/``."""
    entries = {}
    for item in resources.files("nlpsuite_models").iterdir():
        if item.name.endswith(".json"):
            entry = json.loads(item.read_text(encoding="utf-8"))
            entries[entry["name"]] = entry
    return entries


class Catalog:
    """Built-in catalog entries plus those registered by plugins."""

    def __init__(self, entries: dict[str, dict] | None = None) -> None:
        self.entries: dict[str, dict] = {**user_entries(), **builtin_entries()} if entries is None else dict(entries)

    def add(self, name: str, source: dict, description: str = "", aliases: tuple[str, ...] = ()) -> None:
        if name in self.entries:
            raise ValueError(f"model {name!r} is already in the catalog")
        self.entries[name] = {"name": name, "source": source, "description": description, "aliases": list(aliases)}

    def find(self, name: str) -> dict | None:
        for entry in self.entries.values():
            if name == entry["name"] or name in entry.get("aliases", ()):
                return entry
        return None

    def resolve(self, name: str) -> ModelSource:
        """Catalog name, local GGUF file, local HF folder, converted folder, or hub id - in that order."""
        name = name.strip()
        if not name:
            raise ModelNotFoundError("empty model name")
        entry = self.find(name)
        if entry:
            return ModelSource("catalog", entry["name"], entry["name"], entry.get("description", ""), entry["source"])
        path = Path(name).expanduser()
        if path.exists():
            return _local_source(path.resolve())
        if HUB_ID.match(name) and not name.startswith((".", "/", "~")):
            return ModelSource("hub", name.replace("/", "--"), name, f"Hugging Face hub model {name}")
        known = [n for e in self.entries.values() for n in (e["name"], *e.get("aliases", ()))]
        raise ModelNotFoundError(
            f"unknown model {name!r}: not in the catalog ('nlpsuite models list'), not an existing path, "
            f"and not a hub id like 'owner/name'{did_you_mean(name, known)}"
        )


def _local_source(path: Path) -> ModelSource:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFoundError(f"{path} is a file but not a .gguf model")
        return ModelSource("gguf", f"{path.stem.lower()}-{digest}", str(path), f"GGUF file {path}")
    if (path / MANIFEST_FILE).is_file():
        return ModelSource("onnx-dir", path.name, str(path), f"converted backbone in {path}")
    if (path / "config.json").is_file():
        return ModelSource("hf-dir", f"{path.name.lower()}-{digest}", str(path), f"Hugging Face folder {path}")
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _local_source(ggufs[0])
    raise ModelNotFoundError(f"{path} holds no config.json, manifest.json or single .gguf file")
