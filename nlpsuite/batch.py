"""Batch mode of every task, shared by every front-end that runs one (the CLI, Ray, the HTTP batch API): records
in (JSONL/CSV/TSV/Parquet, read as a stream), one JSONL line out per record, in input order.

Each output line is the input record plus the fields the task adds, and an added field never replaces an input
field: a record that already has one of them is refused before any work, naming the fields and the way out,
``--output-prefix P`` (``output_prefix`` over HTTP), which names the added fields ``P<field>``. The text is the
record's ``text`` field, or the one ``--text-column`` names. With ``--on-error skip`` a record the task
refuses (empty text, too long...) is written with an ``error`` field instead of stopping the run.

One run writes an output at a time (a lock on the file that dies with its process); each batch is made
durable as it is written, so an interrupted run keeps its work and the same command resumes after the last
complete line. An existing output that is not an earlier output of the same input is refused, never
overwritten, unless ``force``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import Interrupted, NlpsuiteError
from .fsutil import exclusive
from .records import Progress, appender, iter_records, resumable, text_problem

ON_ERROR = ("stop", "skip")
ERROR_FIELD = "error"  # what a skipped record says, under the output prefix like every added field

Process = Callable[[list[dict]], list[dict]]  # records -> fields to add, one dict per record


@dataclass(frozen=True)
class Layout:
    """How records meet a task: the column holding the text, the prefix of the fields it adds, and what a
    record the task refuses does (``stop`` the run, or ``skip`` it, written with an error field)."""

    text_column: str = "text"
    prefix: str = ""
    on_error: str = "stop"

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise NlpsuiteError(f"--on-error must be one of: {', '.join(ON_ERROR)}")
        if not isinstance(self.text_column, str) or not self.text_column:
            raise NlpsuiteError("--text-column must name a column")
        if not isinstance(self.prefix, str):
            raise NlpsuiteError("--output-prefix must be text")

    @property
    def error_field(self) -> str:
        return self.prefix + ERROR_FIELD

    def columns(self) -> dict:
        """What the input's records must have (``iter_records``' keywords): the text column, which a record may
        lack when skipping, but never the header of a file that has one."""
        stop = self.on_error == "stop"
        hint = "" if self.text_column != "text" else "; --text-column NAME reads the text from another column"
        column = (self.text_column,)
        return {"columns": column if stop else (), "headed": () if stop else column, "hint": hint}

    def added(self, names: Iterable[str]) -> list[str]:
        """The names of the fields a task adds (``names``: as the task calls them), as records get them."""
        return [self.prefix + n for n in names] + ([self.error_field] if self.on_error == "skip" else [])


def output_names(task) -> list[str]:
    """The fields a task adds to each batch record, before any prefix."""
    return [task.batch_names.get(k, k) for k in task.output]


def check_record(path, line: int, record: dict, added: list[str], layout: Layout) -> str | None:
    """Refuse a record that an added field would overwrite (always: data is never lost), or whose text is not
    text (unless skipping: then that is returned, for the record's error field)."""
    clash = [name for name in added if name in record]
    if clash:
        names = ", ".join(repr(n) for n in clash)
        example = ", ".join("pred_" + n.removeprefix(layout.prefix) for n in added)
        raise NlpsuiteError(
            f"{path}:{line}: the record already has {names}, which batch output would overwrite: add --output-prefix "
            f"to rename what the task adds (--output-prefix pred_ writes {example})"
        )
    problem = text_problem(record, layout.text_column)
    if problem and layout.on_error == "stop":
        raise NlpsuiteError(f"{path}:{line}: {problem}")
    return problem


def run_records(task, suite, records: list[dict], shared: dict, options: dict, layout: Layout) -> list[dict]:
    """The fields ``task`` adds to each of ``records`` (named as the layout says). Skipping, a record the task
    refuses gets an error field instead, and the others still run together."""
    out: list[dict | None] = [None] * len(records)
    todo = []
    for i, record in enumerate(records):
        problem = text_problem(record, layout.text_column)
        if problem:
            if layout.on_error == "stop":
                raise NlpsuiteError(problem)
            out[i] = {layout.error_field: problem}
        else:
            todo.append(i)
    try:
        done = _run(task, suite, [records[i] for i in todo], shared, options, layout)
    except NlpsuiteError:
        if layout.on_error == "stop":
            raise
        # one of them is refused: run them one at a time to find which (a record alone gets its error field)
        done = [fields for i in todo for fields in _run(task, suite, [records[i]], shared, options, layout)]
    for i, fields in zip(todo, done, strict=True):
        out[i] = fields
    return out


def _run(task, suite, records: list[dict], shared: dict, options: dict, layout: Layout) -> list[dict]:
    if not records:
        return []
    try:
        results = task.run(suite, task.batch_inputs(records, shared, layout.text_column), **options)
    except NlpsuiteError as exc:
        if layout.on_error == "skip" and len(records) == 1:
            return [{layout.error_field: str(exc)}]
        raise
    if any(r.get("finish_reason") == "interrupted" for r in results):
        raise KeyboardInterrupt  # a record cut short is never written: a resume redoes it
    return [{layout.prefix + k: v for k, v in task.batch_fields(r).items()} for r in results]


@dataclass
class Summary:
    total: int = 0  # records in the input
    resumed: int = 0  # already in the output from an earlier run
    written: int = 0  # by this run
    skipped: int = 0  # by this run, written with an error field


def scan(input_path: Path, added: list[str], layout: Layout) -> int:
    """Check every record of the input (a stream: nothing is kept) before any work; returns how many there are."""
    total = 0
    for line, record in iter_records(input_path, **layout.columns()):
        check_record(input_path, line, record, added, layout)
        total += 1
    return total


def run(
    input_path: Path,
    output_path: Path,
    process: Process,
    added: list[str],
    layout: Layout = Layout(),
    batch_size: int = 8,
    force: bool = False,
    wait: bool = False,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> Summary:
    """Run ``process`` on every record of ``input_path`` not yet in ``output_path`` (``-``: stdout), a batch at a
    time; ``added`` names the fields it adds (checked against every record first). ``notice`` hears what the
    user should know (a resume)."""
    progress = progress or (lambda _n=0, total=None: None)
    summary = Summary()
    with writer(output_path, wait):
        try:
            summary.total = scan(input_path, added, layout)
            fresh = force or str(output_path) == "-"
            summary.resumed = 0 if fresh else resumable(output_path, _records(input_path))
            if summary.resumed and notice:
                notice(f"resuming: {summary.resumed} of {summary.total} records already in {output_path}")
            progress(summary.resumed, summary.total)
            todo = itertools.islice(_records(input_path), summary.resumed, None)
            with appender(output_path, fresh=fresh) as append:
                for chunk in _batches(todo, batch_size):
                    fields = process(chunk)
                    append({**record, **added} for record, added in zip(chunk, fields, strict=True))
                    summary.written += len(chunk)
                    summary.skipped += sum(layout.error_field in f for f in fields) if layout.on_error == "skip" else 0
                    progress(len(chunk))
        except KeyboardInterrupt as exc:
            if isinstance(exc, Interrupted):
                raise
            raise Interrupted(interrupted(output_path, summary)) from None
    return summary


def interrupted(output_path: Path, summary: Summary) -> str:
    done = summary.resumed + summary.written
    if str(output_path) == "-":
        return f"{done} of {summary.total} records were written; run the same command to do them all again"
    return f"{done} of {summary.total} records are in {output_path}; run the same command to resume"


@contextlib.contextmanager
def writer(output_path: Path, wait: bool):
    """Be the one run writing ``output_path`` (stdout, ``-``, needs no lock); a file this created and left empty
    is removed again."""
    if str(output_path) == "-":
        yield
        return
    if output_path.is_dir():
        raise NlpsuiteError(f"--output {output_path} is a folder")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(output_path, str(output_path), wait) as created:
        try:
            yield
        except BaseException:
            with contextlib.suppress(OSError):
                if created and output_path.stat().st_size == 0:
                    output_path.unlink()
            raise


def _records(path: Path) -> Iterator[dict]:
    return (record for _, record in iter_records(path))


def _batches(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while chunk := list(itertools.islice(records, size)):
        yield chunk
