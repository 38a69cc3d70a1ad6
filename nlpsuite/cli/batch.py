"""Batch mode of every task command: JSONL/CSV/TSV records in, JSONL out, with progress and resume.

Each output line is the input record plus the fields the task adds. Each batch is made durable as it is
written, so an interrupted run keeps its work; running the same command again resumes after the last
complete line (a half-written last line is cut off first). An existing ``--output`` that is not an
earlier output of the same input is refused, never overwritten, unless ``--force``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..records import appender, read_records, resumable, text_field
from .options import err
from .progress import progress_bar

Process = Callable[[list[dict]], list[dict]]  # records -> fields to add, one dict per record


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
    rows = read_records(input_path, ("text",))
    for line, record in rows:
        text_field(input_path, line, record, "text")
    records = [record for _, record in rows]
    fresh = force or str(output_path) == "-"
    done = 0 if fresh else resumable(output_path, records)
    if done and not quiet:
        err(f"[dim]resuming: {done} of {len(records)} records already in {output_path}[/dim]")
    todo = records[done:]
    written = 0
    with appender(output_path, fresh=fresh) as append, progress_bar(label, quiet, transient=False) as bar:
        bar(done, len(records))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            append({**record, **added} for record, added in zip(chunk, process(chunk), strict=True))
            written += len(chunk)
            bar(len(chunk))
    return written
