"""Batch mode shared by commands: JSONL/TSV records in, JSONL out, with progress and resume.

Each output line is the input record plus the fields the command adds. Lines are flushed as they are
written, so an interrupted run keeps its work; running the same command again resumes after the
last complete line (a half-written last line is cut off first).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import NlpsuiteError
from .options import err, read_utf8

Process = Callable[[list[dict]], list[dict]]  # records -> fields to add, one dict per record


def read_records(path: Path, field: str = "text") -> list[dict]:
    """Records from a .jsonl file (objects) or a .tsv/.csv file with a header row; each needs ``field``."""
    raw = read_utf8(path)
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        rows = list(csv.DictReader(raw.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        numbered: Iterator[tuple[int, object]] = enumerate(rows, start=2)
    else:
        numbered = _jsonl(raw, path)
    records = []
    for line_no, record in numbered:
        if not isinstance(record, dict) or not isinstance(record.get(field), str) or not record[field].strip():
            raise NlpsuiteError(f"{path}:{line_no}: each record needs a non-empty {field!r} field")
        records.append(record)
    if not records:
        raise NlpsuiteError(f"{path} holds no records")
    return records


def _jsonl(raw: str, path: Path) -> Iterator[tuple[int, object]]:
    for line_no, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            try:
                yield line_no, json.loads(line)
            except ValueError:
                raise NlpsuiteError(f"{path}:{line_no}: not a JSON object") from None


def completed_lines(path: Path) -> int:
    """How many complete records an earlier run wrote; a torn last line is truncated away."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep, count = 0, 0
    for line in data.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError
            json.loads(line)
        except ValueError:
            break
        keep += len(line)
        count += 1
    if keep != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
    return count


def run_batch(
    input_path: Path,
    output_path: Path,
    process: Process,
    batch_size: int = 8,
    quiet: bool = False,
    label: str = "processing",
    force: bool = False,
) -> int:
    """Process every record not yet in ``output_path`` (``-``: stdout); returns how many were written this run."""
    records = read_records(input_path)
    to_stdout = str(output_path) == "-"
    done = 0 if to_stdout or force else resumable(output_path, records)
    if done and not quiet:
        err(f"[dim]resuming: {done} of {len(records)} records already in {output_path}[/dim]")
    todo = records[done:]
    from .progress import progress_bar

    written = 0
    with _opened(output_path, append=bool(done)) as out, progress_bar(label, quiet, transient=False) as bar:
        bar(done, len(records))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for record, added in zip(chunk, process(chunk), strict=True):
                out.write(json.dumps({**record, **added}, ensure_ascii=False) + "\n")
                written += 1
            out.flush()
            if not to_stdout:
                os.fsync(out.fileno())
            bar(len(chunk))
    return written


def resumable(output_path: Path, records: list[dict]) -> int:
    """How many records an earlier run of the same input already wrote to ``output_path``.

    An existing file that is not such an output (other records, or not JSONL at all) is refused, never
    overwritten: ``--force`` replaces it.
    """
    if not output_path.exists():
        return 0
    if output_path.is_dir():
        raise NlpsuiteError(f"--output {output_path} is a folder")
    *complete, _torn = output_path.read_bytes().split(b"\n")  # a torn last line is cut off on resume
    try:
        rows = [json.loads(line) for line in complete]
    except ValueError:
        rows = None
    ours = rows is not None and len(rows) <= len(records)
    pairs = zip(rows or [], records, strict=False)  # the output may hold fewer lines than the input
    if not ours or not all(isinstance(r, dict) and r.items() >= rec.items() for r, rec in pairs):
        raise NlpsuiteError(f"{output_path} exists and is not an earlier output of this input: --force overwrites it")
    return completed_lines(output_path)


@contextlib.contextmanager
def _opened(path: Path, append: bool):
    if str(path) == "-":
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as out:
        yield out
