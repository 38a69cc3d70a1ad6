"""`nlpsuite eval`: run any task that declares an eval recipe over labelled data, and score what it returns.

The recipe (nlpsuite.tasks.Eval) names the data columns, how the gold side is read and how predictions
are scored (see metrics.py for the definitions and scales); predictions come in batches through the
public Suite API. Data files are checked whole before any model is loaded: a bad file fails in a second.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import fsutil
from ..errors import Interrupted, NlpsuiteError
from ..records import Progress, document_list, no_progress, read_records, text_field
from ..tasks import LABEL_EVAL, Option, Task
from ..text import blank
from . import metrics

LABEL_OPTIONS = LABEL_EVAL  # the reliability diagram and its bins: every task with calibrated scores has them
LM = "lm"  # the language-model evaluation: a text file, not a task's labelled data


def recipes(tasks: dict[str, Task]) -> dict[str, Task]:
    """Every task that declares an eval recipe, by the name eval knows it by."""
    return {t.eval.name: t for t in tasks.values() if t.eval is not None}


def find(tasks: dict[str, Task], name: str) -> Task:
    """The task ``nlpsuite eval NAME`` means: by its recipe's name, or by the task's own."""
    found = recipes(tasks)
    task = found.get(name) or (tasks[name] if name in tasks and tasks[name].eval else None)
    if task is None:
        raise NlpsuiteError(f"unknown task {name!r} (choose from: {', '.join([*found, LM])})")
    return task


# --- the label tasks' recipe parts (sentiment, classification, and any third-party label task) ---------------


def check_labels(gold: Sequence[str], predictions: list[dict]) -> None:
    """Gold labels the task cannot produce fail on the first batch, not after the last."""
    require_labels(gold, list(predictions[0]["scores"]))


def require_labels(gold: Sequence[str], names: Sequence[str]) -> None:
    outside = sorted(set(gold) - set(names))
    if outside:
        raise NlpsuiteError(
            f"labels in the data that the task does not produce: {', '.join(outside)} (it produces: {', '.join(names)})"
        )


def score_labels(predictions: list[dict], gold: list[str], options: dict) -> dict:
    check_labels(gold, predictions)
    names = list(predictions[0]["scores"])  # the label order the task scored in
    predicted = [p["label"] for p in predictions]
    probs = np.array([[p["scores"][name] for name in names] for p in predictions], dtype=np.float64)
    gold_index = np.array([names.index(g) for g in gold])
    labels = sorted(set(gold) | set(predicted))
    bins = options.get("bins", 10)
    result = {
        "accuracy": metrics.accuracy(gold, predicted),
        "macro_f1": metrics.macro_f1(gold, predicted),
        "ece": metrics.ece(probs, gold_index, bins),
        "per_class": metrics.per_class(gold, predicted, labels),
        "confusion_matrix": {"labels": labels, "matrix": metrics.confusion_matrix(gold, predicted, labels).tolist()},
    }
    if options.get("reliability") is not None:
        metrics.reliability_diagram(probs, gold_index, options["reliability"], bins, "reliability")
        result["reliability_png"] = str(options["reliability"])
    return result


# --- the runner ------------------------------------------------------------------------------------------------


def eval_options(task: Task) -> list[Option]:
    """The options ``nlpsuite eval`` takes for a task: its recipe's, then the task's own it does not set."""
    recipe = task.eval
    added = [o for o in LABEL_OPTIONS if task.confidence is not None and o.name not in {r.name for r in recipe.options}]
    own = {o.name for o in [*recipe.options, *added]} | set(recipe.sets)
    return [*recipe.options, *added, *(o for o in task.options if o.name not in own)]


def check_options(task: Task, given: dict) -> dict:
    """Every eval option of ``task``, checked, with its default (errors that need no data or model)."""
    return {o.name: o.check(given.get(o.name, o.default)) for o in eval_options(task)}


def evaluate(
    task: Task,
    data: Path,
    open_suite: Callable[[], object],
    options: dict,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Progress = no_progress,
    done: list[dict] | None = None,
    on_batch: Callable[[list, list], None] | None = None,
) -> dict:
    """``{"task", "n", "metrics"}``. ``progress`` follows the examples; ``done`` holds the
    ``{"input", "prediction"}`` records of an earlier, interrupted run, which resumes after them;
    ``on_batch(inputs, predictions)`` sees each new batch as soon as it is predicted."""
    recipe = task.eval
    _check_counts(limit, batch_size)
    inputs, gold, options = read_examples(task, data, options, limit)
    predictions = _resumed(done or [], inputs)
    if len(predictions) < len(inputs):  # a finished predictions file is scored without the model
        progress(len(predictions), len(inputs))
        suite = open_suite()
        setup = recipe.setup(suite, options) if recipe.setup else contextlib.nullcontext(options)
        with setup as ready:
            try:
                for start in range(len(predictions), len(inputs), batch_size):
                    batch = inputs[start : start + batch_size]
                    new = _predict(task, suite, batch, ready)
                    if len(new) != len(batch):
                        raise NlpsuiteError(f"{task.name} returned {len(new)} results for {len(batch)} inputs")
                    if recipe.check and not predictions:
                        recipe.check(gold, new)
                    predictions.extend(new)
                    if on_batch:
                        on_batch(batch, new)
                    progress(len(batch))
            except KeyboardInterrupt:  # how far it got: the CLI says where they are kept and how to resume
                raise Interrupted(f"{len(predictions)} of {len(inputs)} predictions") from None
    return {"task": recipe.name, "n": len(inputs), "metrics": _metrics(task, predictions, gold, options)}


def _metrics(task: Task, predictions: list, gold: list, options: dict) -> dict:
    recipe = task.eval
    if task.confidence is None:
        return recipe.score(predictions, gold, options)
    # Whole results were kept: the scored field for the task's metrics, the score and its rightness for ECE.
    values = [task.result(p)[recipe.field] if recipe.field else task.result(p) for p in predictions]
    found = recipe.score(values, gold, options)
    own = {o.name: options.get(o.name) for o in task.options}
    right = [task.confidence.right(p, g, own) for p, g in zip(predictions, gold, strict=True)]
    found.update(score_calibration([p["score"] for p in predictions], right, options, recipe.name))
    if task.confidence.parts:  # each part's own score too (extract: per field), without a second diagram
        parts = [pair for p, g in zip(predictions, gold, strict=True) for pair in task.confidence.parts(p, g, own)]
        if parts:
            per = score_calibration([s for s, _ in parts], [r for _, r in parts], {**options, "reliability": None}, "")
            found.update({f"{task.confidence.per}_{k}": v for k, v in per.items()})
    return found


def evaluate_examples(task: Task, inputs: list[dict], gold: list, open_suite, options: dict, batch_size: int = 8,
                      progress: Progress = no_progress) -> dict:  # fmt: skip
    """The task's eval metrics on examples already read (``nlpsuite tune``'s held-out part)."""
    options = check_options(task, options)
    if task.eval.prepare:
        options = task.eval.prepare(gold, options, Path("held-out examples"))
    suite = open_suite()
    predictions = []
    setup = task.eval.setup(suite, options) if task.eval.setup else contextlib.nullcontext(options)
    with setup as ready:
        for start in range(0, len(inputs), batch_size):
            new = _predict(task, suite, inputs[start : start + batch_size], ready)
            predictions.extend(new)
            progress(len(new))
    return _metrics(task, predictions, gold, options)


def read_examples(task: Task, data: Path, options: dict, limit: int | None) -> tuple[list[dict], list, dict]:
    """(task inputs, gold, options) of labelled data as the task's eval recipe reads it; checked whole first."""
    recipe = task.eval
    rows = read_records(data, [*recipe.columns.values(), recipe.gold])[:limit]
    many = {i.name for i in task.inputs if i.many}  # a list of documents, not one text
    inputs = [{name: (documents_field if name in many else text_field)(data, n, r, column)
               for name, column in recipe.columns.items()} for n, r in rows]  # fmt: skip
    gold = [(recipe.read_gold or text_field)(data, n, r, recipe.gold) for n, r in rows]
    if recipe.prepare:
        options = recipe.prepare(gold, options, data)
    if task.check:
        task.check({o.name: options.get(o.name) for o in task.options}, {}, True)
    return inputs, gold, options


