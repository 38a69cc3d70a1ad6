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


# --- the score: each field's probability of being right, and the object's -------------------------------------


def test_members_find_each_top_level_value_as_written():
    from nlpsuite.eval.signals import members

    text = '{"name": "Ana \\"A\\" Li", "age":34 ,"pet": null, "tags": ["a", {"b": 1}], "x": {"y": "}"}}'
    got = {name: text[a:b] for name, (a, b) in members(text).items()}
    assert got == {"name": '"Ana \\"A\\" Li"', "age": "34", "pet": "null", "tags": '["a", {"b": 1}]', "x": '{"y": "}"}'}
    assert members('{"a": 1, "b": [2,') == {"a": (6, 7)}  # no longer JSON: the members before it


def test_a_value_is_in_the_text_as_written_case_aside():
    from nlpsuite.eval.signals import in_text

    assert in_text("nurse", "A Nurse in Seville") and in_text("東京", "東京の田中さん")
    assert in_text(34, "aged 34") and in_text(20.0, "costs 20 euros") and not in_text(35, "aged 34")
    assert not in_text(True, "True") and not in_text(None, "None") and not in_text("", "anything")


def test_field_signals_read_the_logprobs_of_each_values_own_tokens(suite):
    """A scripted completion whose tokens are known piece by piece: each field's signals are the mean and first
    log-probability of exactly the tokens of its value (a string's characters, not its quotes)."""
    from nlpsuite.eval.signals import field_signals
    from nlpsuite.runtime.sequence import Completion

    encode = lambda s: suite.tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    pieces = [('{"name": "', None), ("Ana", "name"), ('", "age": ', None), ("34", "age"), (', "pet": ', None),
              ("null", "pet"), ("}", None)]  # fmt: skip
    ids, owner = [], []
    for text, field in pieces:
        got = encode(text)
        ids += got
        owner += [field] * len(got)
    text = "".join(t for t, _ in pieces)
    assert suite.tokenizer.decode(ids) == text  # the pieces' tokens spell the object
    logprobs = [(t, -0.1 * (k + 1), []) for k, t in enumerate(ids)]
    done = Completion(text, ids, 5, "stop", logprobs=logprobs)
    data = {"name": "Ana", "age": 34, "pet": None}
    rows = field_signals(suite.tokenizer.decode, done, data, "Ana is 34.", ["name", "age", "pet", "absent"])
    for (name, value), row in zip(data.items(), rows, strict=False):
        own = [lp for (_, lp, _), field in zip(logprobs, owner, strict=True) if field == name]
        share = len(value) / len("Ana is 34.") if isinstance(value, str) else 0.0
        found = float(value is not None)  # "Ana" and 34 stand in the text
        assert row == pytest.approx([sum(own) / len(own), own[0], float(value is None), found, share])
    assert rows[3] == [0.0, 0.0, 1.0, 0.0, 0.0]  # a field the object left out reads as a null with no evidence


def test_each_field_gets_a_probability_and_the_object_their_product(suite):
    import math

    got = suite.task("extract").run(suite, [{"text": TEXT}], **suite.task("extract").check_options({"schema": SCHEMA}))
    (result,) = got
    assert list(result["scores"]) == list(SCHEMA["properties"])
    assert all(0 <= p <= 1 for p in result["scores"].values())
    assert result["score"] == pytest.approx(math.prod(result["scores"].values()), abs=5e-4)  # each printed to 4 places
    (cut,) = suite.task("extract").run(suite, [{"text": TEXT}], **suite.task("extract").check_options(
        {"schema": SCHEMA, "max_tokens": 3}))  # fmt: skip
    assert cut["score"] == 0.0 and set(cut["scores"].values()) == {0.0}  # no object: nothing in it is right


def test_calibrate_fits_on_fields_split_by_example(cli, model_args, schema_file, tmp_path, suite, monkeypatch):
    """Gold built from the model's own objects (name and mood kept, age and pet changed): half the fields right.
    The fit is on fields; an example's fields are fitted or held out together."""
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path / "home"))
    texts = [
        f"{n} is {a} and {m}." for n in ("Ana", "Bo", "Cy", "Di", "Ed", "Flo") for a, m in ((3, "sad"), (40, "calm"))
    ]
    predicted = suite.run("extract", texts, schema=SCHEMA)
    gold = [{**p, "age": p["age"] + 1, "pet": not p["pet"]} for p in predicted]
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps({"text": t, "expected": g}) + "\n" for t, g in zip(texts, gold, strict=True)))
    got = cli(["calibrate", "extraction", str(data), "--schema", str(schema_file), "--json", *model_args])
    assert got.code == 0, got.err
    report = json.loads(got.out)
    assert report["rows"] == "fields" and report["n_fit"] + report["n_heldout"] == 4 * len(texts)
    assert report["n_heldout"] % 4 == 0 and report["outcomes"] == {"right": 24, "wrong": 24}
    evaluated = cli(["eval", "extract", str(data), "--schema", str(schema_file), "--json", *model_args])
    metrics = json.loads(evaluated.out)["metrics"]
    assert metrics["field_exact_match"] == 0.5 and metrics["object_exact_match"] == 0.0
    assert {"ece", "right", "mean_score", "field_ece", "field_right", "field_mean_score"} <= set(metrics)
    assert metrics["field_right"] == 0.5 and metrics["right"] == 0.0
