"""The task contract: a task declares its inputs, options, outputs and eval recipe once, next to its run().

Every front-end is generated from that declaration, so a task written once (built-in or third-party) gets them
all: the CLI command ``nlpsuite NAME``, batch mode (``--input``/``--output``, resumed), the REPL's ``/task NAME``,
``nlpsuite eval NAME DATA``, ``POST /v1/tasks/NAME`` over HTTP, batch mode on a Ray cluster (``--ray``),
``Suite.run("NAME", ...)`` in Python, and an MCP tool (``nlpsuite mcp``, ``/mcp`` on ``nlpsuite serve``).

``run(suite, inputs, **options) -> results`` is batch-native: ``inputs`` is a list of dicts holding the
input fields, and it returns one dict per input. A result holds the task's ``output`` fields (what batch
mode adds to each record) and may hold more detail (what a single ``--json`` call prints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import NlpsuiteError
from ..text import blank
from .fields import LABEL_EVAL, Confidence, Eval, Example, Input, Option, Tune
from .schema import check_sampling, option_schema, parameters_schema, sampling_options

__all__ = [
    "DISPLAYS",
    "FRONT_END_OPTIONS",
    "LABEL_EVAL",
    "Confidence",
    "Eval",
    "Example",
    "Input",
    "Option",
    "Records",
    "Task",
    "Tune",
    "check_sampling",
    "option_schema",
    "parameters_schema",
    "sampling_options",
]


# What the generated front-ends add to a task's own options, so no task may name an input or option so: {name: what
# it is}. The CLI gives every task command a parameter of each name (cli/options.PARAMETERS) but on_text.
FRONT_END_OPTIONS = {
    "file": "CLI: read the text from this file",
    "json": "CLI: print machine-readable JSON",
    "input": "batch mode: the records to read",
    "output": "batch mode: the JSONL file to write (resumed)",
    "batch_size": "batch mode: records run together",
    "force": "batch mode: overwrite an output that is not this run's",
    "text_column": "batch mode: the field that holds the text",
    "output_prefix": "batch mode: a prefix for the fields the task adds",
    "on_error": "batch mode: stop at, or skip, a record the task refuses",
    "wait": "batch mode: wait for another run writing the same output",
    "ray": "batch mode on a Ray cluster: its address",
    "workers": "batch mode on a Ray cluster: how many actors",
    "model": "the suite: the model",
    "device": "the suite: cpu, cuda or auto",
    "precision": "the suite: the weights' precision",
    "quiet": "the suite: no progress or status lines",
    "on_text": "run(): the callback a streaming task sends its text to",
}

DISPLAYS = (None, "beside", "span")  # Task.display's hints


@dataclass(frozen=True)
class Task:
    """A task, declared once; every front-end is generated from it (see the module's docstring).

    Reserved names. An input or option may not be named as the front-ends' own (``FRONT_END_OPTIONS``): file,
    json, input, output, batch_size, force, text_column, output_prefix, on_error, wait, ray, workers, model,
    device, precision, quiet and on_text. A task whose ``command`` is true may not take the name of a core command
    (``plugins.CORE_COMMANDS``: chat, eval, calibrate, train, tune, index, heads, models, plugins, doctor, serve,
    mcp), another task's or a plugin command's.

    ``head`` is informational: the head the task mainly runs on, which ``GET /v1/tasks`` shows; run() may ask
    the suite for any head (``suite.head(name)``), and nothing checks that it uses this one.
    """

    name: str
    description: str
    head: str  # informational: the registered head it mainly runs on, e.g. "generation"
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
    # Label tasks: scores(suite, texts, labels=None, head=None) -> (label names, scores [n, labels]) before
    # temperature scaling, with any contextual-calibration correction already applied: what calibrate fits.
    scores: Callable[..., Any] | None = None
    scoring: str = ""  # label tasks: names how ``scores`` are made; a calibration fitted on other scores is refused
    confidence: Confidence | None = None  # other tasks: how their score is calibrated
    tune: Tune | None = None  # how `nlpsuite tune` trains the model on the task's examples
    stream: bool = False  # run() takes on_text(row, delta) and streams its text
    command: bool = True  # whether the CLI gets a generated command (chat has its REPL instead)
    batch_size: int = 8
    progress_label: str = ""
    # How a person's page shows a result, where its shape does not say (see nlpsuite/serve/page.js): "beside"
    # (the value beside the first input, its source), "span" (``answer`` marked at ``start``..``end`` in the
    # last input, or in ``sources[passage - 1]["text"]``, with ``sources`` cited); None: by the result's shape.
    display: str | None = None

    def __post_init__(self) -> None:
        names = [i.name for i in self.inputs] + [o.name for o in self.options]
        if not self.inputs:
            raise ValueError(f"task {self.name!r} declares no input")
        clash = sorted(set(FRONT_END_OPTIONS).intersection(names))
        if clash:
            raise ValueError(f"task {self.name!r} may not name an input or option {clash[0]!r}: every front-end has it")
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r} declares a name twice")
        if self.display not in DISPLAYS:
            raise ValueError(f"task {self.name!r}: display must be one of {DISPLAYS}, not {self.display!r}")

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
        made, done = self._run(suite, first, kwargs)
        results = [self.result(r) for r in done]
        return results[0] if made.single else results

    def run_records(self, suite, first, **kwargs) -> list[dict]:
        """run()'s whole result records (every field, not only what ``Suite.run`` returns: evaluation and calibration
        read scores and spans) for the same arguments as ``call``, as a list."""
        return self._run(suite, first, kwargs)[1]

    def _run(self, suite, first, kwargs: dict):
        later = {i.name: kwargs.pop(i.name) for i in self.inputs[1:] if i.name in kwargs}
        made = self.records(first, later)
        options = self.check_options(kwargs, made.shared, made.per_record)
        return made, (list(self.run(suite, made.records, **options)) if made.records else [])

    def records(self, first, later: dict | None = None, strings: bool = False) -> Records:
        """run()'s input records, for every front-end (Python, the CLI, batch and Ray, HTTP). ``first``: the first
        input, one value (a string; a conversation for a ``messages`` input) or a list of them; ``later``: each
        later input given once for every record, or with a list ``first`` a list of one value per record (None:
        not given). ``strings``: later inputs must be text, never a file's path to read (HTTP)."""
        head, *rest = self.inputs
        single = _is_one(first, head)
        values = [first] if single else first
        if not isinstance(values, list | tuple):
            raise NlpsuiteError(f"{head.name} must be {_words(head)}, or a list of them")
        for value in values:
            _check_first(value, head)
        made = Records([{head.name: v} for v in values], single, {}, False)
        for other in rest:
            given = (later or {}).get(other.name)
            each = not single and isinstance(given, list | tuple) and not _one_value(given, other)
            spread = list(given) if each else [given] * len(values)
            if len(spread) != len(values):
                raise NlpsuiteError(f"give one {other.name} per {head.name}, or one for all")
            kinds = (str, list) if other.many else str
            if strings and not all(v is None or isinstance(v, kinds) for v in spread):
                raise NlpsuiteError(f"{other.name} must be a string, or one string per {head.name}")
            if each:
                made = made._replace(per_record=True)
            elif given is not None:
                made.shared[other.name] = given
            for record, value in zip(made.records, spread, strict=True):
                record[other.name] = value
        return made

    def result(self, record: dict):
        """A result as Suite.run returns it: the ``value`` field, or the output fields present."""
        if self.value:
            return record[self.value]
        return {k: record[k] for k in self.output if k in record} if self.output else record

    def batch_inputs(self, rows: list[dict], shared: dict, text_column: str = "text") -> list[dict]:
        """run()'s inputs for batch records: the first input is the record's ``text`` (or ``text_column``), later
        ones its own field of their name or the value given once for all (``shared``)."""
        inputs = self.records([r[text_column] for r in rows]).records  # a record's later fields are its own
        for record, row in zip(inputs, rows, strict=True):
            record.update({i.name: row.get(i.name, shared.get(i.name)) for i in self.inputs[1:]})
        return inputs

    def batch_fields(self, record: dict) -> dict:
        """The fields batch mode adds to an input record."""
        return {self.batch_names.get(k, k): record[k] for k in self.output if k in record}

    def parameters_schema(self, paths: bool = False) -> dict:
        """The JSON Schema of one call's parameters (its inputs and options), for tools and typed clients;
        ``paths``: include options that name a file on the caller's machine (no remote caller may give them)."""
        return parameters_schema(self, paths)


