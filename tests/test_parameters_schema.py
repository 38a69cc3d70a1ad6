"""Task.parameters_schema(): one JSON Schema per task, generated from its declaration, that agrees with the
declaration's own checks (jsonschema is the reference validator), for built-in and third-party tasks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_serve import haiku_registry

from nlpsuite.errors import NlpsuiteError
from nlpsuite.tasks import Input, Option, Task

jsonschema = pytest.importorskip("jsonschema")


def registry_with_haiku():
    return haiku_registry()


def all_tasks() -> list[Task]:
    return list(registry_with_haiku().tasks.values())


def samples(option: Option) -> list:
    """JSON values of every kind a caller may send for ``option`` (REPL strings left out: JSON has types)."""
    values = [None, True, 0, -1, 1, 2.5, 1e9, "", "x", [], ["a", "b"], [1], {"a": 1}]
    values += list(option.choices)
    for bound in (option.min, option.max):
        if bound is not None:
            values += [bound, bound - 1, bound + 1, bound - 1e-9, bound + 1e-9]
    if option.default is not None:
        values.append(option.default)
    return values


def declaration_takes(option: Option, value) -> bool:
    try:
        option.check(value)
    except NlpsuiteError:
        return False
    return True


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_every_task_has_a_valid_schema_that_agrees_with_its_option_checks(task):
    schema = task.parameters_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {i.name for i in task.inputs} | {
        o.name for o in task.options if o.type is not Path
    }
    for option in task.options:
        if option.type is Path or option.parse is not None:
            continue  # a path is never a remote caller's; parse() may refuse more than a schema can say
        prop = schema["properties"][option.name]
        one = jsonschema.Draft202012Validator(prop)
        for value in samples(option):
            if value is None:
                continue  # absent, not null: a schema says absence through "required"
            if isinstance(value, str) and option.type is not str:
                continue  # the REPL's typed words ("3", "true") are not JSON
            if isinstance(value, list) and option.type is list and not value:
                continue
            want = declaration_takes(option, value)
            assert one.is_valid(value) == want, (task.name, option.name, value)


def test_types_ranges_choices_defaults_and_help_come_from_the_declaration():
    task = Task(
        "shout",
        "Repeat a text.",
        "generation",
        lambda suite, inputs, **o: [],
        inputs=(Input("text", "What to repeat"), Input("note", "A note", optional=True), Input("tone", "Tone")),
        options=(
            Option("times", int, 1, "How many times.", min=1, max=5),
            Option("style", str, "plain", "How.", choices=("plain", "fancy")),
            Option("words", list, None, "Words."),
            Option("loud", bool, False, "Upper case."),
            Option("ratio", float, None, "A ratio.", min=0, max=1, required=True),
            Option("out", Path, None, "Where to write."),
        ),
    )
    schema = task.parameters_schema()
    assert schema["required"] == ["text", "tone", "ratio"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["text"] == {"type": "string", "minLength": 1, "description": "What to repeat"}
    assert props["times"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "default": 1,
        "description": "How many times.",
    }
    assert props["style"] == {"type": "string", "enum": ["plain", "fancy"], "default": "plain", "description": "How."}
    assert props["words"] == {"type": "array", "items": {"type": "string"}, "description": "Words."}
    assert props["loud"] == {"type": "boolean", "default": False, "description": "Upper case."}
    assert props["ratio"] == {"type": "number", "minimum": 0, "maximum": 1, "description": "A ratio."}
    assert "out" not in props
    assert task.parameters_schema(paths=True)["properties"]["out"] == {
        "type": "string",
        "description": "Where to write.",
    }
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"text": "hi", "tone": "dry", "ratio": 0.5, "times": 5, "style": "fancy"})
    given = {"text": "hi", "tone": "dry", "ratio": 0.5}
    for bad in ({"text": "hi", "tone": "dry"}, {**given, "times": 6}, {**given, "text": ""}, {**given, "colour": 1}):
        assert not validator.is_valid(bad), bad


def test_a_chat_input_takes_a_string_or_messages():
    task = Task("talk", "Talk.", "generation", lambda s, i: [], inputs=(Input("messages", "The chat", messages=True),))
    for made in (registry_with_haiku().tasks["chat"].parameters_schema(), task.parameters_schema()):
        head = next(iter(made["properties"]))
        validator = jsonschema.Draft202012Validator(made["properties"][head])
        assert validator.is_valid("hello")
        assert validator.is_valid([{"role": "user", "content": "hello"}])
        assert not validator.is_valid([{"role": "user"}]) and not validator.is_valid([])


def test_the_third_party_haiku_task_gets_its_sampling_options():
    schema = registry_with_haiku().tasks["haiku"].parameters_schema()
    props = schema["properties"]
    assert schema["required"] == ["topic"]
    assert props["max_tokens"]["default"] == 48 and props["max_tokens"]["minimum"] == 1
    assert props["temperature"]["maximum"] == 100 and props["top_p"]["maximum"] == 1
    assert props["stop"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Stop where this text appears.",
    }
    assert all(math.isfinite(p.get("minimum", 0)) for p in props.values())


def test_a_list_of_documents_takes_texts_objects_or_one_text():
    task = Task("rank", "Rank.", "relevance", lambda s, i: [],
                inputs=(Input("query", "The query"), Input("documents", "The documents", many=True)))  # fmt: skip
    validator = jsonschema.Draft202012Validator(task.parameters_schema()["properties"]["documents"])
    for good in (["a", "b"], [{"text": "a"}, {"id": 7, "text": "b"}], "a\nb"):
        assert validator.is_valid(good), good
    for bad in ([], [{"id": 1}], [""], 3):
        assert not validator.is_valid(bad), bad