def score_calibration(scores: Sequence[float], right: Sequence[bool], options: dict, title: str) -> dict:
    """How well scores read as "the probability that the result is right" hold: ECE, the share right, the mean
    score, and the reliability diagram where ``options["reliability"]`` names its PNG."""
    bins = options.get("bins", 10)
    result = {
        "ece": metrics.confidence_ece(scores, right, bins),
        "right": float(np.mean(right)),
        "mean_score": float(np.mean(scores)),
    }
    if options.get("reliability") is not None:
        metrics.confidence_diagram(scores, right, options["reliability"], bins, f"{title}: score vs right")
        result["reliability_png"] = str(options["reliability"])
    return result


def documents_field(path: Path, line: int, record: dict, column: str):
    """``record[column]`` checked as ``document_list`` reads it, and given back as it is (ids stay the data's)."""
    if record.get(column) is None:
        raise NlpsuiteError(f"{path}:{line}: no value for {column!r}")
    document_list(record[column], f"{path}:{line}: {column}")
    return record[column]


def _predict(task: Task, suite, batch: list[dict], options: dict) -> list:
    recipe = task.eval
    if recipe.predict:
        return list(recipe.predict(suite, batch, options))
    head, *rest = (i.name for i in task.inputs)
    others = {name: [i.get(name) for i in batch] for name in rest if any(name in i for i in batch)}
    own = {o.name: options[o.name] for o in task.options if o.name in options}
    if task.confidence is not None:  # whole results: their scores are measured too
        return suite.task(task.name).run_records(suite, [i[head] for i in batch], **others, **own)
    done = suite.run(task.name, [i[head] for i in batch], **others, **own)
    return [d[recipe.field] for d in done] if recipe.field else list(done)


