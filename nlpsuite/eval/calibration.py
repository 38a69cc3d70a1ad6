"""Probabilities that mean what they say: contextual calibration and temperature scaling.

A label-scoring or probe head produces one raw score per label (a log-likelihood or a logit). A
``Calibration`` turns those scores into probabilities as ``softmax((scores - bias) / temperature)``:
``bias`` is the log of the model's prior for the labels on content-free inputs (contextual
calibration, Zhao et al. 2021) and ``temperature`` is fitted on held-out labelled data by
minimizing the negative log-likelihood (Guo et al. 2017). Fitted parameters are stored per model,
precision and task in the user cache, as JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import atomic_dir_lock, write_json_atomic
from ..numeric import log_softmax, softmax

# Inputs that say nothing: the model's label prior on them is divided out of label scores (contextual
# calibration, Zhao et al. 2021). One set, used wherever a prior is measured.
CONTENT_FREE = ("N/A", "[MASK]", "...")


@dataclass
class Calibration:
    labels: list[str]
    temperature: float = 1.0
    bias: list[float] | None = None  # subtracted from the raw scores before the temperature
    info: dict = field(default_factory=dict)  # how it was fitted: data size, ECE/accuracy before and after

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Raw scores ``[n, labels]`` (or ``[labels]``) -> probabilities of the same shape."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape[-1] != len(self.labels):
            raise NlpsuiteError(f"calibration is for {len(self.labels)} labels, got {scores.shape[-1]} scores")
        if self.bias is not None:
            scores = scores - np.asarray(self.bias)
        return softmax(scores / self.temperature)

    def for_labels(self, labels: list[str]) -> Calibration:
        """The same calibration with its label columns in the order given (same set required)."""
        if sorted(labels) != sorted(self.labels):
            raise NlpsuiteError("calibration was fitted for other labels: " + ", ".join(self.labels))
        order = [self.labels.index(label) for label in labels]
        bias = None if self.bias is None else [self.bias[i] for i in order]
        return Calibration(list(labels), self.temperature, bias, self.info)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        try:
            return checked(data)
        except ValueError as exc:
            raise NlpsuiteError(f"malformed calibration parameters: {exc}") from None


def nll(scores: np.ndarray, gold: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under ``softmax(scores / temperature)``."""
    logp = log_softmax(np.asarray(scores, dtype=np.float64) / temperature)
    return float(-logp[np.arange(len(gold)), gold].mean())


