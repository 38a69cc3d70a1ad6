"""Checked fields of records: the text, labels, answers, document ids and relevance judgements, each with a
one-line error that names the file and the line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import NlpsuiteError
from ..text import blank
from .read import _finite, _jsonl, read_records


def text_field(path: Path, line: int, record: dict, column: str, allow_empty: bool = False) -> str:
    """``record[column]`` as a string, non-empty unless ``allow_empty``."""
    problem = text_problem(record, column, allow_empty)
    if problem:
        raise NlpsuiteError(f"{path}:{line}: {problem}")
    return record[column]


def text_problem(record: dict, column: str, allow_empty: bool = False) -> str | None:
    """Why ``record[column]`` is no text to work on (missing, not a string, empty), or None."""
    value = record.get(column)
    if value is None:
        return f"no value for {column!r}"
    if not isinstance(value, str):
        return f"{column!r} must be a string, not {type(value).__name__}"
    if not allow_empty and blank(value):
        return f"{column!r} is empty"
    return None


def label_field(path: Path, line: int, record: dict, column: str) -> str:
    """A class label: a non-empty string, or an integer (JSON labels may be numbers), without outer spaces."""
    value = record.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text_field(path, line, record, column).strip()


def answers_field(path: Path, line: int, value) -> list[str]:
    """A list of gold answers, a single answer, or SQuAD's ``{"text": [...], "answer_start": [...]}``; an empty
    list marks a question the context does not answer (SQuAD 2.0)."""
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise NlpsuiteError(f"{path}:{line}: 'answers' must be a string or a list of strings ([] for no answer)")
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


def documents(path: Path, allow_empty: bool = False) -> dict[str, str]:
    """A corpus: ``{id: text}`` from a JSONL of ``{"id", "text"}`` records with unique ids."""
    if path.suffix.lower() != ".jsonl":
        raise NlpsuiteError(f'{path}: the documents must be a .jsonl file of {{"id", "text"}} records')
    docs: dict[str, str] = {}
    for line, record in read_records(path, ("id", "text")):
        doc = doc_id(record["id"])
        if doc is None:
            raise NlpsuiteError(f"{path}:{line}: 'id' must be a non-empty string or an integer")
        if doc in docs:
            raise NlpsuiteError(f"{path}:{line}: duplicate id {doc!r}")
        docs[doc] = text_field(path, line, record, "text", allow_empty)
    return docs


# Readers of one column, as eval recipes take them: (path, line, record, column) -> the checked value.


def reference_field(path: Path, line: int, record: dict, column: str) -> str:
    """A reference text, which may be empty (a source with nothing to say)."""
    return text_field(path, line, record, column, allow_empty=True)


def answers_column(path: Path, line: int, record: dict, column: str) -> list[str]:
    return answers_field(path, line, record[column])


def judgements_column(path: Path, line: int, record: dict, column: str) -> dict[str, float]:
    return judgements_field(path, line, record[column])


def document_list(value, name: str = "documents") -> list[tuple[str, str]]:
    """(id, text) of each document in ``value``: a list of strings or ``{"text", "id"?}`` objects (an id defaults to
    the position, from 0), or text holding a JSON array, JSONL of such objects, or one document per line."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text, parse_float=_finite, parse_constant=_finite)
            except (ValueError, RecursionError) as exc:
                raise NlpsuiteError(f"{name}: not a valid JSON array ({exc})") from None
        elif text.startswith("{"):
            value = [record for _, record in _jsonl(Path(name), text.split("\n"), ("text",))]
        else:
            value = [line for line in text.split("\n") if line.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise NlpsuiteError(f"{name} must be a non-empty list of texts")
    out, seen = [], set()
    for position, item in enumerate(value):
        given = item.get("id", position) if isinstance(item, dict) else position
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or blank(text):
            raise NlpsuiteError(f"{name}[{position}] must be a non-empty string or an object with a non-empty 'text'")
        doc = doc_id(given)
        if doc is None or doc in seen:
            raise NlpsuiteError(f"{name}[{position}]: its id must be a unique non-empty string or integer")
        seen.add(doc)
        out.append((doc, text))
    return out