def _check_counts(limit: int | None, batch_size: int) -> None:
    if limit is not None and limit < 1:
        raise NlpsuiteError("--limit must be at least 1")
    if batch_size < 1:
        raise NlpsuiteError("--batch-size must be at least 1")


def _resumed(done: list[dict], inputs: list) -> list:
    """The predictions of an earlier run, if they were made on these very inputs, in this order."""
    if len(done) > len(inputs):
        raise NlpsuiteError(f"the saved predictions ({len(done)}) outnumber the examples ({len(inputs)})")
    for i, record in enumerate(done):
        if not isinstance(record, dict) or "prediction" not in record:
            raise NlpsuiteError(f"saved prediction {i + 1} is not an {{input, prediction}} record")
        if record.get("input") != json.loads(json.dumps(inputs[i])):
            raise NlpsuiteError(f"saved prediction {i + 1} is for another input: that file is not this run's")
    return [record["prediction"] for record in done]


def evaluate_lm(
    data: Path,
    open_suite: Callable[[], object],
    window: int | None = None,
    stride: int | None = None,
    limit: int | None = None,
    progress: Progress = no_progress,
) -> dict:
    """Cross-entropy (nats/token), perplexity and bits/char of the suite's backbone on a text file
    (``limit``: its first lines); ``progress`` follows the tokens scored."""
    from .lm import cross_entropy

    _check_counts(limit, 1)
    if window is not None and window < 2:
        raise NlpsuiteError("--window must be at least 2 tokens")
    if stride is not None and stride < 1:
        raise NlpsuiteError("--stride must be at least 1")
    if stride is not None and window is not None and stride > window:
        raise NlpsuiteError("--stride must not exceed --window")
    text = fsutil.read_utf8(data).removeprefix("\ufeff")  # a byte-order mark is no text to score
    if limit is not None:
        text = "".join(text.splitlines(keepends=True)[:limit])
    if blank(text):
        raise NlpsuiteError(f"{data} holds no text")
    windows = {}
    if window is not None:
        windows = {"window": window, "stride": stride or max(1, window // 2)}
    elif stride is not None:
        windows = {"stride": stride}
    suite = open_suite()
    result = cross_entropy(suite.backbone, suite.tokenizer, text, **windows, progress=progress)
    return {
        "task": "lm",
        "n": int(result["tokens"]),
        "metrics": {
            "cross_entropy": result["nats_per_token"],
            "perplexity": result["perplexity"],
            "bits_per_char": result["bits_per_char"],
            "tokens": result["tokens"],
            "chars": result["chars"],
        },
    }
