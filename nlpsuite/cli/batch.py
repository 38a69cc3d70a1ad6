"""Batch mode shared by commands: JSONL/CSV/TSV records in, JSONL out, with progress and resume.

Each output line is the input record plus the fields the command adds. Each batch is made durable as it is
written, so an interrupted run keeps its work; running the same command again resumes after the last
complete line (a half-written last line is cut off first).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import NlpsuiteError
from ..records import appender, completed_lines, read_records, text_field
from .options import err

Process = Callable[[list[dict]], list[dict]]  # records -> fields to add, one dict per record


def run_batch(
    input_path: Path,
    output_path: Path,
    process: Process,
    batch_size: int = 8,
    quiet: bool = False,
    label: str = "processing",
) -> int:
    """Process every record not yet in ``output_path``; returns how many were written this run."""
    rows = read_records(input_path, ("text",))
    for line, record in rows:
        text_field(input_path, line, record, "text")
    records = [record for _, record in rows]
    done = completed_lines(output_path)
    if done > len(records):
        raise NlpsuiteError(f"{output_path} has more lines ({done}) than {input_path} has records")
    todo = records[done:]
    if done and not quiet:
        err(f"[dim]resuming: {done} of {len(records)} records already in {output_path}[/dim]")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    written = 0
    with (
        appender(output_path) as append,
        Progress(*columns, disable=quiet, transient=False, redirect_stdout=False) as progress,
    ):
        task = progress.add_task(label, total=len(records), completed=done)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            append({**record, **added} for record, added in zip(chunk, process(chunk), strict=True))
            written += len(chunk)
            progress.update(task, advance=len(chunk))
    return written
