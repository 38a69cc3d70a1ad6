"""What a task declares, field by field: its inputs, options, eval recipe, confidence recipe and tuning recipe (the
task itself is nlpsuite.tasks.Task)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import NlpsuiteError


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
    label: str = ""  # its name for a person (the web page's form); default: the name in words


@dataclass(frozen=True)
class Option:
    """A task option: its type, default, range and help, checked the same way by every front-end."""

    name: str  # the keyword run() receives
    type: type = str  # str, int, float, bool, Path, list (of strings), or dict (a JSON object)
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
    label: str = ""  # its name for a person (the web page's form); default: the name in words
    file: bool = False  # CLI and REPL: the value may also be a UTF-8 file's path (never over HTTP: see Input.file)

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
        if kind is dict:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    where = ", or a file holding one" if self.file else ""
                    raise NlpsuiteError(f"{flag} takes a JSON object{where} ({exc})") from None
            if not isinstance(value, dict):
                raise NlpsuiteError(f"{flag} takes a JSON object")
            return value
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
    # A result made of parts scored one by one (extract: "field"). Then ``measure`` gives one signals row per part,
    # ``outcome`` one class per part, ``finish(result, [(chosen, score) per part])`` gets them all, ``right`` says
    # whether the whole result is right (its ``score``) and ``parts(result, gold, options)`` each part's returned
    # (score, right), for eval's part-level ECE; the model is fitted on the parts.
    per: str | None = None
    parts: Callable[[dict, Any, dict], list[tuple[float, bool]]] | None = None


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