def fit_temperature(scores: np.ndarray, gold: np.ndarray, low: float = 0.01, high: float = 100.0) -> float:
    """The temperature minimizing NLL (golden-section search on log T; NLL is unimodal in it)."""
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if len(scores) == 0:
        raise NlpsuiteError("no examples to fit a temperature on")
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(scores, gold, math.exp(c)), nll(scores, gold, math.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(scores, gold, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(scores, gold, math.exp(d))
    return math.exp((a + b) / 2)


def bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """The equal-width bin of each confidence: bin i holds (i/bins, (i+1)/bins]; exactly 0 joins the first."""
    return np.clip(np.ceil(np.asarray(confidence) * bins - 1e-9).astype(int) - 1, 0, bins - 1)  # edges go left


def confidence_ece(confidence, correct, bins: int = 10) -> float:
    """ECE of confidences read as the probability that each result is right: the sum over equal-width bins of
    |accuracy - mean confidence| x the bin's share of the examples."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        raise NlpsuiteError("no examples to measure calibration on")
    which = bin_index(confidence, bins)
    total = 0.0
    for i in range(bins):
        members = which == i
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    """ECE of the top label: its probability as the confidence that it is the gold one."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold)
    if len(probs) == 0:
        raise NlpsuiteError("no examples to measure calibration on")
    return confidence_ece(probs.max(axis=1), probs.argmax(axis=1) == gold, bins)


def damped_newton(theta, loss, direction, feasible=lambda _t: True, smallest: float = 1e-8, iterations: int = 100):
    """Minimize a convex ``loss`` from ``theta`` along Newton directions ``direction(theta)`` (the step to subtract),
    halving a step until it is ``feasible`` and the loss does not rise; stops when the loss stops falling."""
    current = loss(theta)
    for _ in range(iterations):
        step = direction(theta)
        size = 1.0
        while size > smallest:
            candidate = theta - size * step
            if feasible(candidate) and (value := loss(candidate)) <= current:
                break
            size /= 2
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if improvement < 1e-12:
            break
    return theta


def fit_bias_temperature(scores: np.ndarray, gold: np.ndarray, ridge: float = 1e-4) -> tuple[np.ndarray, float]:
    """The per-label bias and the temperature minimizing NLL together (bias-corrected temperature scaling).

    As ``softmax(a * scores + c)`` the NLL is convex in ``(a, c)`` (a multinomial logistic regression on
    fixed features), so damped Newton steps find the optimum; ``c[0] = 0`` pins the softmax's free shift
    and a small ridge on ``c`` keeps it finite when a label is never the gold one.
    """
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    n, k = scores.shape
    onehot = np.eye(k)[gold]

    def loss(theta: np.ndarray) -> float:
        logits = theta[0] * scores + np.concatenate([[0.0], theta[1:]])
        return float(-(log_softmax(logits) * onehot).sum() / n + ridge * (theta[1:] ** 2).sum() / 2)

    theta = np.zeros(k)
    theta[0] = 1.0

    def direction(theta: np.ndarray) -> np.ndarray:
        p = softmax(theta[0] * scores + np.concatenate([[0.0], theta[1:]]))
        r = p - onehot
        grad = np.concatenate([[(r * scores).sum() / n], r[:, 1:].sum(axis=0) / n + ridge * theta[1:]])
        # Hessian: the mean covariance, under p, of each example's features (its score, then the label indicators)
        mean_s = (p * scores).sum(axis=1)
        hess = np.empty((k, k))
        hess[0, 0] = ((p * scores**2).sum(axis=1) - mean_s**2).mean()
        hess[0, 1:] = hess[1:, 0] = (p[:, 1:] * (scores[:, 1:] - mean_s[:, None])).mean(axis=0)
        hess[1:, 1:] = np.diag(p[:, 1:].mean(axis=0)) - (p[:, 1:, None] * p[:, None, 1:]).mean(axis=0)
        hess[1:, 1:] += ridge * np.eye(k - 1)
        return np.linalg.lstsq(hess, grad, rcond=None)[0]

    theta = damped_newton(theta, loss, direction, feasible=lambda t: t[0] > 1e-2, smallest=1e-6)
    return np.concatenate([[0.0], -theta[1:] / theta[0]]), 1.0 / theta[0]


def fit(labels: list[str], scores: np.ndarray, gold: np.ndarray) -> Calibration:
    """Calibration for ``scores`` [n, labels] with gold indices ``gold``: temperature scaling alone, or with a
    per-label bias fitted on these examples, whichever has the lowest Akaike information criterion (NLL plus
    one per fitted parameter: a fitted bias must earn its extra parameters)."""
    scores, gold = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    if len(scores) == 0:
        raise NlpsuiteError("no examples to fit calibration on")
    candidates: list[tuple[str, np.ndarray | None, float, int]] = [
        ("temperature", None, fit_temperature(scores, gold), 1)
    ]
    bias, temperature = fit_bias_temperature(scores, gold)
    candidates.append(("bias+temperature", bias, temperature, scores.shape[1]))

    def aic(candidate) -> float:
        _, bias, temperature, params = candidate
        shifted = scores if bias is None else scores - bias
        return 2 * params + 2 * len(gold) * nll(shifted, gold, temperature)

    method, bias, temperature, _ = min(candidates, key=aic)
    return Calibration(list(labels), temperature, None if bias is None else bias.tolist(), {"method": method})


def assess(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> dict:
    """ECE, accuracy and mean NLL of probabilities ``[n, labels]`` against gold indices."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold, dtype=np.int64)
    picked = np.clip(probs[np.arange(len(gold)), gold], 1e-12, 1.0)
    return {
        "ece": expected_calibration_error(probs, gold, bins),
        "accuracy": float((probs.argmax(axis=1) == gold).mean()),
        "nll": float(-np.log(picked).mean()),
    }


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._") or "_"


def task_key(task: str, labels: list[str] | None = None, head: str | None = None) -> str:
    """The name a task's calibration is stored under: one per label set (in any order) or probe head."""
    if head:
        return f"{task}-head-{head}"
    if not labels:
        return task
    digest = hashlib.sha1("\n".join(sorted(labels)).encode("utf-8")).hexdigest()[:12]
    return f"{task}-{digest}"


def path(model_key: str, precision: str, name: str) -> Path:
    """Where the calibration of task ``name`` for a model lives (beside the user's other nlpsuite data)."""
    return config.home() / "calibration" / _safe(model_key) / _safe(precision) / f"{_safe(name)}.json"


def remove(
    model_key: str, precision: str, task: str, labels: list[str] | None = None, head: str | None = None, exact=False
):
    """Delete saved calibrations of ``task`` (one label set or probe head, or all of them; ``exact``: the one stored
    under that very name); the removed paths."""
    folder = path(model_key, precision, task).parent
    if exact:
        targets = [path(model_key, precision, task)]
    elif labels or head:
        targets = [path(model_key, precision, task_key(task, labels, head))]
    else:
        targets = [f for f in folder.glob("*.json") if f.stem == _safe(task) or f.stem.startswith(_safe(task) + "-")]
    removed = []
    for target in targets:
        with atomic_dir_lock(target):
            if target.exists():
                target.unlink()
                removed.append(target)
    return removed


def save(model_key: str, precision: str, name: str, fitted) -> Path:
    """Store a fitted calibration (anything with ``to_json()``: a Calibration, a confidence model)."""
    target = path(model_key, precision, name)
    with atomic_dir_lock(target):
        write_json_atomic(target, fitted.to_json())
    return target


MAX_FILE_BYTES = 1 << 20  # a calibration is a few numbers per label
TEMPERATURES = (1e-4, 1e4)  # fits land in [0.01, 100]; outside this range probabilities are 0/1 or uniform
MAX_BIAS = 1e4  # label scores are log-likelihoods or logits: tens, not thousands


def _number(value, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high  # NaN: False


def checked(data) -> Calibration:
    """A Calibration from stored JSON, or ValueError saying what is wrong: distinct label names, a temperature
    and biases in a range a fit can produce, so that every probability computed from it is finite."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    labels = data.get("labels")
    if not (isinstance(labels, list) and len(labels) >= 2 and all(isinstance(x, str) and x for x in labels)):
        raise ValueError("'labels' must list at least two label names")
    if len(set(labels)) != len(labels):
        raise ValueError("'labels' repeats a label")
    temperature = data.get("temperature")
    if not _number(temperature, *TEMPERATURES):
        raise ValueError(f"'temperature' must be a number from {TEMPERATURES[0]:g} to {TEMPERATURES[1]:g}")
    bias = data.get("bias")
    if bias is not None and not (
        isinstance(bias, list) and len(bias) == len(labels) and all(_number(b, -MAX_BIAS, MAX_BIAS) for b in bias)
    ):
        raise ValueError(f"'bias' must hold one number per label, each within ±{MAX_BIAS:g}")
    info = data.get("info", {})
    if not isinstance(info, dict):
        raise ValueError("'info' must be a JSON object")
    return Calibration(list(labels), float(temperature), None if bias is None else [float(b) for b in bias], info)


def load(model_key: str, precision: str, name: str, parse=None):
    """The stored calibration (read by ``parse``, default: a label Calibration), None when there is none; a
    damaged file is a one-line error naming it."""
    target = path(model_key, precision, name)
    try:
        if target.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"it is larger than {MAX_FILE_BYTES} bytes")
        return (parse or checked)(json.loads(target.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NlpsuiteError(f"cannot read calibration {target}: {exc.strerror or exc}") from None
    except ValueError as exc:  # also bad UTF-8 and bad JSON
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NlpsuiteError(
            f"calibration file {target} is damaged ({why}); delete it, or fit it again with 'nlpsuite calibrate'"
        ) from None
