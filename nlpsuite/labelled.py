"""Labelled data files: records with named columns from .jsonl, .csv or .tsv, checked with one-line errors
that name the file, the line and the column."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from . import fsutil
from .errors import NlpsuiteError


def read_utf8(path: Path) -> str:
    return fsutil.read_utf8(path).removeprefix("\ufeff")  # a byte-order mark is not part of the first column name


def read_rows(path: Path, columns: Sequence[str]) -> list[tuple[int, dict]]:
    """(line number, record) from a .jsonl, .csv or .tsv file whose records all have ``columns``."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv"):
        raise NlpsuiteError(f"{path}: expected a .jsonl, .csv or .tsv file")
    raw = read_utf8(path)
    rows: list[tuple[int, dict]] = []
    if suffix in (".csv", ".tsv"):
        # TSV has no quoting (a field may start with a quote mark); CSV quotes fields, which may span lines
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {"delimiter": ","}
        reader = csv.DictReader(io.StringIO(raw, newline=""), **dialect)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if header and missing:
            have = ", ".join(h for h in header if h) or "none"
            raise NlpsuiteError(f"{path} has no column {_names(missing)} (its columns: {have})")
        rows = [(reader.line_num, dict(row)) for row in reader]  # the line each record ends on
    else:
        for line, text in enumerate(raw.splitlines(), start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError:
                raise NlpsuiteError(f"{path}:{line}: not a JSON object") from None
            if not isinstance(record, dict):
                raise NlpsuiteError(f"{path}:{line}: not a JSON object")
            missing = [c for c in columns if c not in record]
            if missing:
                raise NlpsuiteError(f"{path}:{line}: missing column {_names(missing)}")
            rows.append((line, record))
    if not rows:
        raise NlpsuiteError(f"{path} holds no records")
    return rows


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns)


def text_field(path: Path, line: int, record: dict, column: str, allow_empty: bool = False) -> str:
    value = record.get(column)
    if value is None:
        raise NlpsuiteError(f"{path}:{line}: no value for {column!r}")
    if not isinstance(value, str):
        raise NlpsuiteError(f"{path}:{line}: {column!r} must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise NlpsuiteError(f"{path}:{line}: {column!r} is empty")
    return value


def answers_field(path: Path, line: int, value) -> list[str]:
    """A list of gold answers, a single answer, or SQuAD's ``{"text": [...], "answer_start": [...]}``."""
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise NlpsuiteError(f"{path}:{line}: 'answers' must be a string or a non-empty list of strings")
    return value


def doc_id(value) -> str | None:
    """A document id as a string (JSON ids may be numbers), or None if it is no usable id."""
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value)


def judgements_field(path: Path, line: int, value) -> dict[str, float]:
    """'relevant' as a list of ids (grade 1 each), a ``{id: grade}`` map, or (in CSV/TSV) ids in a string
    separated by commas or spaces."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if isinstance(value, list):
        ids = [doc_id(v) for v in value]
        if None in ids:
            raise NlpsuiteError(f"{path}:{line}: 'relevant' ids must be non-empty strings or integers")
        judged = dict.fromkeys(ids, 1.0)
    elif isinstance(value, dict):
        judged = {}
        for doc, grade in value.items():
            if isinstance(grade, bool) or not isinstance(grade, int | float) or not math.isfinite(grade):
                raise NlpsuiteError(f"{path}:{line}: the grade of {doc!r} in 'relevant' must be a number")
            judged[str(doc)] = float(grade)
    else:
        raise NlpsuiteError(f"{path}:{line}: 'relevant' must be a list of ids or a {{id: grade}} map")
    if not any(grade > 0 for grade in judged.values()):
        raise NlpsuiteError(f"{path}:{line}: no relevant document (a grade above 0) for this query")
    return judged


def documents(path: Path) -> dict[str, str]:
    """The retrieval corpus: ``{id: text}`` from a JSONL of ``{"id", "text"}`` records."""
    if path.suffix.lower() != ".jsonl":
        raise NlpsuiteError(f'{path}: the documents must be a .jsonl file of {{"id", "text"}} records')
    docs: dict[str, str] = {}
    for line, record in read_rows(path, ("id", "text")):
        doc = doc_id(record["id"])
        if doc is None:
            raise NlpsuiteError(f"{path}:{line}: 'id' must be a non-empty string or an integer")
        if doc in docs:
            raise NlpsuiteError(f"{path}:{line}: duplicate id {doc!r}")
        docs[doc] = text_field(path, line, record, "text")
    return docs


def reference_field(path: Path, line: int, record: dict, column: str) -> str:
    """A reference text, which may be empty (a source with nothing to say)."""
    return text_field(path, line, record, column, allow_empty=True)


def answers_column(path: Path, line: int, record: dict, column: str) -> list[str]:
    return answers_field(path, line, record[column])


def judgements_column(path: Path, line: int, record: dict, column: str) -> dict[str, float]:
    return judgements_field(path, line, record[column])
