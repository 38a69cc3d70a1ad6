"""extract on the tiny random model: whatever the model prefers, each front-end returns one object that validates
against the schema (CLI, batch with resume, REPL /task, Suite.run, eval); and the exact-match scoring."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.shared_cache
jsonschema = pytest.importorskip("jsonschema")

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8, "description": "The person's name"},
        "mood": {"enum": ["happy", "sad", "calm"]},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
        "pet": {"type": "boolean"},
    },
    "required": ["name", "mood", "age", "pet"],
    "additionalProperties": False,
}
TEXT = "Ana is 34, calm, and has a cat."


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "person.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path


def test_suite_run_returns_an_object_that_validates(suite):
    got = suite.run("extract", [TEXT, "東京の田中さんは悲しい。"], schema=SCHEMA)
    assert len(got) == 2
    for value in got:
        jsonschema.validate(value, SCHEMA)


def test_the_prompt_lists_the_fields_with_their_types_choices_and_descriptions():
    from nlpsuite_plugins.extract import describe_fields

    assert describe_fields(SCHEMA).splitlines() == [
        "- name (string): The person's name",
        '- mood (one of "happy", "sad", "calm")',
        "- age (integer)",
        "- pet (boolean)",
    ]


def test_cli_json_takes_the_schema_from_a_file_or_as_json(cli, model_args, schema_file):
    for given in (str(schema_file), json.dumps(SCHEMA)):
        got = cli(["extract", TEXT, "--schema", given, "--json", *model_args])
        assert got.code == 0, got.err
        result = json.loads(got.out)
        assert result["finish_reason"] == "stop"
        jsonschema.validate(result["data"], SCHEMA)


def test_cli_prints_the_object_alone_without_json(cli, model_args, schema_file):
    got = cli(["extract", TEXT, "--schema", str(schema_file), *model_args])
    assert got.code == 0, got.err
    jsonschema.validate(json.loads(got.out), SCHEMA)


def test_a_cut_object_is_null_with_finish_reason_length(suite):
    (result,) = suite.task("extract").run(suite, [{"text": TEXT}], **suite.task("extract").check_options(
        {"schema": SCHEMA, "max_tokens": 3}))  # fmt: skip
    assert result["data"] is None and result["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["extract", TEXT], "--schema is required"),
        (["extract", TEXT, "--schema", "missing.json"], "cannot read missing.json: no such file"),
        (["extract", TEXT, "--schema", "[1]"], "--schema takes a JSON object"),
        (["extract", TEXT, "--schema", '{"type": "object", "not": {}}'], "does not support: not"),
        (["extract", "", "--schema", "{}"], "empty text"),
    ],
)
def test_bad_input_is_one_line_before_any_model(cli, args, message):
    got = cli([*args, "--model", "never-resolved"])
    assert got.code == 1 and message in got.err and len(got.err.strip().splitlines()) == 1, got.err


def test_batch_mode_adds_the_object_and_resumes(cli, model_args, schema_file, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate([TEXT, "Bo is sad."])))
    args = ["extract", "--schema", str(schema_file), "--input", str(src), "--output", str(out), *model_args]
    first = cli(args)
    assert first.code == 0, first.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1]
    for record in records:
        jsonschema.validate(record["data"], SCHEMA)
    out.write_text(out.read_text().splitlines(keepends=True)[0])  # as if interrupted after the first record
    again = cli(args)
    assert again.code == 0, again.err
    assert [json.loads(line) for line in out.read_text().splitlines()] == records  # the same, nothing redone twice


def test_repl_task_reads_the_schema_file_and_answers_objects(suite, schema_file):
    import io

    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    out = io.StringIO()
    script = io.StringIO(f"/task extract --schema {schema_file}\n{TEXT}\n")
    ChatRepl(suite, SamplingParams(), json=True, stdin=script, stdout=out).run()
    jsonschema.validate(json.loads(out.getvalue().splitlines()[-1])["data"], SCHEMA)  # --json: the whole result


def test_eval_scores_exact_match_per_field_and_object(cli, model_args, schema_file, tmp_path):
    data = tmp_path / "gold.jsonl"
    gold = [
        {"name": "Ana", "mood": "calm", "age": 34, "pet": True},
        {"name": "Bo", "mood": "sad", "age": 5, "pet": False},
    ]
    data.write_text(
        "".join(json.dumps({"text": t, "expected": g}) + "\n" for t, g in zip([TEXT, "Bo"], gold, strict=True))
    )
    got = cli(["eval", "extract", str(data), "--schema", str(schema_file), "--json", *model_args])
    assert got.code == 0, got.err
    metrics = json.loads(got.out)["metrics"]
    assert set(metrics["fields"]) == {"name", "mood", "age", "pet"}
    assert 0 <= metrics["field_exact_match"] <= 1 and metrics["invalid"] == 0
