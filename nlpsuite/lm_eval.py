"""Language-model cross-entropy of a backbone on a text, in sliding windows over long texts.

TEMPORARY minimal implementation (branch ``evalcal``): the ``train`` branch owns this module; at merge
its version replaces this one. ``nlpsuite eval lm`` relies only on the shared interface:
``cross_entropy(backbone, tokenizer, text, window=, stride=, on_progress=)`` returning
``{"nats_per_token", "bits_per_char", "perplexity", "tokens", "chars"}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import NlpsuiteError


def _log_probs_of(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits)[target] per row, without materializing the whole log-softmax."""
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1)
    log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=-1))
    return logits[np.arange(len(targets)), targets] - log_z


def cross_entropy(
    backbone,
    tokenizer,
    text: str,
    window: int = 512,
    stride: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Cross-entropy of ``text``'s tokens, each after the ones before it, scored in windows of ``window``
    tokens (capped at the context) that start every ``stride`` tokens: every token is scored once, with at
    least ``window - stride`` tokens of context after the first window. The first token has no context and
    is not scored. ``on_progress(scored, total)`` follows the windows."""
    window = min(window, backbone.context_length)
    if window < 2:
        raise NlpsuiteError("the window must be at least 2 tokens")
    if stride < 1:
        raise NlpsuiteError("the stride must be at least 1 token")
    stride = min(stride, window)  # a window capped at the context moves at most its own length
    ids = np.array(tokenizer.encode(text), dtype=np.int64)
    if len(ids) < 2:
        raise NlpsuiteError("the text is too short to score: it needs at least two tokens")
    total, scored, done, begin = 0.0, 0, 1, 0  # tokens before ``done`` are scored (token 0 never is)
    while done < len(ids):
        end = min(begin + window, len(ids))
        chunk = ids[begin:end][None]
        step = backbone.forward(
            chunk,
            np.ones_like(chunk),
            np.arange(chunk.shape[1], dtype=np.int64)[None],
            backbone.empty_state(1),
            num_logits=chunk.shape[1],
            want_state=False,
        )
        # logits at chunk position p predict token begin + p + 1
        logp = _log_probs_of(step.logits[0, done - begin - 1 : end - begin - 1], ids[done:end])
        total -= float(logp.sum())
        scored += len(logp)
        done = end
        begin = min(begin + stride, done - 1)  # a window starts on an already scored token: its context
        if on_progress:
            on_progress(scored, len(ids) - 1)
    nats = total / scored
    chars = len(text) - len(tokenizer.decode(ids[:1].tolist()))  # the characters the scored tokens cover
    return {
        "nats_per_token": nats,
        "bits_per_char": total / math.log(2) / max(chars, 1),
        "perplexity": math.exp(nats),
        "tokens": scored,
        "chars": chars,
    }
