"""Cross-entropy and perplexity of any backbone on a text, in sliding windows through ONNX Runtime.

A text longer than the window is scored in windows that start every ``stride`` tokens; each window
scores only the tokens no earlier window scored, so every token is scored once and (after the first
window) with at least ``window - stride`` tokens of context. The first token is scored only when the
tokenizer puts a beginning-of-text token before it; otherwise there is nothing to predict it from.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import logsumexp
from ..records import Progress, no_progress
from ..runtime.backbone import left_pad

LOGITS_BUDGET = 2**23  # floats of logits held at once (32 MB): sets the batch size


def window_spans(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored target) for each window over ``n_tokens`` tokens; targets start at 1."""
    if window < 2:
        raise NlpsuiteError("the window must be at least 2 tokens")
    if not 1 <= stride < window:  # a stride of a whole window would leave each window's first token unscored
        raise NlpsuiteError(f"the stride must be at least 1 and less than the window ({window} tokens)")
    spans, begin, scored = [], 0, 1
    while True:
        end = min(begin + window, n_tokens)
        spans.append((begin, end, max(scored, begin + 1)))
        scored = end
        if end >= n_tokens:
            return spans
        begin += stride


def _encode(tokenizer, text: str) -> tuple[list[int], int, int]:
    """Token ids, the index of the first scored token and the characters its scored tokens cover."""
    plain = tokenizer.encode(text, add_special_tokens=False)
    full = tokenizer.encode(text, add_special_tokens=True)
    for lead in range(1, len(full) - len(plain) + 1):  # a BOS-like prefix: every text token can be scored
        if plain and full[lead : lead + len(plain)] == plain:
            return full[: lead + len(plain)], lead, len(text)
    if len(plain) < 2:
        raise NlpsuiteError("the text is too short to score: it needs at least two tokens")
    return plain, 1, len(text) - len(tokenizer.decode(plain[:1]))


def _log_softmax_at(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits)[i, targets[i]] for each row, summed in float64."""
    return logits[np.arange(len(targets)), targets].astype(np.float64) - logsumexp(logits, dtype=np.float64)


def cross_entropy(
    backbone,
    tokenizer,
    text: str,
    window: int = 512,
    stride: int = 256,
    batch_size: int | None = None,
    progress: Progress = no_progress,
) -> dict:
    """``{"nats_per_token", "bits_per_char", "perplexity", "tokens", "chars"}`` of ``text`` under ``backbone``.

    ``window`` is capped at the backbone's context; ``progress`` follows the tokens scored.
    """
    ids, first, chars = _encode(tokenizer, text)
    window = min(window, backbone.context_length)
    spans = window_spans(len(ids), window, min(stride, window - 1))
    spans = [(b, e, max(f, first)) for b, e, f in spans if e > max(f, first)]
    vocab = backbone.vocab_size
    batch_size = batch_size or max(1, LOGITS_BUDGET // (window * vocab))
    total, scored = 0.0, 0
    goal = len(ids) - first
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for span in spans:  # equal lengths batch together without padding
        groups.setdefault(span[1] - span[0], []).append(span)
    for length, group in groups.items():
        for at in range(0, len(group), batch_size):
            batch = group[at : at + batch_size]
            tokens, mask, positions = left_pad([ids[b:e] for b, e, _ in batch], 0)  # equal lengths: no padding
            step = backbone.forward(tokens, mask, positions, backbone.empty_state(len(batch)), length, want_state=False)
            for row, (begin, end, target) in enumerate(batch):
                logits = step.logits[row, target - 1 - begin : end - 1 - begin]
                total -= float(_log_softmax_at(logits, np.asarray(ids[target:end])).sum())
            progress(sum(end - target for _, end, target in batch), goal)
            scored += sum(end - target for _, end, target in batch)
    nats = total / scored
    return {
        "nats_per_token": nats,
        "bits_per_char": total / math.log(2) / max(chars, 1),
        "perplexity": math.exp(nats),
        "tokens": scored,
        "chars": chars,
    }
