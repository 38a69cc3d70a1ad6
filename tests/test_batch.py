"""Batch mode: record formats, clear errors, and nothing lost or duplicated across an interruption."""

from __future__ import annotations

import json

import pytest

from nlpsuite.cli.batch import completed_lines, read_records, run_batch
from nlpsuite.errors import NlpsuiteError


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_jsonl_and_tsv_records(tmp_path):
    jsonl = write(tmp_path / "in.jsonl", ['{"text": "a", "id": 1}', "", '{"text": "b"}'])
    assert [r["text"] for r in read_records(jsonl)] == ["a", "b"]
    tsv = write(tmp_path / "in.tsv", ["id\ttext", "1\tfirst", "2\tsecond"])
    assert read_records(tsv) == [{"id": "1", "text": "first"}, {"id": "2", "text": "second"}]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"text": "a"}', "not json"], ":2: not a JSON object"),
        (['{"txt": "a"}'], ":1: each record needs"),
        (['{"text": "  "}'], ":1: each record needs"),
        ([], "holds no records"),
    ],
)
def test_bad_records_name_the_line(tmp_path, lines, message):
    with pytest.raises(NlpsuiteError, match=message):
        read_records(write(tmp_path / "in.jsonl", lines))


def test_a_torn_last_line_is_cut_off(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert completed_lines(out) == 2
    assert out.read_bytes() == b'{"a": 1}\n{"b": 2}\n'


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path):
    src = write(tmp_path / "in.jsonl", [json.dumps({"text": f"t{i}"}) for i in range(7)])
    out = tmp_path / "out.jsonl"
    calls = []

    def flaky(records):
        calls.append(len(records))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [{"upper": r["text"].upper()} for r in records]

    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, flaky, batch_size=3, quiet=True)
    assert completed_lines(out) == 3
    assert run_batch(src, out, lambda rs: [{"upper": r["text"].upper()} for r in rs], batch_size=3, quiet=True) == 4
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
