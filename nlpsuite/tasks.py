"""The task contract: a task declares its inputs, options, outputs and eval recipe once, next to its run().

Every front-end is generated from that declaration, so a task written once (built-in or third-party)
gets the same CLI command, batch mode, REPL ``/task``, ``nlpsuite eval`` and ``Suite.run``.

``run(suite, inputs, **options) -> results`` is batch-native: ``inputs`` is a list of dicts holding the
input fields, and it returns one dict per input. A result holds the task's ``output`` fields (what batch
mode adds to each record) and may hold more detail (what a single ``--json`` call prints).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import NlpsuiteError


@dataclass(frozen=True)
class Input:
    """An input field. The first one is "the text": a CLI argument, stdin or ``--file``, and in batch mode
    the record's field of its name, or ``text``. Later ones are CLI options and per-record fields."""

    name: str
    help: str = ""
    optional: bool = False
    file: bool = False  # CLI: the value may also be a UTF-8 file's path, or '-' for stdin
    messages: bool = False  # the value is a chat: a string or a list of {"role", "content"} dicts
    many: bool = False  # a list of texts (or {"text"} objects), or one text holding them: see records.document_list


@dataclass(frozen=True)
class Option:
    """A task option: its type, default, range and help, checked the same way by every front-end."""

    name: str  # the keyword run() receives
    type: type = str  # str, int, float, bool, Path, or list (of strings)
    default: Any = None
    help: str = ""
    choices: tuple = ()
    required: bool = False
    flag: str | None = None  # the CLI spelling, default --name-with-dashes
    short: str | None = None
    min: float | None = None
    max: float | None = None
    separator: str | None = ","  # lists: split on this; None means the CLI flag repeats
    parse: Callable[[Any], Any] | None = None  # normalizes a checked value, or raises NlpsuiteError
    argument: bool = False  # CLI: a positional argument that comes before the text

    @property
    def cli_flag(self) -> str:
        if self.argument:
            return self.name.upper()
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """``value`` (a Python value, or a string typed in a REPL) as this option's type, range-checked."""
        if value is None:
            if self.required:
                raise NlpsuiteError(f"{self.cli_flag} is required: {self.help}".rstrip(": "))
            return None
        value = self._typed(value)
        if self.choices and value not in self.choices:
            raise NlpsuiteError(f"{self.cli_flag} must be one of: {', '.join(map(str, self.choices))}")
        if self.type in (int, float):
            low, high = self.min, self.max
            if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
                raise NlpsuiteError(f"{self.cli_flag} must be {_range(low, high)}")
        return self.parse(value) if self.parse else value

    def _typed(self, value: Any) -> Any:
        kind, flag = self.type, self.cli_flag
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            if isinstance(value, bool):
                return value
            raise NlpsuiteError(f"{flag} is a switch: true or false")
        if kind is list:
            items = value.split(self.separator or ",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
                raise NlpsuiteError(f"{flag} takes a list of strings")
            return [v.strip() for v in items]
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise NlpsuiteError(f"{flag} takes a number")
            try:
                number = float(value) if kind is float else int(value)
            except ValueError:
                raise NlpsuiteError(f"{flag} takes {'a number' if kind is float else 'a whole number'}") from None
            if kind is int and isinstance(value, float) and value != number:
                raise NlpsuiteError(f"{flag} takes a whole number")
            return number
        if kind is Path:
            if not isinstance(value, str | PathLike) or not str(value):
                raise NlpsuiteError(f"{flag} takes a path")
            return Path(value)
        if not isinstance(value, str):
            raise NlpsuiteError(f"{flag} takes a string")
        return value


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


@dataclass(frozen=True)
class Eval:
    """How ``nlpsuite eval NAME DATA`` scores a task on labelled data."""

    name: str  # what eval calls it (e.g. "translation"); the task's own name works too
    columns: dict[str, str]  # task input field -> data column
    gold: str  # the column holding the reference
    score: Callable[..., dict]  # score(predictions, gold, options) -> metrics
    read_gold: Callable[..., Any] | None = None  # read_gold(path, line, record, column): checked; default: text
    predict: Callable[..., list] | None = None  # predict(suite, inputs, options) -> predictions; default: run()
    field: str | None = None  # the result field that is scored (default: what Suite.run returns)
    prepare: Callable[..., dict] | None = None  # prepare(gold, options, path) -> options, before any model
    check: Callable[[list, list], None] | None = None  # check(gold, first predictions): fail on the first batch
    setup: Callable[..., Any] | None = None  # setup(suite, options) -> context manager yielding the options
    options: tuple[Option, ...] = ()  # options of the evaluation itself; they replace task options of their name
    sets: tuple[str, ...] = ()  # task options the recipe sets itself (not asked of the user)


@dataclass(frozen=True)
class Confidence:
    """How a task's ``score`` becomes the probability that its result is right (nlpsuite.eval.confidence), and
    what ``nlpsuite calibrate`` fits on labelled data (the data ``nlpsuite eval`` reads, with the task's gold)."""

    meaning: str  # what "right" means, one line (calibrate's report, the docs)
    classes: tuple[str, ...]  # the outcomes the signals predict
    delivered: tuple[
        int, ...
    ]  # the outcomes a result may claim (the likeliest is chosen; its probability is the score)
    signals: tuple[str, ...]  # the names of the signals ``measure`` computes
    # measure(suite, inputs, **options) -> one {"result": dict, "signals": [floats]} per input, before any score
    measure: Callable[..., list[dict]]
    outcome: Callable[[dict, Any, dict], int]  # outcome(measured result, gold, options) -> the class that happened
    finish: Callable[[dict, int, float], dict]  # finish(measured result, chosen class, score) -> the result returned
    right: Callable[[dict, Any, dict], bool]  # right(returned result, gold, options): is it right
    # options -> the model used until one is fitted (JSON of eval.confidence.ConfidenceModel), None if none
    default: Callable[[dict], dict | None] | None = None
    key: Callable[[dict], str] | None = None  # options -> what the fit is stored under, besides the task's name


@dataclass
class Example:
    """One training example for `nlpsuite tune`, in tokens: the alternatives the task scores, each a (context,
    continuation) pair. With ``gold`` None there is one alternative and the model learns to write its continuation
    (generating tasks); otherwise it learns to score the gold alternative above the others, as the task scores
    them (label tasks: the sum of the continuation's log-probabilities, divided by ``norms`` where given)."""

    alternatives: list[tuple[list[int], list[int]]]
    gold: int | None = None
    norms: list[float] | None = None


@dataclass(frozen=True)
class Tune:
    """How `nlpsuite tune TASK DATA` trains the backbone on the user's examples of the task (batch records, with
    the gold output in the field ``gold``)."""

    gold: str  # the record field holding the gold output
    # examples(suite, inputs, gold values, options) -> Examples (one or more per record), in the task's own prompts
    examples: Callable[..., list[Example]]
    eval_gold: Callable[[Any], Any] | None = None  # a gold value as the task's eval recipe reads it (default: as is)
    metric: str | None = None  # the eval metric that must not get worse (higher is better); None: held-out loss


# The evaluation options of label tasks (sentiment, classification, and any third-party label task); their
# scoring lives in nlpsuite.eval, which a plugin imports only when an evaluation runs.
LABEL_EVAL = (
    Option("reliability", Path, None, "The reliability diagram PNG to write (default: beside --output)."),
    Option("bins", int, 10, "Confidence bins for ECE and the reliability diagram.", min=1),
)


# What every generated front-end adds to a task's own options (the CLI's --json, --model, batch mode...).
FRONT_END_OPTIONS = frozenset(
    {"file", "json", "input", "output", "batch_size", "force", "model", "device", "precision", "quiet", "on_text"}
    | {"ray", "workers"}  # batch mode on a Ray cluster
)


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    head: str  # the registered head it runs on, e.g. "generation"
    run: Callable[..., list[dict]]  # run(suite, inputs: list[dict], **options) -> one result dict per input
    inputs: tuple[Input, ...] = (Input("text"),)
    options: tuple[Option, ...] = ()
    output: tuple[str, ...] = ()  # the result fields batch mode adds to each record
    value: str | None = None  # the field Suite.run returns (None: the output fields, as a dict)
    batch_names: dict[str, str] = field(default_factory=dict)  # output field -> its name in batch records
    # check(options, shared, batch): refuse bad combinations before any model loads; ``shared`` holds the
    # later input fields given once for every input, ``batch`` says whether records may bring their own
    check: Callable[[dict, dict, bool], None] | None = None
    eval: Eval | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    # Label tasks: scores(suite, texts, labels=None, head=None) -> (label names, scores [n, labels]) before
    # temperature scaling, with any contextual-calibration correction already applied: what calibrate fits.
    scores: Callable[..., Any] | None = None
    confidence: Confidence | None = None  # other tasks: how their score is calibrated
    tune: Tune | None = None  # how `nlpsuite tune` trains the model on the task's examples
    stream: bool = False  # run() takes on_text(row, delta) and streams its text
    command: bool = True  # whether the CLI gets a generated command (chat has its REPL instead)
    batch_size: int = 8
    progress_label: str = ""

    def __post_init__(self) -> None:
        names = [i.name for i in self.inputs] + [o.name for o in self.options]
        if not self.inputs:
            raise ValueError(f"task {self.name!r} declares no input")
        clash = sorted(FRONT_END_OPTIONS.intersection(names))
        if clash:
            raise ValueError(f"task {self.name!r} may not name an input or option {clash[0]!r}: every front-end has it")
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r} declares a name twice")

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def check_options(self, given: dict[str, Any], shared: dict | None = None, batch: bool = False) -> dict[str, Any]:
        """Every declared option, checked and with its default; unknown names are refused."""
        unknown = sorted(set(given) - {o.name for o in self.options})
        if unknown:
            known = ", ".join(o.cli_flag for o in self.options) or "none"
            raise NlpsuiteError(f"{self.name} has no option {unknown[0]!r} (its options: {known})")
        options = {o.name: o.check(given.get(o.name, o.default)) for o in self.options}
        if self.check:
            self.check(options, shared or {}, batch)
        return options

    def call(self, suite, first, **kwargs):
        """What ``Suite.run`` does: one input gives one result, a list gives a list."""
        single = _is_one(first, self.inputs[0])
        results = [self.result(r) for r in self.records(suite, [first] if single else first, single, **kwargs)]
        return results[0] if single else results

    def records(self, suite, values, single: bool = False, /, **kwargs) -> list[dict]:
        """run()'s whole result records for a list of inputs (later input fields and options as keywords; ``single``:
        the one input of a call, whose later fields are its own whatever their type)."""
        head, *rest = self.inputs
        others = {i.name: kwargs.pop(i.name) for i in rest if i.name in kwargs}
        options = self.check_options(kwargs, others)
        values = list(values)
        if not values:
            return []
        inputs = [{head.name: v} for v in values]
        for name, given in others.items():
            one = single or given is None or isinstance(given, str) or _shared_list(given, rest, name)
            spread = [given] * len(values) if one else list(given)
            if len(spread) != len(values):
                raise NlpsuiteError(f"give one {name} per {head.name}, or one for all")
            for record, value in zip(inputs, spread, strict=True):
                record[name] = value
        return list(self.run(suite, inputs, **options))

    def result(self, record: dict):
        """A result as Suite.run returns it: the ``value`` field, or the output fields present."""
        if self.value:
            return record[self.value]
        return {k: record[k] for k in self.output if k in record} if self.output else record

    def batch_inputs(self, records: list[dict], shared: dict) -> list[dict]:
        """run()'s inputs for batch records: the first input is the record's ``text``, later ones its own
        field of their name or the value given once for all (``shared``)."""
        head, *rest = self.inputs
        return [{head.name: r["text"], **{i.name: r.get(i.name, shared.get(i.name)) for i in rest}} for r in records]

    def batch_fields(self, record: dict) -> dict:
        """The fields batch mode adds to an input record."""
        return {self.batch_names.get(k, k): record[k] for k in self.output if k in record}

    def parameters_schema(self, paths: bool = False) -> dict:
        """The JSON Schema of one call's parameters (its inputs and options), for tools and typed clients;
        ``paths``: include options that name a file on the caller's machine (no remote caller may give them)."""
        return parameters_schema(self, paths)


