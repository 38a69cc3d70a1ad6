"""Writing records: JSONL out, one line per record, each batch made durable as it is written, and the check that
an existing output is an earlier run's (so a run resumes after its last complete line)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import NlpsuiteError

# Where str.splitlines() and other line-based tools break a line that JSON keeps inside a string
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


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
        try:
            out.write(text)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        except OSError as exc:  # a full disk says which file it could not write
            if exc.filename is None and str(path) != "-":
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            raise

    return append


def completed_records(path: Path) -> list[dict]:
    """The records an earlier run wrote to ``path`` (none if it is missing); a torn last line is truncated away."""
    records: list[dict] = []
    _read_output(path, records.append)
    return records


def completed_lines(path: Path) -> int:
    """How many complete records an earlier run wrote to ``path``; a torn last line is truncated away."""
    return _read_output(path, lambda _record: None)


def resumable(output_path: Path, records: Iterable[dict]) -> int:
    """How many of ``records`` (the input, read as a stream) an earlier run already wrote to ``output_path``: each
    output line holds its input record's fields. A torn last line is then cut off.

    Checked before anything is cut: a file that is not such an output (other records, not JSONL, a torn
    line that is no JSON record's start) is refused and left whole.
    """
    if output_path.is_dir():
        raise NlpsuiteError(f"--output {output_path} is a folder")
    inputs = iter(records)

    def check(row: dict) -> None:
        record = next(inputs, None)
        if record is None or not row.items() >= record.items():
            raise NlpsuiteError(
                f"{output_path} exists and is not an earlier output of this input: --force overwrites it"
            )

    return _read_output(output_path, check, refuse=True)


def _read_output(path: Path, each: Callable[[dict], None], refuse: bool = False) -> int:
    """Hand each complete record of an output file to ``each``, a line at a time; then cut a torn last line (our
    writer ends every record with \\n: anything after the last is torn). Returns the count."""
    count, torn, size = 0, b"", 0
    try:
        with open(path, "rb") as fh:
            for line_no, line in enumerate(fh, start=1):
                size += len(line)
                if not line.endswith(b"\n"):
                    torn = line
                    break
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    record = None
                if not isinstance(record, dict):  # a complete line we cannot read: not our file, so leave it whole
                    if refuse:
                        raise NlpsuiteError(
                            f"{path} exists and is not an earlier output of this input: --force overwrites it"
                        )
                    raise NlpsuiteError(f"{path}:{line_no}: not a JSON record; is this the output of an earlier run?")
                each(record)
                count += 1
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise NlpsuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    if torn.strip() and not torn.lstrip().startswith(b"{") and refuse:
        raise NlpsuiteError(f"{path} exists and is not an earlier output of this input: --force overwrites it")
    if torn:
        with open(path, "r+b") as fh:
            fh.truncate(size - len(torn))
    return count
