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
