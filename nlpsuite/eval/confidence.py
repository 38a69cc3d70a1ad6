"""Scores that mean "the probability that this result is right", for tasks whose output is not a label.

A task with a ``Confidence`` recipe (nlpsuite.tasks) first computes a few raw signals per result: the model's
log-probabilities of what it said (length-normalized, as sequence-level confidence is usually measured), of the
alternatives it rejected (``ask``'s "not in the text"), how much of the question the text covers... A
``ConfidenceModel`` turns those signals into probabilities of the recipe's outcomes (``right``/``wrong``; for
``ask``: the answer is right / there is no answer / the answer is wrong), as a multinomial logistic regression
(Platt scaling with several inputs): fitted by ``nlpsuite calibrate`` on labelled data per task and model,
kept only where it beats the current one on held-out examples, and stored beside the label calibrations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import log_softmax, softmax
from . import calibration, signals

MAX_WEIGHT = 1e4  # signals are log-probabilities and shares: a fit gives weights of tens, not thousands
SIGNAL_FLOOR = signals.FLOOR  # a log-probability below this (or a missing one, -inf) counts as this


@dataclass
class ConfidenceModel:
    """``softmax(W @ [signals, 1])`` over ``classes``; the first class's row is fixed at zero."""

    classes: list[str]
    signals: list[str]
    weights: list[list[float]]  # [classes][signals + 1]: the last column is the intercept
    info: dict = field(default_factory=dict)

    def probabilities(self, x) -> np.ndarray:
        """Signals ``[n, signals]`` (or ``[signals]``) -> outcome probabilities of the same leading shape."""
        x = features(x, len(self.signals))
        logits = np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1) @ np.asarray(self.weights).T
        return softmax(logits)

    def to_json(self) -> dict:
        return asdict(self)


def features(x, width: int) -> np.ndarray:
    """Signals as float64, missing and very low log-probabilities floored (a null candidate no span beat)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != width:
        raise NlpsuiteError(f"a confidence model reads {width} signals, got {x.shape[-1]}")
    return np.maximum(np.nan_to_num(x, nan=SIGNAL_FLOOR, neginf=SIGNAL_FLOOR, posinf=-SIGNAL_FLOOR), SIGNAL_FLOOR)


def _design(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def nll(model: ConfidenceModel, x, outcome) -> float:
    """Mean negative log-likelihood of the observed outcomes (class indices) under ``model``."""
    x = features(x, len(model.signals))
    logits = _design(x) @ np.asarray(model.weights).T
    return float(-log_softmax(logits)[np.arange(len(x)), np.asarray(outcome)].mean())


def fit(classes: Sequence[str], signals: Sequence[str], x, outcome, ridge: float = 1e-3) -> ConfidenceModel:
    """Multinomial logistic regression of ``outcome`` (class indices) on the signals ``x`` [n, signals], with an
    L2 penalty ``ridge`` on the slopes (not the intercepts), by damped Newton steps: the penalized NLL is convex."""
    x = features(x, len(signals))
    y = np.asarray(outcome, dtype=np.int64)
    n, k = len(x), len(classes)
    if n == 0:
        raise NlpsuiteError("no examples to fit confidence on")
    design = _design(x)
    # Signals on their own scale: standardized for the fit, mapped back afterwards (same model, better steps).
    mean, scale = design[:, :-1].mean(axis=0), design[:, :-1].std(axis=0)
    scale[scale == 0] = 1.0
    z = np.concatenate([(design[:, :-1] - mean) / scale, design[:, -1:]], axis=1)
    d = z.shape[1]
    onehot = np.eye(k)[y]
    penalty = np.full(d, ridge)
    penalty[-1] = 0.0
    theta = np.zeros((k - 1, d))  # class 0 is the reference

    def loss(t: np.ndarray) -> float:
        logits = np.concatenate([np.zeros((n, 1)), z @ t.T], axis=1)
        return float(-(log_softmax(logits) * onehot).sum() / n + ((t**2) * penalty).sum() / 2)

    def direction(theta: np.ndarray) -> np.ndarray:
        p = softmax(np.concatenate([np.zeros((n, 1)), z @ theta.T], axis=1))[:, 1:]
        grad = ((p - onehot[:, 1:]).T @ z) / n + theta * penalty
        # Hessian blocks (a, b): mean of z z^T (p_a [a == b] - p_a p_b)
        hess = np.empty((k - 1, d, k - 1, d))
        for a in range(k - 1):
            for b in range(k - 1):
                w = p[:, a] * ((a == b) - p[:, b])
                hess[a, :, b, :] = (z * w[:, None]).T @ z / n
            hess[a, :, a, :] += np.diag(penalty)
        flat = hess.reshape((k - 1) * d, (k - 1) * d) + 1e-9 * np.eye((k - 1) * d)
        return np.linalg.lstsq(flat, grad.reshape(-1), rcond=None)[0].reshape(k - 1, d)

    theta = calibration.damped_newton(theta, loss, direction)
    slopes = theta[:, :-1] / scale
    intercepts = theta[:, -1] - slopes @ mean
    weights = np.concatenate([np.zeros((1, d)), np.concatenate([slopes, intercepts[:, None]], axis=1)])
    return ConfidenceModel(list(classes), list(signals), weights.tolist(), {"method": "logistic", "n_fit": n})


def assess(model: ConfidenceModel, x, outcome, right: Callable[[np.ndarray, int], tuple[float, bool]], bins=10):
    """ECE of the delivered scores, accuracy of the delivered results and NLL of the outcomes on examples
    ``x``/``outcome``; ``right(probabilities, outcome) -> (score, whether the delivered result is right)``."""
    probs = model.probabilities(x)
    pairs = [right(p, int(o)) for p, o in zip(probs, outcome, strict=True)]
    scores = np.array([s for s, _ in pairs])
    correct = np.array([c for _, c in pairs], dtype=bool)
    return {
        "ece": calibration.confidence_ece(scores, correct, bins),
        "accuracy": float(correct.mean()),
        "nll": nll(model, x, outcome),
        "mean_score": float(scores.mean()),
    }


def _number(value, limit: float) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and abs(value) <= limit
    )


def checked(data) -> ConfidenceModel:
    """A ConfidenceModel from stored JSON, or ValueError saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    classes, signals, weights = data.get("classes"), data.get("signals"), data.get("weights")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) and c for c in classes)):
        raise ValueError("'classes' must list at least two outcome names")
    if not (isinstance(signals, list) and signals and all(isinstance(s, str) and s for s in signals)):
        raise ValueError("'signals' must list the signal names")
    width = len(signals) + 1
    if not (
        isinstance(weights, list)
        and len(weights) == len(classes)
        and all(isinstance(r, list) and len(r) == width and all(_number(w, MAX_WEIGHT) for w in r) for r in weights)
    ):
        raise ValueError(f"'weights' must hold {len(classes)} rows of {width} numbers, each within ±{MAX_WEIGHT:g}")
    info = data.get("info", {})
    if not isinstance(info, dict):
        raise ValueError("'info' must be a JSON object")
    return ConfidenceModel(list(classes), list(signals), [[float(w) for w in r] for r in weights], info)


