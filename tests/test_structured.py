"""Structured output on the tiny random model: `generate --schema/--regex/--grammar/--json-object` and
``Suite.generate(schema=...)`` hold whatever the model prefers to what was asked (jsonschema is the reference)."""

from __future__ import annotations

import json
import re

import pytest

from nlpsuite.errors import NlpsuiteError

pytestmark = pytest.mark.shared_cache
jsonschema = pytest.importorskip("jsonschema")

SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"enum": ["red", "green", "blue"]},
        "count": {"type": "integer", "minimum": 1, "maximum": 9},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "minItems": 1, "maxItems": 2},
    },
    "required": ["colour", "count", "tags"],
    "additionalProperties": False,
}
GBNF = 'root ::= "answer: " choice\nchoice ::= "yes" | "no" | [0-9] [0-9]?\n'


@pytest.fixture
def tiny(tiny_llama):
    return ["--model", str(tiny_llama), "--device", "cpu"]


@pytest.fixture(scope="module")
def suite(tiny_llama, tiny_cache):
    """One load for the module's Python-API tests (the converted model lives in the shared cache)."""
    from nlpsuite.api import Suite

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NLPSUITE_HOME", str(tiny_cache))
        loaded = Suite(model=str(tiny_llama), device="cpu")
        loaded.backbone  # noqa: B018 - loaded (converted once) while the shared cache is the home
        yield loaded


@pytest.mark.parametrize("sampling", [[], ["--temperature", "1.5", "--seed", "4"], ["--raw"]])
def test_generate_schema_json_carries_the_parsed_value(cli, tiny, tmp_path, sampling):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    for prompt in ("the quick brown fox", "東京 café"):
        got = cli(["generate", prompt, "--schema", str(schema), "-n", "80", "--json", *sampling, *tiny])
        assert got.code == 0, got.err
        result = json.loads(got.out)
        assert result["finish_reason"] == "stop" and json.loads(result["text"]) == result["parsed"]
        jsonschema.validate(result["parsed"], SCHEMA)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--regex", r"[a-c]{2,5}-[0-9]"], r"[a-c]{2,5}-[0-9]"),
        (["--grammar", 'start: "n=" /[0-9]{1,3}/'], r"n=[0-9]{1,3}"),
        (["--grammar", GBNF], r"answer: (yes|no|[0-9][0-9]?)"),
    ],
)
def test_generate_regex_and_grammars_hold_the_text(cli, tiny, args, pattern):
    got = cli(["generate", "hello", *args, "-n", "20", "--json", *tiny])
    assert got.code == 0, got.err
    result = json.loads(got.out)
    assert re.fullmatch(pattern, result["text"]) and result["finish_reason"] == "stop"
    assert "parsed" not in result  # only JSON has a value besides its text


def test_a_gbnf_file_and_json_object(cli, tiny, tmp_path):
    grammar = tmp_path / "answer.gbnf"
    grammar.write_text(GBNF, encoding="utf-8")
    got = json.loads(cli(["generate", "hello", "--grammar", str(grammar), "--json", *tiny]).out)
    assert re.fullmatch(r"answer: (yes|no|[0-9][0-9]?)", got["text"])
    got = cli(["generate", "hello", "--json-object", "-n", "60", "--json", *tiny])
    result = json.loads(got.out)
    if result["finish_reason"] == "stop":
        assert isinstance(result["parsed"], dict)
    else:  # a random model may write keys until the budget or loop: cut, never closed into JSON it did not write
        assert result["finish_reason"] in ("length", "repetition") and result["parsed"] is None


def test_batch_records_get_the_parsed_value(cli, tiny, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    got = cli(
        ["generate", "--schema", json.dumps(SCHEMA), "-n", "80", "--input", str(src), "--output", str(out), *tiny]
    )
    assert got.code == 0, got.err
    for record in map(json.loads, out.read_text().splitlines()):
        jsonschema.validate(record["parsed"], SCHEMA)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema", '{"type": "array", "uniqueItems": true}'], "does not support: uniqueItems"),
        (["--schema", "{nope"], "--schema takes a JSON object, or a file holding one"),
        (["--schema", "missing.json"], "cannot read missing.json: no such file"),
        (["--regex", "[a-"], "the regex is not supported"),
        (["--grammar", 'root ::= "a" ('], "GBNF grammar does not parse"),
        (["--regex", "a", "--json-object"], "give one of --schema, --regex, --grammar and --json-object"),
    ],
)
def test_bad_grammars_are_one_line_before_any_model(cli, args, message):
    got = cli(["generate", "hi", *args, "--model", "never-resolved"])
    assert got.code == 1 and message in got.err and len(got.err.strip().splitlines()) == 1, got.err


