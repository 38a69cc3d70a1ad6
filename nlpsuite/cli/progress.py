"""The one progress bar: on stderr (stdout stays clean for results and --json), shown only in a terminal,
and only from the first report on, so that errors in the input come before any bar."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class Bar:
    """A records.Progress: ``bar(n, total=None)`` advances by ``n`` (and sets the total)."""

    def __init__(self, progress, label: str) -> None:
        self.progress, self.label, self.task = progress, label, None

    def _started(self):
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=None)
        return self.task

    def __call__(self, n: int = 0, total: int | None = None) -> None:
        task = self._started()
        if total is not None:
            self.progress.update(task, total=total or None)
        self.progress.advance(task, n)


class NoBar:
    """The bar when none is shown (--quiet, or stderr is not a terminal): rich is not even imported."""

    def __call__(self, n: int = 0, total: int | None = None) -> None:
        pass


@contextmanager
def progress_bar(label: str, quiet: bool = False, transient: bool = True) -> Iterator[Bar | NoBar]:
    if quiet or not sys.stderr.isatty():
        yield NoBar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
    progress = Progress(
        *columns, console=console, disable=not console.is_terminal, transient=transient, redirect_stdout=False
    )
    bar = Bar(progress, label)
    try:
        yield bar
    finally:
        if bar.task is not None:
            progress.stop()
