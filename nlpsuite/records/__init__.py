"""Record files, read and written in one place: .jsonl, .csv, .tsv and .parquet in (as a stream), JSONL out."""

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

__all__ = [
    "SUFFIXES",
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