def _shared_list(given, fields: list[Input], name: str) -> bool:
    """A list given for a ``many`` input is one list for every input unless it is a list of lists."""
    field = next(f for f in fields if f.name == name)
    return field.many and not any(isinstance(v, list | tuple) for v in given)


def _is_one(value, head: Input) -> bool:
    if isinstance(value, str):
        return True
    if head.messages:  # a chat is a list of messages: one input, not many
        return isinstance(value, Sequence) and (not value or isinstance(value[0], dict))
    return False


def sampling_options(max_tokens: int = 256) -> tuple[Option, ...]:
    """The decoding options every generating task may offer (their ranges are SamplingParams.check's).
    Left unset, temperature, top-k, top-p and the repetition penalty follow the model's own generation
    defaults where it ships them, else greedy decoding."""
    model = " (default: the model's, else {})"
    return (
        Option("max_tokens", int, max_tokens, "Most new tokens to generate.", short="-n", min=1),
        Option("temperature", float, None, "0 = greedy, else 0.0001 to 100." + model.format(0), short="-t", min=0,
               max=100),
        Option("top_k", int, None, "Sample from the k likeliest tokens (0 = off)." + model.format(0), min=0),
        Option("top_p", float, None, "Nucleus sampling mass, in (0, 1]." + model.format(1), min=1e-6, max=1),
        Option("repetition_penalty", float, None, "> 1 discourages repeats." + model.format(1), min=0.01, max=100),
        Option("seed", int, None, "Seed for sampling."),
        Option("stop", list, None, "Stop at this string (repeatable).", separator=None),
        Option("ignore_eos", bool, False, "Keep generating past end-of-sequence."),
    )  # fmt: skip


def check_sampling(options: dict, shared: dict | None = None, batch: bool = False) -> None:
    """A Task.check for tasks that offer sampling_options(): the decoding settings, checked before any model."""
    from .runtime.sampling import SamplingParams

    names = {o.name for o in sampling_options()}
    SamplingParams(**{k: v for k, v in options.items() if k in names}).check()


# -- JSON Schema of a task's parameters: what MCP tools, chat tools and typed clients are told -------------

JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "string"}
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
