"""Record files: every format read the same way, one-line errors that point at the spot, and JSONL written so
that any reader (ours, or a line-based tool) gets each record back whole."""

from __future__ import annotations

import json

import pytest

from nlpsuite import records
from nlpsuite.errors import NlpsuiteError
from nlpsuite.records import completed_lines, completed_records, dumps, read_records


def write(path, text: str):
    path.write_text(text, encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path, suffix):
    text = {".csv": "text,label\nhi,x\n", ".tsv": "text\tlabel\nhi\tx\n", ".jsonl": '{"text": "hi", "label": "x"}\n'}
    path = write(tmp_path / f"d{suffix}", "\ufeff" + text[suffix])
    assert read_records(path, ("text", "label")) == [({".jsonl": 1}.get(suffix, 2), {"text": "hi", "label": "x"})]


def test_a_quoted_csv_field_may_span_lines_and_each_record_knows_its_first_line(tmp_path):
    path = write(tmp_path / "d.csv", 'text,label\r\n"two\nlines, one field",pos\r\n\r\nplain,neg\r\n')
    assert read_records(path, ("text",)) == [
        (2, {"text": "two\nlines, one field", "label": "pos"}),
        (5, {"text": "plain", "label": "neg"}),
    ]


def test_tsv_has_no_quoting(tmp_path):
    path = write(tmp_path / "d.tsv", 'query\trelevant\n"quoted" words\td1, d2 d3\n')
    ((line, row),) = read_records(path, ("query", "relevant"))
    assert row["query"] == '"quoted" words'
    assert records.judgements_field(path, line, row["relevant"]) == {"d1": 1.0, "d2": 1.0, "d3": 1.0}


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b"])
def test_jsonl_splits_on_newlines_only(tmp_path, char):
    record = {"text": f"one{char}record", "n": 1}
    raw = json.dumps(record, ensure_ascii=False).replace("\\u001c", "\x1c").replace("\\u000b", "\x0b")
    if char in ("\u2028", "\u2029", "\x85"):
        assert char in raw  # valid JSON holds these raw, and ensure_ascii=False writes them so
    path = write(tmp_path / "d.jsonl", raw + "\r\n" + json.dumps({"text": "next"}) + "\n")
    if char in ("\x1c", "\x0b"):  # control characters must be escaped in JSON: the line is invalid, but one line
        with pytest.raises(NlpsuiteError, match=r"d\.jsonl:1:\d+: not valid JSON \(Invalid control character"):
            read_records(path)
        return
    assert read_records(path) == [(1, record), (2, {"text": "next"})]


@pytest.mark.parametrize("text", ["line\u2028separator", "para\u2029graph", "next\x85line", "tab\tnew\nline é 😀"])
def test_a_record_written_by_dumps_reads_back_equal_and_stays_on_one_line(tmp_path, text):
    record = {"text": text, "scores": [0.5, 1e-300], "nested": {"k": text}}
    line = dumps(record)
    assert len(line.splitlines()) == 1
    assert ("é" in line) == ("é" in text)  # readable UTF-8, not \u-escaped
    path = write(tmp_path / "out.jsonl", line + "\n")
    assert read_records(path) == [(1, record)]
    assert completed_records(path) == [record]


def test_dumps_refuses_nan_and_infinity_with_one_line(tmp_path):
    with pytest.raises(NlpsuiteError, match=r"^cannot write record\['scores'\]\[1\] as JSON: it is NaN or infinite$"):
        dumps({"text": "a", "scores": [0.5, float("nan")]})
    with pytest.raises(NlpsuiteError, match=r"record\['p'\] as JSON"):
        dumps({"p": float("-inf")})


