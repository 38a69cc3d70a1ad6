"""Options every generating task may offer (sampling, declared from the sampling ranges), and the JSON Schema of a
task's call (its inputs and options) for tools and typed clients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fields import Input, Option

if TYPE_CHECKING:
    from . import Task


def sampling_options(max_tokens: int = 256) -> tuple[Option, ...]:
    """The decoding options every generating task may offer, declared from the sampling ranges
    (``runtime.sampling.RANGES``) and checked by them. Left unset, temperature, top-k, top-p and the repetition
    penalty follow the model's own generation defaults where it ships them, else greedy decoding
    (``SamplingParams.resolved``: the request, then the model's, then the built-in)."""
    from functools import partial

    from ..runtime.sampling import RANGES, check_field

    def ranged(name: str, kind: type, default, help: str, **more) -> Option:
        low, high, _ = RANGES[name]
        return Option(name, kind, default, help, min=low, max=high, parse=partial(check_field, name), **more)

    model = " (default: the model's, else {})"
    return (
        ranged("max_tokens", int, max_tokens, "Most new tokens to generate.", short="-n"),
        ranged("temperature", float, None, "0 = greedy, else 0.0001 to 100." + model.format(0), short="-t"),
        ranged("top_k", int, None, "Sample from the k likeliest tokens (0 = off)." + model.format(0)),
        ranged("top_p", float, None, "Nucleus sampling mass, in (0, 1]." + model.format(1)),
        ranged("repetition_penalty", float, None, "> 1 discourages repeats." + model.format(1)),
        Option("seed", int, None, "Seed for sampling."),
        Option("stop", list, None, "Stop where this text appears.", separator=None),
        Option("ignore_eos", bool, False, "Keep generating past end-of-sequence.", label="Ignore the end of text"),
    )  # fmt: skip


def check_sampling(options: dict, shared: dict | None = None, batch: bool = False) -> None:
    """A Task.check for tasks that offer sampling_options(): the decoding settings, checked before any model."""
    from ..runtime.sampling import SamplingParams

    names = {o.name for o in sampling_options()}
    SamplingParams(**{k: v for k, v in options.items() if k in names}).check()


# -- JSON Schema of a task's parameters: what MCP tools, chat tools and typed clients are told -------------

JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", Path: "string"}
MESSAGES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {"role": {"type": "string"}, "content": {"type": "string"}},
        "required": ["role", "content"],
    },
}


DOCUMENTS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "anyOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "properties": {"text": {"type": "string", "minLength": 1}, "id": {"type": ["string", "integer"]}},
                "required": ["text"],
            },
        ]
    },
}


def parameters_schema(task: Task, paths: bool = False) -> dict:
    """``{"type": "object", "properties", "required"}`` for one input record and the task's options: names,
    types, ranges, choices, defaults and help from the declaration, nothing written twice."""
    properties, required = {}, []
    for position, given in enumerate(task.inputs):
        properties[given.name] = _input_schema(given)
        if position == 0 or not given.optional:
            required.append(given.name)
    for option in task.options:
        if option.type is Path and not paths:
            continue
        properties[option.name] = option_schema(option)
        if option.required:
            required.append(option.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _input_schema(field: Input) -> dict:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if field.messages:
        schema = {"anyOf": [schema, MESSAGES_SCHEMA]}
    elif field.many:
        schema = {"anyOf": [DOCUMENTS_SCHEMA, schema]}
    return {**schema, "description": field.help} if field.help else schema


def option_schema(option: Option) -> dict:
    """One option as JSON Schema; ``parse`` and a task's ``check`` still run on what a caller sends."""
    if option.type is list:
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    else:
        schema = {"type": JSON_TYPES.get(option.type, "string")}
    if option.choices:
        schema["enum"] = list(option.choices)
    if option.type in (int, float):
        if option.min is not None:
            schema["minimum"] = option.min
        if option.max is not None:
            schema["maximum"] = option.max
    if option.default is not None and isinstance(option.default, str | int | float | bool | list | tuple):
        schema["default"] = list(option.default) if isinstance(option.default, tuple) else option.default
    if option.help:
        schema["description"] = option.help
    return schema
