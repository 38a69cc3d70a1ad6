"""Built-in plugin: the `extract` task (`nlpsuite extract TEXT --schema FILE`): the fields a JSON Schema names,
read from a text as one JSON object that validates (the output is held to the schema while it is decoded)."""

from __future__ import annotations

import dataclasses
import json

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.eval.signals import field_signals
from nlpsuite.hookspecs import hookimpl
from nlpsuite.outputs import output_grammar, output_options
from nlpsuite.tasks import Confidence, Eval, Input, Option, Task, Tune

PROMPT = (
    "Extract information from the text below as one JSON object with these fields:\n{fields}\n"
    "Copy values from the text as written; use null for a field the text does not give.\n\nText:\n{text}"
)
# Each field's signals: the model's mean log-probability per token of the value it wrote (its own distribution,
# before the schema's mask), that of the value's first token (where it chose between null, a value and which),
# whether it wrote null, whether the value stands in the text as written (case aside), and the share of the text
# it takes (a "title" that is the whole sentence was copied, not found).
SIGNALS = ("mean_logp", "first_logp", "null", "in_text", "text_share")
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


def prompt(text: str, schema: dict) -> str:
    return PROMPT.format(fields=describe_fields(schema), text=text)


def written(data: dict, schema: dict) -> str:
    """An object as decoding under the schema writes it: one line, the schema's properties first in their order."""
    names = list(schema.get("properties") or {})
    ordered = {name: data.get(name) for name in names} | {k: v for k, v in data.items() if k not in names}
    return json.dumps(ordered, ensure_ascii=False)


def examples(suite, inputs, gold, schema, max_tokens=512):
    """`nlpsuite tune` examples: each text in the prompt extract reads it in, then its gold object as extract
    writes one, and the end of the reply."""
    from nlpsuite.tasks import Example

    head = suite.head("generation")
    end = suite.tokenizer.eos_token_ids[:1]
    out = []
    for record, data in zip(inputs, gold, strict=True):
        if not isinstance(record.get("text"), str) or not record["text"].strip() or not isinstance(data, dict):
            raise NlpsuiteError("a tuning record needs a 'text' and its object in 'data'")
        reply = suite.tokenizer.encode(written(data, schema), add_special_tokens=False) + end
        out.append(Example([(head.encode(prompt(record["text"], schema), False, None), reply)]))
    return out


def measure(suite, inputs, schema, max_tokens=512):
    texts = [i["text"] for i in inputs]
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise NlpsuiteError("empty text")
    languages.check(suite, texts)
    held = output_grammar({"schema": schema})
    prompts = [prompt(text, schema) for text in texts]
    done = suite.complete(prompts, grammar=held, max_tokens=max_tokens, temperature=0.0, logprobs=0)
    names = list(schema.get("properties") or {})  # the fields scored one by one; none named: the whole object
    measured = []
    for text, c in zip(texts, done, strict=True):
        # None when the output was cut (finish_reason "length"): never closed into JSON it did not write
        data = held.parse(c.text) if c.finish_reason == "stop" else None
        result = {
            "data": data,
            "finish_reason": c.finish_reason,
            "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens},
            "scores": dict.fromkeys(names),  # filled by finish(), in this order
        }
        signals = [] if data is None else field_signals(suite.tokenizer.decode, c, data, text, names)
        measured.append({"result": result, "signals": signals})
    return measured


def outcome(result: dict, gold: dict, options: dict) -> list[int]:
    """Each scored part's class: 0 right, 1 wrong (a field, or with no fields named the whole object)."""
    from nlpsuite.eval import metrics

    if result["data"] is None:
        return []  # a cut output has no parts to learn from: it is wrong, and finish() says so
    if not result["scores"]:
        return [0 if metrics.object_right(result["data"], gold) else 1]
    return [0 if metrics.field_right(result["data"], gold, name) else 1 for name in result["scores"]]


def finish(result: dict, parts: list[tuple[int, float]]) -> dict:
    """Each field's probability of being right (``scores``), and the whole object's (``score``: their product)."""
    names = list(result["scores"])
    kept = {k: v for k, v in result.items() if k != "scores"}
    if result["data"] is None:  # cut short: no value, so nothing in it is right
        return {**kept, "score": 0.0, "scores": dict.fromkeys(names, 0.0)}
    probs = [score for _, score in parts]  # a part only ever claims to be right: its score is P(right)
    whole = 1.0
    for p in probs:
        whole *= p
    scores = {name: round(p, 4) for name, p in zip(names, probs, strict=True)} if names else {}
    return {**kept, "score": round(whole, 4), "scores": scores}


def right(result: dict, gold: dict, options: dict) -> bool:
    from nlpsuite.eval import metrics

    return metrics.object_right(result["data"], gold)


def parts(result: dict, gold: dict, options: dict) -> list[tuple[float, bool]]:
    """(score, right) of each field of the result (eval's field-level calibration)."""
    from nlpsuite.eval import metrics

    if not result["scores"]:
        return [(result["score"], right(result, gold, options))]
    return [(s, metrics.field_right(result["data"], gold, name)) for name, s in result["scores"].items()]


# The built-in model, fitted for the default model on the 216 fields of three English development sets and held
# out on two more (English books, Chinese people): docs/confidence.md.
DEFAULT = {
    "classes": ["right", "wrong"],
    "signals": list(SIGNALS),
    "weights": [[0.0] * 6, [2.3266, -2.6754, -6.3932, -5.2141, 8.8128, 0.5557]],
}

CONFIDENCE = Confidence(
    "a field is right: it equals the gold value (strings as exact match compares them; null = absent)",
    ("right", "wrong"),
    (0,),
    SIGNALS,
    measure,
    outcome,
    finish,
    right,
    default=lambda options: DEFAULT,
    per="field",
    parts=parts,
)


def run(suite, inputs, schema, max_tokens=512):
    from nlpsuite.eval import confidence

    return confidence.scored(suite, "extract", CONFIDENCE, inputs, {"schema": schema, "max_tokens": max_tokens})


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
            output=("data", "finish_reason", "score", "scores"),
            value="data",
            eval=Eval("extraction", {"text": "text"}, "expected", _score, read_gold=object_column, field=None),
            progress_label="extracting",
            confidence=CONFIDENCE,
            tune=Tune(
                "data",
                lambda suite, inputs, gold, options: examples(suite, inputs, gold, **options),
                metric="field_exact_match",
            ),  # fmt: skip
        )
    )