def test_an_appended_batch_is_all_or_nothing(tmp_path):
    out = tmp_path / "sub" / "out.jsonl"
    with records.appender(out) as append:
        append([{"a": 1}, {"b": "x\u2028y"}])
        with pytest.raises(
            NlpsuiteError, match=r"out\.jsonl: cannot write record\['d'\] as JSON: it is NaN or infinite$"
        ):
            append([{"c": 1}, {"d": float("nan")}])
    assert out.read_text(encoding="utf-8") == '{"a": 1}\n{"b": "x\\u2028y"}\n'


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "d.jsonl",
            '{"text": "a"}\n{"text": "b" "label": 1}\n',
            r"d\.jsonl:2:14: not valid JSON \(Expecting ',' delimiter\)$",
        ),
        ("d.jsonl", '{"text": "a"}\n\n\n["text"]\n', r"d\.jsonl:4: not a JSON object$"),
        ("d.jsonl", '{"text": "a", "p": NaN}\n', r"d\.jsonl:1: not valid JSON \(NaN is not a finite number\)$"),
        ("d.jsonl", '{"text": "a", "p": -1e999}\n', r"d\.jsonl:1: not valid JSON \(-1e999 is not a finite number\)$"),
        ("d.jsonl", '{"text": "a"}\n{"label": "b"}\n', r"d\.jsonl:2: missing column 'text'$"),
        ("d.jsonl", "\n \n", r"d\.jsonl holds no records$"),
        ("d.csv", "", r"d\.csv holds no records$"),
        ("d.csv", "text,label\n", r"d\.csv holds no records$"),
        ("d.csv", "a,b\n1,2\n", r"d\.csv has no column 'text' \(its columns: a, b\)$"),
        ("d.csv", 'text,label\nok,x\n"open,x\nmore,y\n', r"d\.csv:3: not valid CSV \(a quoted field never ends\)$"),
        ("d.csv", 'text,label\n"a"b,x\n', r"d\.csv:2: not valid CSV \(.*\)$"),
        ("d.tsv", "text\tlabel\nok\tx\ta\ttab\n", r"d\.tsv:2: 4 fields, but the header names 2$"),
        ("d.tsv", "text\ttext\nok\tx\n", r"d\.tsv has the column 'text' more than once$"),
        ("d.txt", "text\n", r"d\.txt: expected a \.jsonl, \.csv, \.tsv or \.parquet file$"),
    ],
)
def test_errors_are_one_line_naming_file_line_and_column(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    with pytest.raises(NlpsuiteError, match=message) as caught:
        read_records(path, ("text",))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def test_bytes_that_are_not_utf8_are_one_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text\ncaf\xe9\n")
    with pytest.raises(NlpsuiteError, match=r"d\.csv is not UTF-8 text$"):
        read_records(path)


def test_field_checks_name_the_line(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n  ,x\nfoo\n")
    (first, row1), (second, row2) = read_records(path, ("text", "label"))
    with pytest.raises(NlpsuiteError, match=r"d\.csv:2: 'text' is empty$"):
        records.text_field(path, first, row1, "text")
    with pytest.raises(NlpsuiteError, match=r"d\.csv:3: no value for 'label'$"):  # a short row
        records.label_field(path, second, row2, "label")
    assert records.label_field(path, 1, {"label": 3}, "label") == "3"
    assert records.label_field(path, 1, {"label": " pos "}, "label") == "pos"


def test_documents_need_unique_ids(tmp_path):
    path = write(tmp_path / "docs.jsonl", '{"id": 1, "text": "a\u2028b"}\n{"id": "d", "text": ""}\n')
    with pytest.raises(NlpsuiteError, match=r"docs\.jsonl:2: 'text' is empty$"):
        records.documents(path)
    assert records.documents(path, allow_empty=True) == {"1": "a\u2028b", "d": ""}
    write(path, '{"id": 1, "text": "a"}\n{"id": "1", "text": "b"}\n')
    with pytest.raises(NlpsuiteError, match=r"docs\.jsonl:2: duplicate id '1'$"):
        records.documents(path)


def test_a_torn_last_line_is_truncated_away(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"a": 1}\n\n{"b": "\xe2\x80\xa8"}\r\n{"c": ')  # a raw U+2028 from an older version
    assert completed_lines(out) == 2
    assert out.read_bytes() == b'{"a": 1}\n\n{"b": "\xe2\x80\xa8"}\r\n'
    assert completed_lines(out) == 2 and completed_lines(tmp_path / "missing.jsonl") == 0


def test_a_file_that_is_no_earlier_output_is_left_whole(tmp_path):
    out = write(tmp_path / "notes.jsonl", 'not json\n{"a": 1}\n{"torn')
    with pytest.raises(NlpsuiteError, match=r"notes\.jsonl:1: not a JSON record; is this the output of an earlier"):
        completed_lines(out)
    assert out.read_text() == 'not json\n{"a": 1}\n{"torn'


class _ScriptedProbe:
    """Stands in for the suite's probe head: keeps what `heads train` read instead of training."""

    def __init__(self, seen: dict) -> None:
        self.seen = seen

    def head(self, kind):
        return self

    def train(self, name, texts, labels, progress=None):
        self.seen.update(texts=texts, labels=labels)
        return {"labels": sorted(set(labels)), "examples": len(texts)}


def test_heads_train_reads_a_quoted_multiline_csv_field(cli, tmp_path, monkeypatch):
    from nlpsuite.cli import options

    seen: dict = {}
    monkeypatch.setattr(options, "open_suite", lambda *args, **kwargs: _ScriptedProbe(seen))
    data = write(tmp_path / "d.csv", '\ufeffbody,kind\r\n"first line\r\nsecond line",a\r\nplain,7\r\n')
    result = cli(["heads", "train", "kinds", str(data), "--text-column", "body", "--label-column", "kind", "--json"])
    assert result.code == 0, result.err
    assert seen == {"texts": ["first line\r\nsecond line", "plain"], "labels": ["a", "7"]}
    write(data, 'body,kind\n"two\nlines",a\nthird, \n')
    failed = cli(["heads", "train", "kinds", str(data), "--text-column", "body", "--label-column", "kind"])
    assert failed.code == 1 and failed.err.strip() == f"error: {data}:4: 'kind' is empty"


def write_parquet(path, columns: dict):
    pa = pytest.importorskip("pyarrow", reason="Parquet is read with pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def test_a_parquet_file_is_read_as_json_would_hold_it(tmp_path):
    import datetime
    import decimal

    path = write_parquet(
        tmp_path / "in.parquet",
        {
            "text": ["naïve café", "東京", None],
            "id": [1, 2, 3],
            "day": [datetime.date(2026, 11, 29)] * 3,
            "price": [decimal.Decimal("1.10")] * 3,
            "meta": [{"a": 1, "b": [1.5, 2.5]}] * 3,
        },
    )
    rows = read_records(path, ("text",))
    assert [line for line, _ in rows] == [1, 2, 3]  # a Parquet file's "line" is its row
    assert rows[0][1] == {"text": "naïve café", "id": 1, "day": "2026-11-29", "price": "1.10",
                          "meta": {"a": 1, "b": [1.5, 2.5]}}  # fmt: skip
    assert json.loads(dumps(rows[1][1])) == rows[1][1]  # written and read back unchanged: resume compares them
    with pytest.raises(NlpsuiteError, match=rf"^{path}:3: no value for 'text'$"):
        records.text_field(path, 3, rows[2][1], "text")


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"body": ["x"]}, " has no column 'text' (its columns: body)"),
        ({"text": ["x"], "blob": [b"\x00"]}, ": the column 'blob' holds bytes, which a JSON record cannot"),
        ({"text": []}, " holds no records"),
    ],
)
def test_parquet_errors_are_one_line(tmp_path, columns, message):
    path = write_parquet(tmp_path / "in.parquet", columns)
    with pytest.raises(NlpsuiteError) as caught:
        read_records(path, ("text",))
    assert str(caught.value) == f"{path}{message}"
    garbage = write(tmp_path / "bad.parquet", "text\nnot parquet\n")
    with pytest.raises(NlpsuiteError, match=r"bad\.parquet: not a readable Parquet file \(.+\)$"):
        read_records(garbage, ("text",))


def test_without_pyarrow_a_parquet_file_is_one_line_that_says_what_to_install(tmp_path, monkeypatch):
    import sys

    path = write(tmp_path / "in.parquet", "whatever")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(NlpsuiteError, match=rf"^{path}: reading Parquet needs pyarrow \(pip install pyarrow\)$"):
        read_records(path, ("text",))
