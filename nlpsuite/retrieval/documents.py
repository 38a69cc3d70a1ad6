"""Read the documents to index: .txt/.md files, folders of them, and JSONL files of {"id", "text"} records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .. import records
from ..errors import NlpsuiteError

FOLDER_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


@dataclass(frozen=True)
class Document:
    source: str  # the file's absolute path, or a JSONL record's id
    text: str
    sha256: str


def _decode(path: Path, data: bytes) -> str:
    if b"\0" in data:
        raise NlpsuiteError(f"{path} is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NlpsuiteError(f"{path} is not UTF-8 text") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None


def _jsonl(path: Path) -> list[Document]:
    # an empty text indexes nothing but is no reason to refuse the rest of a corpus
    docs = records.documents(path, allow_empty=True)
    return [Document(source, text, hashlib.sha256(text.encode()).hexdigest()) for source, text in docs.items()]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in FOLDER_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise NlpsuiteError(f"{path} holds no {', '.join(FOLDER_SUFFIXES)} files")
        return found
    if not path.exists():
        raise NlpsuiteError(f"{path}: no such file or folder")
    return [path]


def read_documents(paths: list[str | Path]) -> list[Document]:
    """Every document under ``paths``; a later copy of the same source replaces an earlier one."""
    if not paths:
        raise NlpsuiteError("give at least one file or folder to index")
    docs: dict[str, Document] = {}
    for given in paths:
        for path in _files(Path(given).expanduser()):
            if path.suffix.lower() == ".jsonl":
                docs.update((d.source, d) for d in _jsonl(path))
            else:
                data = _read(path)
                source = str(path.resolve())
                docs[source] = Document(source, _decode(path, data), hashlib.sha256(data).hexdigest())
    return list(docs.values())
