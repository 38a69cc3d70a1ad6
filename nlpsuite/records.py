"""Record files, read and written in one place: .jsonl, .csv, .tsv and .parquet in, JSONL out, with one-line
errors that name the file, the line (a Parquet file's row) and, where known, the column.

TSV has no quoting: a tab ends a field and a newline ends a record, as in the IANA definition and in the
TSV files NLP data comes in (GLUE, SST, ...), whose texts hold stray quote marks that csv-style quoting
would swallow. A field that needs tabs or newlines belongs in CSV (quoted fields may span lines) or JSONL.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from . import fsutil
from .errors import NlpsuiteError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
# Where str.splitlines() and other line-based tools break a line that JSON keeps inside a string
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


# --- reading ---------------------------------------------------------------------------------


def read_records(path: Path, columns: Sequence[str] = ()) -> list[tuple[int, dict]]:
    """(line the record starts on, record) from a .jsonl, .csv, .tsv or .parquet file whose records all have
    ``columns``."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise NlpsuiteError(f"{path}: expected a .jsonl, .csv, .tsv or .parquet file")
    if suffix == ".parquet":
        try:
            return parse_records(path, path.read_bytes(), columns)
        except OSError as exc:
            raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_records(path, fsutil.read_utf8(path), columns)


def parse_records(path: Path, raw: str | bytes, columns: Sequence[str] = ()) -> list[tuple[int, dict]]:
    """``read_records`` for a file's contents read elsewhere (e.g. by a Ray worker): text, or bytes for Parquet;
    ``path`` names it in errors."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = _parquet(path, raw, columns)
        if not rows:
            raise NlpsuiteError(f"{path} holds no records")
        return rows
    raw = raw.removeprefix("\ufeff")  # a byte-order mark is not part of the first record
    rows = _table(path, raw, suffix == ".tsv", columns) if suffix in (".csv", ".tsv") else _jsonl(path, raw, columns)
    if not rows:
        raise NlpsuiteError(f"{path} holds no records")
    return rows


def _jsonl(path: Path, raw: str, columns: Sequence[str]) -> list[tuple[int, dict]]:
    rows = []
    # JSON escapes \n inside strings, so \n alone ends a record; U+2028 and kin may sit raw inside strings
    for line, text in enumerate(raw.split("\n"), start=1):
        text = text.removesuffix("\r")
        if not text.strip():
            continue
        try:
            record = json.loads(text, parse_float=_finite, parse_constant=_finite)
        except json.JSONDecodeError as exc:
            raise NlpsuiteError(f"{path}:{line}:{exc.colno}: not valid JSON ({exc.msg})") from None
        except ValueError as exc:
            raise NlpsuiteError(f"{path}:{line}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise NlpsuiteError(f"{path}:{line}: not a JSON object")
        missing = [c for c in columns if c not in record]
        if missing:
            raise NlpsuiteError(f"{path}:{line}: missing column {_names(missing)}")
        rows.append((line, record))
    return rows


def _parquet(path: Path, data: bytes, columns: Sequence[str]) -> list[tuple[int, dict]]:
    """A Parquet file's rows (numbered from 1), its values as JSON holds them: dates and times in ISO 8601,
    decimals as exact strings."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise NlpsuiteError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise NlpsuiteError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise NlpsuiteError(f"{path} has no column {_names(missing)} (its columns: {', '.join(table.column_names)})")
    for field in table.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise NlpsuiteError(f"{path}: the column {field.name!r} holds bytes, which a JSON record cannot")
    return [(row, _json_value(record)) for row, record in enumerate(table.to_pylist(), start=1)]


def _json_value(value):
    """``value`` as JSON holds it (Parquet's dates, times and decimals become strings)."""
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)  # Decimal: exactly as written; a duration: as Python says it


def _finite(text: str) -> float:
    """A JSON number; Python alone would also take NaN, Infinity and 1e999, which no other reader agrees on."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _table(path: Path, raw: str, tsv: bool, columns: Sequence[str]) -> list[tuple[int, dict]]:
    # strict: an unclosed quote fails instead of swallowing the rest of the file into one field
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {"delimiter": ",", "strict": True}
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a document may exceed the default 128 KiB
    reader = csv.reader(io.StringIO(raw, newline=""), **dialect)
    start = 1  # the line the record being read starts on
    try:
        header = next(reader, None)
        if header is None:
            return []
        twice = sorted({h for h in header if h and header.count(h) > 1})
        if twice:
            raise NlpsuiteError(f"{path} has the column {_names(twice)} more than once")
        missing = [c for c in columns if c not in header]
        if missing:
            have = ", ".join(h for h in header if h) or "none"
            raise NlpsuiteError(f"{path} has no column {_names(missing)} (its columns: {have})")
        rows = []
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                continue  # a blank line
            if len(fields) > len(header):
                raise NlpsuiteError(f"{path}:{line}: {len(fields)} fields, but the header names {len(header)}")
            # a short row lacks its last columns: None, which the field checks report as "no value"
            rows.append((line, dict(zip(header, fields + [None] * (len(header) - len(fields)), strict=True))))
        return rows
    except csv.Error as exc:
        why = "a quoted field never ends" if "end of data" in str(exc) else str(exc)
        raise NlpsuiteError(f"{path}:{start}: not valid CSV ({why})") from None


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns)


def text_field(path: Path, line: int, record: dict, column: str, allow_empty: bool = False) -> str:
    """``record[column]`` as a string, non-empty unless ``allow_empty``."""
    value = record.get(column)
    if value is None:
        raise NlpsuiteError(f"{path}:{line}: no value for {column!r}")
    if not isinstance(value, str):
        raise NlpsuiteError(f"{path}:{line}: {column!r} must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise NlpsuiteError(f"{path}:{line}: {column!r} is empty")
    return value


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


# --- writing ---------------------------------------------------------------------------------


def dumps(record: dict) -> str:
    """``record`` as one JSONL line (no newline): readable UTF-8, but nothing a line-based tool splits on."""
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError:  # JSON has no NaN or infinity; writing them would make a file other readers reject
        where = _non_finite(record, "record")
        if not where:
            raise
        raise NlpsuiteError(f"cannot write {where} as JSON: it is NaN or infinite") from None
    for char, escaped in _LINE_BREAKS.items():
        line = line.replace(char, escaped)  # such characters occur only inside JSON strings, where escapes are equal
    return line


def _non_finite(value, where: str) -> str:
    """Where in ``value`` the first NaN or infinity sits, e.g. ``record['scores'][2]``; "" if nowhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key!r}]")
        if found:
            return found
    return ""


