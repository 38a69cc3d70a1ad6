"""Batch mode in the CLI: nlpsuite.batch's runner with a progress bar (or lines) on stderr."""

from __future__ import annotations

from pathlib import Path

from ..batch import Layout, Process, Summary, run
from .options import err
from .progress import progress_bar


def run_batch(
    input_path: Path,
    output_path: Path,
    process: Process,
    added: list[str] = (),
    layout: Layout = Layout(),
    batch_size: int = 8,
    quiet: bool = False,
    label: str = "processing",
    force: bool = False,
    wait: bool = False,
) -> Summary:
    """Process every record not yet in ``output_path`` (``-``: stdout); see nlpsuite.batch.run."""
    notice = None if quiet else (lambda message: err(f"[dim]{message}[/dim]"))
    with progress_bar(label, quiet, transient=False) as bar:
        return run(input_path, output_path, process, list(added), layout, batch_size, force, wait, bar, notice)
