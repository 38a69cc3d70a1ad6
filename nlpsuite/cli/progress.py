"""The one progress bar: on stderr (stdout stays clean for results and --json). In a terminal, a bar from the
first report on, so that errors in the input come before any bar; elsewhere (a log, a pipe), plain lines at most
every few seconds, and one now and then while a long step reports nothing, so no long run is silent."""

from __future__ import annotations

import sys
import threading
import time
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


class Lines:
    """The bar when stderr is no terminal: ``label 120/2000 (6%) 0:00:35`` on a line of its own, once the run has
    lasted FIRST seconds, then at most every EVERY seconds while it advances, and every QUIET seconds while
    nothing advances (one long step: a model's prefill, a slice of passages)."""

    FIRST, EVERY, QUIET = 5.0, 5.0, 15.0

    def __init__(self, label: str) -> None:
        self.label, self.done, self.total = label, 0, None
        self.started = self.moved = time.monotonic()
        self.said: float | None = None  # when the last line was written
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.beat = threading.Thread(target=self._beat, name="nlpsuite-progress", daemon=True)
        self.beat.start()

    def __call__(self, n: int = 0, total: int | None = None) -> None:
        with self.lock:
            if total is not None:
                self.total = total or None
            self.done += n
            self._advanced()

    def _advanced(self) -> None:
        now = self.moved = time.monotonic()
        if now - self.started >= self.FIRST and (self.said is None or now - self.said >= self.EVERY):
            self._say(now)

    def _beat(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                now = time.monotonic()
                if now - max(self.moved, self.said or self.started) >= self.QUIET:
                    self._say(now, " still working")

    def _say(self, now: float, note: str = "") -> None:
        elapsed = int(now - self.started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        count = f"{self.done}/{self.total}{share} " if self.total else f"{self.done} " if self.done else ""
        print(f"{self.label} {count}{clock}{note}", file=sys.stderr, flush=True)
        self.said = now

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            if self.said is not None and self.moved > self.said:  # lines were written: the last one says the end
                self._say(time.monotonic())


@contextmanager
def progress_bar(label: str, quiet: bool = False, transient: bool = True) -> Iterator[Bar | NoBar | Lines]:
    if quiet:
        yield NoBar()
        return
    if not sys.stderr.isatty():
        lines = Lines(label)
        try:
            yield lines
        finally:
            lines.close()
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
