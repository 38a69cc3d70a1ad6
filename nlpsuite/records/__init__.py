"""Record files, read and written in one place: .jsonl, .csv, .tsv and .parquet in (as a stream), JSONL out."""

from collections.abc import Callable

from .fields import (
    answers_column,
    answers_field,
    doc_id,
    document_list,
    documents,
    judgements_column,
    judgements_field,
    label_field,
    reference_field,
    text_field,
    text_problem,
)
from .read import SUFFIXES, iter_records, parse_records, read_records
from .write import appender, completed_lines, completed_records, dumps, resumable

# How long work over records reports, everywhere (Suite.progress, the CLI's bar, batch on Ray, evaluation,
# calibration, index add): ``progress(n, total=None)`` says n more are done (0: none yet) and, when given, how many
# there are in all.
Progress = Callable[..., None]


def no_progress(n: int = 0, total: int | None = None) -> None:
    """The Progress of work nobody follows."""


__all__ = [
    "SUFFIXES",
    "Progress",
    "no_progress",
    "answers_column",
    "answers_field",
    "appender",
    "completed_lines",
    "completed_records",
    "doc_id",
    "document_list",
    "documents",
    "dumps",
    "iter_records",
    "judgements_column",
    "judgements_field",
    "label_field",
    "parse_records",
    "read_records",
    "reference_field",
    "resumable",
    "text_field",
    "text_problem",
]
