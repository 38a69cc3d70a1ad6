"""Turn next-token logits into token ids: greedy, or sampling with temperature, top-k and top-p."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import softmax
from .grammar import Grammar

# What a sampling field left as None becomes when the model ships no generation defaults: greedy.
BUILT_IN = {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}


@dataclass
class SamplingParams:
    max_tokens: int = 256
    # None: the model's own default (its generation_config), else BUILT_IN. 0 temperature means greedy.
    temperature: float | None = None
    top_k: int | None = None  # 0 means no limit
    top_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    ignore_eos: bool = False
    stop_repetition: bool = True  # end a reply that only repeats itself (finish_reason "repetition")
    draft: bool = True  # greedy only: guess tokens from the prompt and verify several per pass (same output)
    grammar: Grammar | None = None  # what every output must match (a JSON schema, a regex...): see grammar.py

    def __post_init__(self) -> None:
        self.stop = list(self.stop or [])  # None (an option left unset) means no stop strings

    def resolved(self, model_defaults: dict | None = None) -> SamplingParams:
        """A copy whose unset fields take the model's generation defaults, else the built-in (greedy) ones."""
        fill = {**BUILT_IN, **{k: v for k, v in (model_defaults or {}).items() if k in BUILT_IN}}
        return dataclasses.replace(self, **{k: fill[k] for k in BUILT_IN if getattr(self, k) is None})

    def check(self) -> None:
        if any(getattr(self, k) is None for k in BUILT_IN):
            self.resolved().check()
            return
        if self.max_tokens < 1:
            raise NlpsuiteError("--max-tokens must be at least 1")
        # Below 1e-4 the scaled logits overflow to inf (NaN probabilities): that is greedy in all but name.
        if not (math.isfinite(self.temperature) and (self.temperature == 0 or 1e-4 <= self.temperature <= 100)):
            raise NlpsuiteError("--temperature must be 0 (greedy) or between 0.0001 and 100")
        if self.top_k < 0:
            raise NlpsuiteError("--top-k must be 0 (off) or positive")
        if not 0 < self.top_p <= 1:  # also false for NaN
            raise NlpsuiteError("--top-p must be in (0, 1]")
        if not (math.isfinite(self.repetition_penalty) and 0.01 <= self.repetition_penalty <= 100):
            raise NlpsuiteError("--repetition-penalty must be between 0.01 and 100")
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
