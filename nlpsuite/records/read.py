"""Reading record files: .jsonl, .csv, .tsv and .parquet, as a stream of records (memory bounded by one record,
or one Parquet row group, never by the file), with one-line errors that name the file, the line (a Parquet
file's row) and, where known, the column.

TSV has no quoting: a tab ends a field and a newline ends a record, as in the IANA definition and in the
TSV files NLP data comes in (GLUE, SST, ...), whose texts hold stray quote marks that csv-style quoting
would swallow. A field that needs tabs or newlines belongs in CSV (quoted fields may span lines) or JSONL.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import NlpsuiteError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
PARQUET_ROWS = 1024  # rows of a Parquet file decoded at a time

Rows = Iterator[tuple[int, dict]]  # (line the record starts on, record)


def iter_records(path: Path, columns: Sequence[str] = (), headed: Sequence[str] = (), hint: str = "") -> Rows:
    """The records of a .jsonl, .csv, .tsv or .parquet file whose records all have ``columns``, read as a stream:
    a 5 GB file costs the memory of one record. ``headed``: columns required only of a file with a header (CSV,
    TSV, Parquet), where a missing one is missing from every record. ``hint`` ends a missing column's error.
    An empty file raises "holds no records"."""
    suffix = _suffix(path)
    table = (*columns, *headed)
    try:
        if suffix == ".parquet":
            yield from _nonempty(path, _parquet(path, path, table, hint))
            return
        if suffix in (".csv", ".tsv"):
            with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: a byte-order mark is no header
                yield from _nonempty(path, _table(path, fh, suffix == ".tsv", table, hint))
            return
        with open(path, "rb") as fh:  # JSON escapes \n in strings: \n alone ends a record (never U+2028)
            yield from _nonempty(path, _jsonl(path, (_utf8(path, raw) for raw in fh), columns, hint))
    except OSError as exc:
        raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise NlpsuiteError(f"{path} is not UTF-8 text") from None


def read_records(path: Path, columns: Sequence[str] = ()) -> list[tuple[int, dict]]:
    """Every record of ``iter_records`` at once, for files that are read whole anyway (evaluation data)."""
    return list(iter_records(path, columns))


def parse_records(
    path: Path, raw: str | bytes, columns: Sequence[str] = (), headed: Sequence[str] = (), hint: str = ""
) -> list[tuple[int, dict]]:
    """``iter_records`` for a file's contents read elsewhere (e.g. by a Ray worker): text, or bytes for Parquet;
    ``path`` names it in errors."""
    suffix = _suffix(path)
    table = (*columns, *headed)
    if suffix == ".parquet":
        import pyarrow as pa

        rows = _parquet(path, pa.BufferReader(raw), table, hint)
    elif suffix in (".csv", ".tsv"):
        rows = _table(path, io.StringIO(raw.removeprefix("\ufeff"), newline=""), suffix == ".tsv", table, hint)
    else:
        rows = _jsonl(path, raw.split("\n"), columns, hint)
    return list(_nonempty(path, rows))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise NlpsuiteError(f"{path}: expected a .jsonl, .csv, .tsv or .parquet file")
    return suffix


def _nonempty(path: Path, rows: Rows) -> Rows:
    empty = True
    for row in rows:
        empty = False
        yield row
    if empty:
        raise NlpsuiteError(f"{path} holds no records")


def _utf8(path: Path, raw: bytes) -> str:
    return raw.decode("utf-8")  # a UnicodeDecodeError is reported by iter_records, naming the file


def _jsonl(path: Path, lines: Iterable[str], columns: Sequence[str], hint: str = "") -> Rows:
    for line, text in enumerate(lines, start=1):
        if line == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first record
        text = text.removesuffix("\n").removesuffix("\r")
        if not text.strip():
            continue
        try:
            record = json.loads(text, parse_float=_finite, parse_constant=_finite)
        except json.JSONDecodeError as exc:
            raise NlpsuiteError(f"{path}:{line}:{exc.colno}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:
            raise NlpsuiteError(f"{path}:{line}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise NlpsuiteError(f"{path}:{line}: not a JSON object")
        missing = [c for c in columns if c not in record]
        if missing:
            raise NlpsuiteError(f"{path}:{line}: missing column {_names(missing)}{hint}")
        yield line, record


def _parquet(path: Path, source, columns: Sequence[str], hint: str = "") -> Rows:
    """A Parquet file's rows (numbered from 1), its values as JSON holds them: dates and times in ISO 8601,
    decimals as exact strings."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise NlpsuiteError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        reader = pq.ParquetFile(source)
        schema = reader.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise NlpsuiteError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        have = ", ".join(schema.names)
        raise NlpsuiteError(f"{path} has no column {_names(missing)} (its columns: {have}){hint}")
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise NlpsuiteError(f"{path}: the column {field.name!r} holds bytes, which a JSON record cannot")
    row = 0
    try:
        for batch in reader.iter_batches(batch_size=PARQUET_ROWS):
            for record in batch.to_pylist():
                row += 1
                yield row, _json_value(record)
    except (pa.ArrowException, OSError) as exc:
        raise NlpsuiteError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


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


def _table(path: Path, stream, tsv: bool, columns: Sequence[str], hint: str = "") -> Rows:
    # strict: an unclosed quote fails instead of swallowing the rest of the file into one field
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {"delimiter": ",", "strict": True}
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a document may exceed the default 128 KiB
    reader = csv.reader(stream, **dialect)
    start = 1  # the line the record being read starts on
    try:
        header = next(reader, None)
        if header is None:
            return
        twice = sorted({h for h in header if h and header.count(h) > 1})
        if twice:
            raise NlpsuiteError(f"{path} has the column {_names(twice)} more than once")
        missing = [c for c in columns if c not in header]
        if missing:
            have = ", ".join(h for h in header if h) or "none"
            raise NlpsuiteError(f"{path} has no column {_names(missing)} (its columns: {have}){hint}")
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                continue  # a blank line
            if len(fields) > len(header):
                raise NlpsuiteError(f"{path}:{line}: {len(fields)} fields, but the header names {len(header)}")
            # a short row lacks its last columns: None, which the field checks report as "no value"
            yield line, dict(zip(header, fields + [None] * (len(header) - len(fields)), strict=True))
    except csv.Error as exc:
        why = "a quoted field never ends" if "end of data" in str(exc) else str(exc)
        raise NlpsuiteError(f"{path}:{start}: not valid CSV ({why})") from None


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns)
