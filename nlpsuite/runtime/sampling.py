"""Turn next-token logits into token ids: greedy, or sampling with temperature, top-k and top-p.

Where an unset sampling field's value comes from, on every route (the CLI, the REPL, every task, Python and HTTP):
**the request** (a field given), **then the model's generation defaults** (its ``generation_config``, kept in the
converted model's manifest), **then the suite's built-in greedy values** (``BUILT_IN``): ``SamplingParams.resolved``.
What values a field may take is written once too (``RANGES``): ``SamplingParams.check`` applies it, and
``nlpsuite.tasks.sampling_options`` declares its options from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import softmax
from .grammar import Grammar

# What a sampling field left as None becomes when neither the request nor the model sets it: greedy.
BUILT_IN = {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}
MAX_LOGPROBS = 20  # top alternatives recorded per token, at most (OpenAI's limit)

# The values each numeric field may take: {field: (least, most, in words)}. Two edges are finer than least..most:
# top_p must be above 0, and a temperature other than 0 at least MIN_TEMPERATURE.
RANGES = {
    "max_tokens": (1, None, "at least 1"),
    "temperature": (0, 100, "0 (greedy) or between 0.0001 and 100"),
    "top_k": (0, None, "0 (off) or positive"),
    "top_p": (0, 1, "in (0, 1]"),
    "repetition_penalty": (0.01, 100, "between 0.01 and 100"),
}
MIN_TEMPERATURE = 1e-4  # below it the scaled logits overflow to inf (NaN probabilities): greedy in all but name


def check_field(name: str, value):
    """``value`` of the sampling field ``name`` (None: unset), or a one-line error in the CLI's words."""
    if value is None:
        return None
    low, high, words = RANGES[name]
    fits = math.isfinite(value) and value >= low and (high is None or value <= high)
    if name == "temperature":
        fits = fits and (value == 0 or value >= MIN_TEMPERATURE)
    elif name == "top_p":
        fits = fits and value > 0
    if not fits:
        raise NlpsuiteError(f"--{name.replace('_', '-')} must be {words}")
    return value


@dataclass
class SamplingParams:
    max_tokens: int = 256
    # None: unset, see resolved(). 0 temperature means greedy.
    temperature: float | None = None
    top_k: int | None = None  # 0 means no limit
    top_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False
    stop_repetition: bool = True  # end a reply that only repeats itself (finish_reason "repetition")
    draft: bool = True  # greedy only: guess tokens from the prompt and verify several per pass (same output)
    logprobs: int | None = None  # record each chosen token's log-probability and this many top alternatives
    grammar: Grammar | None = None  # what every output must match (a JSON schema, a regex...): see grammar.py

    def __post_init__(self) -> None:
        self.stop = list(self.stop or [])  # None (an option left unset) means no stop strings

    def resolved(self, model_defaults: dict | None = None) -> SamplingParams:
        """A copy with every field set, by the one precedence of every route: the field as given (the request),
        else the model's generation defaults (``model_defaults``, from its generation_config), else ``BUILT_IN``."""
        fill = {**BUILT_IN, **{k: v for k, v in (model_defaults or {}).items() if k in BUILT_IN}}
        return dataclasses.replace(self, **{k: fill[k] for k in BUILT_IN if getattr(self, k) is None})

    def check(self) -> None:
        """Every field within RANGES (unset ones pass), and no empty stop string."""
        for name in RANGES:
            check_field(name, getattr(self, name))
        if self.logprobs is not None and not 0 <= self.logprobs <= MAX_LOGPROBS:
            raise NlpsuiteError(f"--logprobs must be from 0 to {MAX_LOGPROBS}")
        if any(not stop for stop in self.stop):
            raise NlpsuiteError("--stop needs a non-empty string")
        if self.grammar is not None:
            self.grammar.check()


class Sampler:
    """Chooses the next token of each sequence in a batch."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params.resolved()
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: np.ndarray, seen: list[list[int]]) -> np.ndarray:
        """logits [batch, vocab]; seen: the prompt and generated ids of each sequence."""
        p = self.params
        logits = logits.astype(np.float64, copy=True)
        if p.repetition_penalty != 1.0:
            for row, ids in zip(logits, seen, strict=True):
                idx = np.unique(np.asarray(ids, dtype=np.int64))
                vals = row[idx]
                row[idx] = np.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
        if p.temperature == 0:
            return logits.argmax(axis=-1)
        logits /= p.temperature
        if p.top_k and p.top_k < logits.shape[-1]:
            kth = np.partition(logits, -p.top_k, axis=-1)[:, -p.top_k][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = softmax(logits)
        if p.top_p < 1.0:
            order = np.argsort(-probs, axis=-1)
            sorted_probs = np.take_along_axis(probs, order, axis=-1)
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            drop_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs >= p.top_p
            drop = np.zeros_like(drop_sorted)
            np.put_along_axis(drop, order, drop_sorted, axis=-1)
            probs = np.where(drop, 0.0, probs)
            probs /= probs.sum(axis=-1, keepdims=True)
        return np.array([self.rng.choice(len(row), p=row) for row in probs])
