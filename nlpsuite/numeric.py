"""Numerically stable softmax family over the last axis, shared by heads, sampling, evaluation and calibration."""

from __future__ import annotations

import numpy as np


def logsumexp(scores: np.ndarray, dtype=None) -> np.ndarray:
    """log(sum(exp(scores))) over the last axis; ``dtype`` sets the precision of the sum."""
    top = scores.max(axis=-1, keepdims=True)
    return np.log(np.exp(scores - top).sum(axis=-1, dtype=dtype)) + top[..., 0]


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(scores))
