"""Built-in plugin: the `extract` task (`nlpsuite extract TEXT --schema FILE`): the fields a JSON Schema names,
read from a text as one JSON object that validates (the output is held to the schema while it is decoded)."""

from __future__ import annotations

import dataclasses
import json

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.outputs import output_grammar, output_options
from nlpsuite.tasks import Eval, Input, Option, Task

PROMPT = (
    "Extract information from the text below as one JSON object with these fields:\n{fields}\n"
    "Copy values from the text as written; use null for a field the text does not give.\n\nText:\n{text}"
)
SCHEMA = dataclasses.replace(
    next(o for o in output_options() if o.name == "schema"),
    required=True,
    help="JSON Schema of the object to extract (its properties are the fields): JSON text or a file.",
)


def describe_fields(schema: dict) -> str:
    """One line per top-level property: its name, type or choices, and description (what the prompt lists)."""
    lines = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type") or ("one of " + ", ".join(map(json.dumps, spec["enum"])) if "enum" in spec else "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        about = spec.get("description") or spec.get("title") or ""
        lines.append(f"- {name}" + (f" ({kind})" if kind else "") + (f": {about}" if about else ""))
    return "\n".join(lines) or json.dumps(schema, ensure_ascii=False)


def run(suite, inputs, schema, max_tokens=512):
    texts = [i["text"] for i in inputs]
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise NlpsuiteError("empty text")
    languages.check(suite, texts)
    held = output_grammar({"schema": schema})
    prompts = [PROMPT.format(fields=describe_fields(schema), text=text) for text in texts]
    done = suite.complete(prompts, grammar=held, max_tokens=max_tokens, temperature=0.0)
    return [
        {
            # None when the output was cut (finish_reason "length"): never closed into JSON it did not write
            "data": held.parse(c.text) if c.finish_reason == "stop" else None,
            "finish_reason": c.finish_reason,
            "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens},
        }
        for c in done
    ]


def object_column(path, line: int, record: dict, column: str) -> dict:
    """The gold object of an extraction record: a JSON object, or (CSV/TSV) its JSON text."""
    value = record.get(column)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise NlpsuiteError(f"{path}:{line}: {column!r} must be a JSON object (the fields to extract)")
    return value


def _score(predictions: list, gold: list[dict], options: dict) -> dict:
    from nlpsuite.eval.metrics import field_exact_match

    return field_exact_match(predictions, gold)


@hookimpl
def register_tasks(register):
    register(
        Task(
            "extract",
            "Extract the fields of a JSON Schema from a text: one JSON object that validates.",
            "generation",
            run,
            inputs=(Input("text", "The text to read"),),
            options=(SCHEMA, Option("max_tokens", int, 512, "Most tokens the object may take.", short="-n", min=1)),
            output=("data", "finish_reason"),
            value="data",
            eval=Eval("extraction", {"text": "text"}, "expected", _score, read_gold=object_column, field=None),
            progress_label="extracting",
        )
    )