def save(model_key: str, precision: str, name: str, model: ConfidenceModel):
    return calibration.save(model_key, precision, name, model)


def load(model_key: str, precision: str, name: str) -> ConfidenceModel | None:
    return calibration.load(model_key, precision, name, checked)


def store_name(task: str, recipe, options: dict) -> str:
    """What a task's fitted confidence model is stored under: its name, and what ``recipe.key`` adds (e.g. the
    target language of a translation, whether answers are generated)."""
    extra = recipe.key(options) if recipe.key else ""
    return f"{task}-{extra}" if extra else task


def model_for(suite, task: str, recipe, options: dict) -> ConfidenceModel:
    """The user's fitted model for this task (and key), else the recipe's built-in one."""
    fitted = load(suite.source.key, suite.precision, store_name(task, recipe, options))
    if fitted is not None:
        if fitted.signals != list(recipe.signals) or fitted.classes != list(recipe.classes):
            raise NlpsuiteError(
                f"the saved confidence model of {task} was fitted for other signals: fit it again with "
                f"'nlpsuite calibrate {task}' (or remove it with --reset)"
            )
        return fitted
    built_in = recipe.default(options) if recipe.default else None
    if built_in is None:
        raise NlpsuiteError(f"{task} has no confidence model: fit one with 'nlpsuite calibrate {task}'")
    return checked(built_in)


def choose(recipe, probs: np.ndarray) -> tuple[int, float]:
    """The outcome a result claims (the likeliest of those it may claim) and its probability: the score."""
    chosen = max(recipe.delivered, key=lambda c: probs[c])
    return chosen, float(probs[chosen])


def table(recipe, measured: list[dict], gold: list, options: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signals [rows, signals], outcomes [rows], the example each row belongs to) of measured results and their
    gold: one row per result, or per part for a recipe of parts (``recipe.per``)."""
    x, y, owner = [], [], []
    for i, (m, g) in enumerate(zip(measured, gold, strict=True)):
        outcome = recipe.outcome(m["result"], g, options)
        rows, outcomes = (m["signals"], outcome) if recipe.per else ([m["signals"]], [outcome])
        if len(rows) != len(outcomes):
            raise NlpsuiteError(f"{len(rows)} signal rows for {len(outcomes)} outcomes of one result")
        x += rows
        y += outcomes
        owner += [i] * len(rows)
    x = np.asarray(x, dtype=np.float64).reshape(len(y), len(recipe.signals))
    return x, np.asarray(y, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def scored(suite, task: str, recipe, inputs: list[dict], options: dict) -> list[dict]:
    """Run a task's ``measure`` and turn each result's signals into its score (what its run() returns)."""
    measured = recipe.measure(suite, inputs, **options)
    if not measured:
        return []
    model = model_for(suite, task, recipe, options)
    if recipe.per:  # each part its own (chosen outcome, score); a result may have none (a cut object)
        done = []
        for m in measured:
            probs = model.probabilities(m["signals"]) if m["signals"] else []
            done.append(recipe.finish(m["result"], [choose(recipe, p) for p in probs]))
        return done
    probs = model.probabilities([m["signals"] for m in measured])
    return [recipe.finish(m["result"], *choose(recipe, p)) for m, p in zip(measured, probs, strict=True)]
