"""`nlpsuite calibrate`: fit a label task's calibration on a seeded split of labelled data and keep it only where
it is better on the held-out part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import NlpsuiteError
from ..records import Progress, no_progress, read_records, text_field
from ..tasks import Task
from .run import _check_counts, read_examples, require_labels

# Fewer examples of a label than this in the fit part, and a fit can make every later probability 1.000
# (30 easily separated rows gave temperature 0.036): calibrate refuses rather than save such a fit.
MIN_PER_LABEL = 10


def _enough_per_label(fit_gold: list[str], data: Path, holdout: float) -> None:
    counts = {label: fit_gold.count(label) for label in sorted(set(fit_gold))}
    short = {label: n for label, n in counts.items() if n < MIN_PER_LABEL}
    if short:
        label, n = next(iter(short.items()))
        raise NlpsuiteError(
            f"calibrate needs at least {MIN_PER_LABEL} examples of each label to fit on; the fit part of {data} "
            f"({1 - holdout:.0%} of it) has {n} of {label!r}: add examples or lower --holdout"
        )


def calibrated_tasks(tasks: dict[str, Task]) -> dict[str, Task]:
    """Tasks whose scores calibrate can fit (label scores, or a confidence recipe with an eval recipe to read the
    data), by eval name and by task name."""
    fits = [t for t in tasks.values() if t.scores is not None or (t.confidence is not None and t.eval is not None)]
    found = {t.eval.name if t.eval else t.name: t for t in fits}
    return {**found, **{t.name: t for t in found.values()}}


def _labels(task: Task, labels: list[str] | None, head: str | None, gold: list[str], data: Path) -> list[str] | None:
    """The labels to score: those given (the data's must be among them), else for a task that takes labels the
    data's own, else the task's (None)."""
    if labels is not None:
        if len(set(labels)) < 2 or len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
            raise NlpsuiteError("--labels needs at least two distinct, non-empty labels")
        outside = sorted(set(gold) - set(labels))
        if outside:
            raise NlpsuiteError(f"labels in the data not among --labels: {', '.join(outside)}")
    elif task.option("labels") is not None and head is None:
        labels = sorted(set(gold))
        if len(labels) < 2:
            raise NlpsuiteError(f"{data}: classification needs at least two distinct labels in the data")
    return labels


def _scores(suite, task: Task, texts, gold, labels, head, batch_size: int, progress: Progress):
    """(label names, raw scores [n, labels] as float64) of every text, a batch at a time."""
    progress(0, len(texts))
    names: list[str] | None = None
    chunks = []
    for start in range(0, len(texts), batch_size):
        got, scores = suite.label_scores(task.name, texts[start : start + batch_size], labels, head)
        if names is None:
            names = list(got)
            require_labels(gold, names)
        elif list(got) != names:
            raise NlpsuiteError(f"{task.name} changed its labels between batches")
        chunks.append(np.asarray(scores, dtype=np.float64))
        progress(len(chunks[-1]))
    return names, np.concatenate(chunks)


def calibrate(
    task: Task,
    data: Path,
    open_suite: Callable[[], object],
    labels: list[str] | None = None,
    head: str | None = None,
    holdout: float = 0.5,
    seed: int = 0,
    batch_size: int = 8,
    bins: int = 10,
    progress: Progress = no_progress,
    limit: int | None = None,
) -> dict:
    """Fit calibration on a seeded split of labelled data, measure it on the held-out rest, and save it
    with the model for later ``sentiment``/``classify`` runs."""
    from . import calibration

    if not 0 < holdout < 1:
        raise NlpsuiteError("--holdout must be between 0 and 1 (the share of the data held out)")
    _check_counts(limit, batch_size)
    rows = read_records(data, ("text", "label"))[:limit]
    texts = [text_field(data, n, r, "text") for n, r in rows]
    gold = [text_field(data, n, r, "label") for n, r in rows]
    labels = _labels(task, labels, head, gold, data)
    held, fit_part = _split(len(texts), holdout, seed, data)
    _enough_per_label([gold[i] for i in fit_part], data, holdout)

    suite = open_suite()
    names, scores = _scores(suite, task, texts, gold, labels, head, batch_size, progress)
    gold_index = np.array([names.index(g) for g in gold])
    # The label scores already have the model's content-free prior divided out where the task uses one
    # (Task.scores): the fit adds a temperature, and a per-label bias only where it earns its parameters.
    fitted = calibration.fit(names, scores[fit_part], gold_index[fit_part])
    before = calibration.assess(calibration.softmax(scores[held]), gold_index[held], bins)
    after = calibration.assess(fitted.apply(scores[held]), gold_index[held], bins)
    if after["nll"] > before["nll"]:  # a fit that does not carry over to unseen examples is not kept
        raise NlpsuiteError(
            f"the fitted calibration is worse on the held-out examples (NLL {before['nll']:.3f} -> "
            f"{after['nll']:.3f}): nothing saved; fit on more data"
        )
    fitted.info.update(
        n_fit=len(fit_part), n_heldout=len(held), seed=seed, holdout=holdout, before=before, after=after, data=str(data)
    )
    if task.scoring and not head:  # which scores it was fitted on: the task refuses it once they are made otherwise
        fitted.info["scoring"] = task.scoring
    key = calibration.task_key(task.name, names, head)  # what the task looks up: its labels, or its probe head
    saved = calibration.save(suite.source.key, suite.backbone.precision, key, fitted)
    return {
        "task": task.eval.name if task.eval else task.name,
        "model": suite.source.key,
        "labels": names,
        "n_fit": len(fit_part),
        "n_heldout": len(held),
        "rows": "examples",  # what n_fit and n_heldout count
        "method": fitted.info["method"],
        "temperature": fitted.temperature,
        "bias": fitted.bias,
        "before": before,
        "after": after,
        "saved": str(saved),
    }


def _split(n: int, holdout: float, seed: int, data: Path) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < holdout < 1:
        raise NlpsuiteError("--holdout must be between 0 and 1 (the share of the data held out)")
    held_n = round(n * holdout)
    if held_n < 1 or held_n >= n:
        raise NlpsuiteError(f"{data} has {n} examples: too few to hold out {holdout:g} and fit on the rest")
    order = np.random.default_rng(seed).permutation(n)
    return order[:held_n], order[held_n:]


def calibrate_confidence(
    task: Task,
    data: Path,
    open_suite: Callable[[], object],
    options: dict,
    holdout: float = 0.5,
    seed: int = 0,
    batch_size: int = 8,
    bins: int = 10,
    progress: Progress = no_progress,
    limit: int | None = None,
) -> dict:
    """Fit what a task's score means (its confidence recipe's model of the outcomes) on a seeded split of the
    data ``nlpsuite eval`` reads for it, measure it against the current model on the held-out rest, and save it
    for the model only where it is better there."""
    from . import confidence

    recipe = task.confidence
    _check_counts(limit, batch_size)
    if not 0 < holdout < 1:  # before the data is read
        raise NlpsuiteError("--holdout must be between 0 and 1 (the share of the data held out)")
    inputs, gold, options = read_examples(task, data, options, limit)
    held, fit_part = _split(len(inputs), holdout, seed, data)
    own = {o.name: options.get(o.name) for o in task.options}
    suite = open_suite()
    progress(0, len(inputs))
    measured = []
    for start in range(0, len(inputs), batch_size):
        measured += recipe.measure(suite, inputs[start : start + batch_size], **own)
        progress(len(inputs[start : start + batch_size]))
    x, y, owner = confidence.table(recipe, measured, gold, own)
    # the split is of examples: a result's parts (extract's fields) are fitted or held out together
    held, fit_part = np.flatnonzero(np.isin(owner, held)), np.flatnonzero(np.isin(owner, fit_part))
    _enough_per_outcome([recipe.classes[i] for i in y[fit_part]], recipe.classes, data, holdout)
    current = confidence.model_for(suite, task.name, recipe, own)

    def right(probs, happened):
        chosen, score = confidence.choose(recipe, probs)
        return score, chosen == happened

    fitted = confidence.fit(recipe.classes, recipe.signals, x[fit_part], y[fit_part])
    before = confidence.assess(current, x[held], y[held], right, bins)
    after = confidence.assess(fitted, x[held], y[held], right, bins)
    if after["nll"] > before["nll"]:
        raise NlpsuiteError(
            f"the fitted confidence is worse on the held-out examples (NLL {before['nll']:.3f} -> "
            f"{after['nll']:.3f}): nothing saved; fit on more data"
        )
    counts = {c: int((y == i).sum()) for i, c in enumerate(recipe.classes)}
    fitted.info.update(
        n_fit=len(fit_part), n_heldout=len(held), seed=seed, holdout=holdout, before=before, after=after,
        data=str(data), outcomes=counts,
    )  # fmt: skip
    name = confidence.store_name(task.name, recipe, own)
    saved = confidence.save(suite.source.key, suite.backbone.precision, name, fitted)
    return {
        "task": task.eval.name if task.eval else task.name,
        "model": suite.source.key,
        "meaning": recipe.meaning,
        "outcomes": counts,
        "n_fit": len(fit_part),
        "n_heldout": len(held),
        "rows": f"{recipe.per}s" if recipe.per else "examples",  # what n_fit and n_heldout count
        "method": fitted.info["method"],
        "weights": fitted.weights,
        "before": before,
        "after": after,
        "saved": str(saved),
    }


def _enough_per_outcome(happened: list[str], classes, data: Path, holdout: float) -> None:
    for name in classes:
        n = happened.count(name)
        if n < MIN_PER_LABEL:
            raise NlpsuiteError(
                f"calibrate needs at least {MIN_PER_LABEL} examples of each outcome to fit on; the fit part of {data} "
                f"({1 - holdout:.0%} of it) has {n} where {name!r}: add examples or lower --holdout"
            )
