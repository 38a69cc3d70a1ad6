"""The task commands' contracts on every built-in task (tiny random model): JSON fields, batch mode, bad input,
the REPL's /task."""

from __future__ import annotations

import json

import pytest
from plugin_cases import CONTEXT

pytestmark = pytest.mark.shared_cache


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        (["sentiment", "nice"], {"label", "score", "scores"}),
        (["classify", "nice", "--labels", "a,b"], {"label", "score", "scores"}),
        (["ask", "Who built it?", "--context", CONTEXT], {"answer", "score", "start", "end"}),
        (["translate", "Hello there.", "--to", "fr"], {"translation"}),
        (["summarize", "A short text to sum up.", "--max-words", "5"], {"summary"}),
    ],
)
def test_json_fields(cli, model_args, args, fields):
    got = cli([*args, "--json", *model_args])
    assert got.code == 0, got.err
    assert fields <= set(json.loads(got.out))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["sentiment"], "label"),
        (["classify", "--labels", "a,b"], "scores"),
        (["translate", "--to", "de"], "translation"),
        (["summarize"], "summary"),
    ],
)
def test_batch_modes_add_their_field(cli, model_args, tmp_path, args, field):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"text": "first one.", "id": 1}\n{"text": "second one.", "id": 2}\n')
    got = cli([*args, "--input", str(src), "--output", str(out), *model_args])
    assert got.code == 0, got.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == [1, 2] and all(field in r for r in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sentiment", ""], "empty text"),
        (["classify", "x", "--labels", "one"], "at least two labels"),
        (["classify", "x", "--labels", "a,b,a"], "distinct"),
        (["classify", "x"], "--labels"),
        (["translate", "hello", "--to", "klingon"], "unknown language"),
        (["translate", "hello"], "--to"),
        (["ask", "who?"], "--context"),
        (["ask", "who?", "--context", "missing-file.txt"], "no such file"),
        (["summarize", "text", "--max-words", "0"], "--max-words"),
    ],
)
def test_bad_input_is_one_line(cli, model_args, args, message):
    got = cli([*args, *model_args])
    assert got.code == 1
    assert message in got.err and len(got.err.strip().splitlines()) == 1


def test_binary_file_is_refused(cli, model_args, tmp_path):
    binary = tmp_path / "x.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for args in (["sentiment", "--file", str(binary)], ["summarize", "--file", str(binary)]):
        got = cli([*args, *model_args])
        assert got.code == 1 and "not UTF-8" in got.err


def test_nul_bytes_in_a_text_are_text(cli, model_args, tmp_path):
    """Fault matrix B11: NUL is valid UTF-8; a file holding some is scored like any text."""
    path = tmp_path / "nul.txt"
    path.write_text("A lovely\0 film\0 with a great cast.", encoding="utf-8")
    got = cli(["sentiment", "--file", str(path), "--json", *model_args])
    assert got.code == 0, got.err
    assert json.loads(got.out)["label"] in ("positive", "negative", "neutral")


def test_one_megabyte_text_for_a_label_task_is_refused_plainly(cli, model_args, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 210_000)
    got = cli(["sentiment", "--file", str(big), *model_args])
    assert got.code == 1 and "split it" in got.err and len(got.err.strip().splitlines()) == 1


def test_plugins_register_every_task(suite):
    assert {"translate", "summarize", "ask", "sentiment", "classify"} <= set(suite.registry.tasks)
    assert {"generation", "scoring", "embedding", "probe", "span"} <= set(suite.registry.heads)


def test_repl_task_options_need_values(suite):
    import io

    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    out = io.StringIO()
    repl = ChatRepl(suite, SamplingParams(max_tokens=8), stdin=io.StringIO("/task translate --to\nhello\n"), stdout=out)
    repl.run()  # must not raise: the bad /task is refused, "hello" goes to chat
    assert repl.task is None
    repl = ChatRepl(
        suite,
        SamplingParams(max_tokens=8),
        json=True,
        stdin=io.StringIO("/task translate --to de\nHello.\n"),
        stdout=(out := io.StringIO()),
    )
    repl.run()
    assert "translation" in json.loads(out.getvalue().strip().splitlines()[-1])