def _one_value(given: list | tuple, field: Input) -> bool:
    """Whether a list given for a later input is that input's one value rather than one value per record: a
    conversation for a ``messages`` input, and for a ``many`` input any list but a list of lists."""
    if field.messages:
        return _is_one(given, field)
    return field.many and not any(isinstance(v, list | tuple) for v in given)


class Records(NamedTuple):
    """What Task.records makes of the inputs a front-end was given."""

    records: list[dict]  # run()'s inputs
    single: bool  # the first input was one value: its caller answers with one result, not a list
    shared: dict  # later inputs given once for every record (Task.check's ``shared``)
    per_record: bool  # some later input was given per record (Task.check's ``batch``)


def _is_one(value, head: Input) -> bool:
    """Whether a first input is one value rather than a list of them: a string, or for a ``messages`` input a
    conversation (a list of message dicts, an empty one included: an empty conversation, not zero inputs)."""
    if isinstance(value, str):
        return True
    if head.messages:
        return isinstance(value, list | tuple) and (not value or isinstance(value[0], dict))
    return False


def _words(head: Input) -> str:
    return "a string or a list of {role, content} messages" if head.messages else "a string"


def _check_first(value, head: Input) -> None:
    """One value of the first input: non-blank text, or a non-empty conversation of {role, content} strings."""
    if head.messages and isinstance(value, list | tuple):
        if not value or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
        ):
            raise NlpsuiteError(f"{head.name} must be {_words(head)}")
        return
    if not isinstance(value, str):
        raise NlpsuiteError(f"{head.name} must be {_words(head)}, or a list of them")
    if blank(value):
        raise NlpsuiteError(f"empty {head.name}")