@contextlib.contextmanager
def appender(path: Path, fresh: bool = False) -> Iterator[Callable[[Iterable[dict]], None]]:
    """``append(records)`` adds one line per record to ``path`` (``-``: stdout) and makes the batch durable
    before returning; ``fresh`` starts the file over.

    Call ``completed_records`` first: it cuts off a torn last line that appending would extend.
    """
    if str(path) == "-":
        yield _append_to(sys.stdout, path, durable=False)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w" if fresh else "a", encoding="utf-8", newline="\n") as out:
        yield _append_to(out, path, durable=True)


def _append_to(out, path: Path, durable: bool) -> Callable[[Iterable[dict]], None]:
    def append(records: Iterable[dict]) -> None:
        try:
            text = "".join(dumps(record) + "\n" for record in records)  # a record that fails writes no half batch
        except NlpsuiteError as exc:
            raise NlpsuiteError(f"{path}: {exc}") from None
        out.write(text)
        out.flush()
        if durable:
            os.fsync(out.fileno())

    return append


def completed_records(path: Path) -> list[dict]:
    """The records an earlier run wrote to ``path`` (none if it is missing); a torn last line is truncated away."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    *lines, torn = data.split(b"\n")  # our writer ends every record with \n: anything after the last is torn
    records = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # a complete line we cannot read: not our file, so leave it whole
            raise NlpsuiteError(f"{path}:{line_no}: not a JSON record; is this the output of an earlier run?") from None
        if not isinstance(record, dict):
            raise NlpsuiteError(f"{path}:{line_no}: not a JSON object; is this the output of an earlier run?")
        records.append(record)
    if torn:
        with open(path, "r+b") as fh:
            fh.truncate(len(data) - len(torn))
    return records


def completed_lines(path: Path) -> int:
    """How many complete records an earlier run wrote to ``path``; a torn last line is truncated away."""
    return len(completed_records(path))


# Readers of one column, as eval recipes take them: (path, line, record, column) -> the checked value.


def resumable(output_path: Path, records: list[dict]) -> int:
    """How many records an earlier run on these records already wrote to ``output_path``.

    Checked before anything is cut: a file that is not such an output (other records, not JSONL, a torn
    line that is no JSON record's start) is refused and left whole.
    """
    if not output_path.exists():
        return 0
    if output_path.is_dir():
        raise NlpsuiteError(f"--output {output_path} is a folder")
    *complete, torn = output_path.read_bytes().split(b"\n")
    try:
        rows = [json.loads(line) for line in complete if line.strip()]
    except ValueError:
        rows = None
    ours = rows is not None and len(rows) <= len(records) and (not torn.strip() or torn.lstrip().startswith(b"{"))
    pairs = zip(rows or [], records, strict=False)  # the output may hold fewer lines than the input
    if not ours or not all(isinstance(r, dict) and r.items() >= rec.items() for r, rec in pairs):
        raise NlpsuiteError(f"{output_path} exists and is not an earlier output of this input: --force overwrites it")
    return completed_lines(output_path)


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
            except ValueError as exc:
                raise NlpsuiteError(f"{name}: not a valid JSON array ({exc})") from None
        elif text.startswith("{"):
            value = [record for _, record in _jsonl(Path(name), text, ("text",))]
        else:
            value = [line for line in text.split("\n") if line.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise NlpsuiteError(f"{name} must be a non-empty list of texts")
    out, seen = [], set()
    for position, item in enumerate(value):
        given = item.get("id", position) if isinstance(item, dict) else position
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or not text.strip():
            raise NlpsuiteError(f"{name}[{position}] must be a non-empty string or an object with a non-empty 'text'")
        doc = doc_id(given)
        if doc is None or doc in seen:
            raise NlpsuiteError(f"{name}[{position}]: its id must be a unique non-empty string or integer")
        seen.add(doc)
        out.append((doc, text))
    return out
