"""Batch mode shared by commands: JSONL/TSV records in, JSONL out, with progress and resume.

Each output line is the input record plus the fields the command adds. Lines are flushed as they are
written, so an interrupted run keeps its work; running the same command again resumes after the
last complete line (a half-written last line is cut off first).
"""

from __future__ import annotations

import csv
import json
import os
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
) -> int:
    """Process every record not yet in ``output_path``; returns how many were written this run."""
    records = read_records(input_path)
    done = completed_lines(output_path)
    if done > len(records):
        raise NlpsuiteError(f"{output_path} has more lines ({done}) than {input_path} has records")
    todo = records[done:]
    if done and not quiet:
        err(f"[dim]resuming: {done} of {len(records)} records already in {output_path}[/dim]")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    written = 0
    with (
        open(output_path, "a", encoding="utf-8") as out,
        Progress(*columns, disable=quiet, transient=False, redirect_stdout=False) as progress,
    ):
        task = progress.add_task(label, total=len(records), completed=done)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for record, added in zip(chunk, process(chunk), strict=True):
                out.write(json.dumps({**record, **added}, ensure_ascii=False) + "\n")
                written += 1
            out.flush()
            os.fsync(out.fileno())
            progress.update(task, advance=len(chunk))
    return written