def test_suite_generate_with_a_schema_returns_parsed_objects(suite):
    one = suite.generate("a colour", schema=SCHEMA, max_tokens=80)
    jsonschema.validate(one, SCHEMA)
    many = suite.generate(["a", "b"], schema=SCHEMA, max_tokens=80, temperature=1.0, seed=2)
    assert len(many) == 2
    for value in many:
        jsonschema.validate(value, SCHEMA)
    assert isinstance(suite.generate("plain", max_tokens=3), str)


def test_suite_generate_with_a_pydantic_class_returns_an_instance(suite):
    pydantic = pytest.importorskip("pydantic")
    from typing import Literal

    class Pick(pydantic.BaseModel):  # strict as OpenAI's: no keys of the model's own (it would add them)
        colour: Literal["red", "green"]
        sure: bool

    got = suite.generate("pick one", schema=Pick, max_tokens=60)
    assert isinstance(got, Pick) and got.colour in ("red", "green")


def test_an_output_cut_before_it_is_complete_is_an_error_not_fake_json(suite):
    with pytest.raises(NlpsuiteError, match=r"ended \(length\) before it was complete JSON: raise max_tokens"):
        suite.generate("a colour", schema=SCHEMA, max_tokens=3)


@pytest.fixture(scope="module")
def roomy(tmp_path_factory, make_tiny_llama):
    """Room for the tools' prompt and the sentiment task's (the tiny tokenizer spells most words letter by letter)."""
    return ["--model", str(make_tiny_llama(tmp_path_factory.mktemp("tiny-roomy"), context=4096)), "--device", "cpu"]


def test_chat_with_tools_runs_the_tasks_the_model_calls_and_shows_them(cli, roomy, tmp_path, monkeypatch):
    """The model is scripted here (a random one never closes a string): its first reply is a call, which must be
    one the turn's grammar allows; the task then really runs on the tiny model, and the second reply is text."""
    from nlpsuite.heads.generation import GenerationHead
    from nlpsuite.runtime import tools
    from nlpsuite.runtime.grammar import constraint
    from nlpsuite.runtime.sequence import Completion

    call = tools.block("sentiment", {"text": "I love this film"})
    replies, seen = [call, "You liked it."], []

    def scripted(head, messages, params, on_text=None, offered=None):
        text = replies[len(seen)]
        seen.append((messages, params.grammar, offered))
        row, ids = constraint(params.grammar, head.suite.tokenizer), head.suite.tokenizer.encode(text, False)
        assert row.valid_prefix(ids) == len(ids)  # the reply is one the grammar allows
        if on_text:
            on_text(0, text)
        return Completion(text, ids, 1, "stop")

    monkeypatch.setattr(GenerationHead, "chat", scripted)
    transcript = tmp_path / "chat.json"
    script = f"I love this film\n/save {transcript}\n".encode()
    result = cli(["chat", "--tools", "sentiment,translate", "--tool-choice", "required", *roomy], stdin=script)
    assert result.code == 0, result.err
    assert result.out == "You liked it.\n"  # the call itself is not printed as the reply...
    assert '-> sentiment {"text": "I love this film"}' in result.err  # ...but shown, with the task's result
    (shown,) = re.findall(r"^<- (.*)$", result.err, re.MULTILINE)
    assert json.loads(shown)["label"] in ("positive", "negative", "neutral")
    assert [t["function"]["name"] for t in seen[0][2]] == ["sentiment", "translate"]
    assert seen[0][1] == tools.grammar(seen[0][2], parallel=False, text=False)  # --tool-choice required: a call
    assert seen[1][1] == tools.grammar(seen[0][2], parallel=False, text=True)  # after its result: text or a call
    saved = json.loads(transcript.read_text())["messages"]
    assert [m["role"] for m in saved] == ["user", "assistant", "tool", "assistant"]
    assert saved[1]["tool_calls"][0]["function"] == {"name": "sentiment", "arguments": {"text": "I love this film"}}
    assert saved[2]["content"] == shown and saved[3]["content"] == "You liked it."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tools", "nope"], "--tools: no task named 'nope'"),
        (["--tools", "sentiment", "--tool-choice", "always"], "--tool-choice must be one of: auto, required"),
    ],
)
def test_chat_tools_are_checked_before_any_model(cli, args, message):
    result = cli(["chat", *args, "--model", "/nonexistent"], stdin=b"hi\n")
    assert result.code != 0 and message in result.err and "Traceback" not in result.err
