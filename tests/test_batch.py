"""Batch mode: record formats, clear errors, and nothing lost or duplicated across an interruption."""

from __future__ import annotations

import json

import pytest

from nlpsuite.cli.batch import run_batch
from nlpsuite.errors import NlpsuiteError
from nlpsuite.records import completed_lines


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def upper(records):
    return [{"upper": r["text"].upper()} for r in records]


def test_jsonl_csv_and_tsv_records(tmp_path):
    sources = {
        "in.jsonl": ['{"text": "a\u2028b", "id": 1}', "", '{"text": "c"}'],
        "in.csv": ["\ufeffid,text", '1,"a\u2028b"', "", "2,c"],
        "in.tsv": ["\ufeffid\ttext", "1\ta\u2028b", "2\tc"],
    }
    for name, lines in sources.items():
        out = tmp_path / f"{name}.out.jsonl"
        assert run_batch(write(tmp_path / name, lines), out, upper, quiet=True).written == 2
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]  # line tools see 2 lines
        assert [(r["text"], r["upper"]) for r in rows] == [("a\u2028b", "A\u2028B"), ("c", "C")], name


def test_a_quoted_csv_field_spans_lines_in_batch_mode(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text\r\n1,"two\nlines"\r\n2,one\r\n', encoding="utf-8", newline="")
    out = tmp_path / "out.jsonl"
    run_batch(src, out, upper, quiet=True)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"id": "1", "text": "two\nlines", "upper": "TWO\nLINES"},
        {"id": "2", "text": "one", "upper": "ONE"},
    ]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"text": "a"}', "not json"], r"in\.jsonl:2:1: not valid JSON \(Expecting value\)$"),
        (
            ['{"txt": "a"}'],
            r"in\.jsonl:1: missing column 'text'; --text-column NAME reads the text from another column$",
        ),
        (['{"text": "  "}'], r"in\.jsonl:1: 'text' is empty$"),
        (['{"text": "\\u200b\\u200b"}'], r"in\.jsonl:1: 'text' is empty$"),  # zero-width characters only
        (['{"text": 3}'], r"in\.jsonl:1: 'text' must be a string, not int$"),
        ([], "holds no records$"),
    ],
)
def test_bad_records_name_the_line(tmp_path, lines, message):
    out = tmp_path / "out.jsonl"
    with pytest.raises(NlpsuiteError, match=message):
        run_batch(write(tmp_path / "in.jsonl", lines), out, upper, quiet=True)
    assert not out.exists()  # checked before anything is written


def test_a_nan_result_stops_the_run_without_a_bad_line(tmp_path):
    src = write(tmp_path / "in.jsonl", [json.dumps({"text": f"t{i}"}) for i in range(4)])
    out = tmp_path / "out.jsonl"
    with pytest.raises(NlpsuiteError, match=r"out\.jsonl: cannot write record\['score'\] as JSON: it is NaN or inf"):
        nan_at_t2 = lambda rs: [{"score": float("nan") if r["text"] == "t2" else 1.0} for r in rs]  # noqa: E731
        run_batch(src, out, nan_at_t2, batch_size=2, quiet=True)
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["t0", "t1"]


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    src = write(tmp_path / "in.jsonl", [json.dumps({"text": f"t{i}"}) for i in range(7)])
    out = tmp_path / "out.jsonl"
    calls = []

    def flaky(records):
        calls.append(len(records))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [{"upper": r["text"].upper()} for r in records]

    with pytest.raises(
        KeyboardInterrupt, match=r"^3 of 7 records are in .*out\.jsonl; run the same command to resume$"
    ):
        run_batch(src, out, flaky, batch_size=3, quiet=True)
    assert completed_lines(out) == 3
    assert run_batch(src, out, upper, batch_size=3, quiet=True).written == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["upper"] for r in rows] == [f"T{i}" for i in range(7)]


@pytest.mark.shared_cache
def test_generate_batch_mode(cli, tiny_llama, tmp_path):
    src = write(tmp_path / "prompts.jsonl", [json.dumps({"text": t, "id": i}) for i, t in enumerate(["a b", "c"])])
    out = tmp_path / "out.jsonl"
    tiny = ["--model", str(tiny_llama), "--device", "cpu", "-n", "3", "--ignore-eos", "--quiet"]
    result = cli(["generate", "--input", str(src), "--output", str(out), *tiny])
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1] and all(r["usage"]["completion_tokens"] == 3 for r in rows)
    alone = json.loads(cli(["generate", "a b", "--json", *tiny]).out)["text"]
    assert rows[0]["completion"] == alone  # batched with another prompt, same greedy text
    assert (
        cli(["generate", "--input", str(src), *tiny]).err.strip() == "error: batch mode needs both --input and --output"
    )


@pytest.mark.shared_cache
def test_ctrl_c_in_batch_generation_exits_130_and_writes_no_record_cut_short(cli, tiny_llama, tmp_path, monkeypatch):
    from nlpsuite.runtime.backbone import Backbone

    src = write(tmp_path / "prompts.jsonl", [json.dumps({"text": t}) for t in ("a b", "c", "d e", "f")])
    out = tmp_path / "out.jsonl"
    args = ["generate", "--input", str(src), "--output", str(out), "-n", "4", "--ignore-eos", "--batch-size", "2"]
    args += ["--model", str(tiny_llama), "--quiet"]
    real, calls = Backbone.forward, []

    def interrupted(self, *a, **k):  # Ctrl-C on the second decode step of the second batch
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Backbone, "forward", interrupted)
    assert cli(args).code == 130
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["finish_reason"] == "length" for r in rows)  # the first batch, whole
    monkeypatch.setattr(Backbone, "forward", real)
    assert cli(args).code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["a b", "c", "d e", "f"] and all(r["finish_reason"] == "length" for r in rows)


def test_a_parquet_input_runs_and_resumes_as_jsonl_does(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet is read with pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(7)), "text": [f"t{i}" for i in range(7)]}), src)
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 0, "text": "t0", "upper": "T0"}\n{"id": 1, "te', encoding="utf-8")  # interrupted
    assert run_batch(src, out, upper, batch_size=3, quiet=True).written == 6
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"id": i, "text": f"t{i}", "upper": f"T{i}"} for i in range(7)]


def test_a_parquet_output_is_refused_before_any_model_loads(cli, tmp_path):
    src = write(tmp_path / "in.jsonl", ['{"text": "fine"}'])
    got = cli(["sentiment", "--input", str(src), "--output", str(tmp_path / "out.parquet"), "--model", "nowhere"])
    assert got.code == 1
    assert (
        got.err.strip() == f"error: --output {tmp_path / 'out.parquet'}: batch mode writes JSONL; name the file .jsonl"
    )


def test_a_url_input_without_ray_says_to_add_it(cli, tmp_path):
    got = cli(["sentiment", "--input", "s3://bucket/in.jsonl", "--output", str(tmp_path / "o.jsonl"), "--model", "no"])
    assert got.code == 1
    assert (
        got.err.strip()
        == "error: --input s3://bucket/in.jsonl: a URL is read on a Ray cluster (add --ray); here, give a file"
    )
