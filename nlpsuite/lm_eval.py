"""Language-model cross-entropy of a backbone on a text, in sliding windows over long texts.

TEMPORARY minimal implementation (branch ``evalcal``): the ``train`` branch owns this module and its
``cross_entropy(backbone, tokenizer, text, window, stride)``; at merge its version replaces this one.
``nlpsuite eval lm`` only relies on that signature and on the keys of the dict it returns.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import NlpsuiteError


def _log_probs_of(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits)[target] per row, without materializing the whole log-softmax."""
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1)
    log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=-1))
    return logits[np.arange(len(targets)), targets] - log_z


def cross_entropy(backbone, tokenizer, text: str, window: int | None = None, stride: int | None = None) -> dict:
    """Cross-entropy of ``text``'s tokens (each after the ones before it), scored in windows of ``window``
    tokens that move by ``stride``: every token is scored once, with at least ``window - stride`` tokens of
    context once the first window is passed. Returns ``{"tokens", "chars", "nats", "cross_entropy"
    (nats/token), "perplexity", "bits_per_char"}``; the first token has no context and is not scored."""
    window = min(window or 1024, backbone.context_length)
    stride = stride or max(1, window // 2)
    if window < 2:
        raise NlpsuiteError("--window must be at least 2 tokens")
    if not 1 <= stride <= window:
        raise NlpsuiteError(f"--stride must be between 1 and the window ({window} tokens)")
    ids = np.array(tokenizer.encode(text), dtype=np.int64)
    if len(ids) < 2:
        raise NlpsuiteError("the text is too short: it needs at least two tokens")
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
        first = done - begin  # position in the chunk of the first token not yet scored
        # logits at chunk position p predict token p + 1
        logp = _log_probs_of(step.logits[0, first - 1 : end - begin - 1], ids[done:end])
        total -= float(logp.sum())
        scored += len(logp)
        done = end
        begin = min(begin + stride, done - 1)  # a window starts on an already scored token: its context
    mean = total / scored
    return {
        "tokens": scored,
        "chars": len(text),
        "nats": total,
        "cross_entropy": mean,
        "perplexity": math.exp(mean),
        "bits_per_char": total / math.log(2) / len(text),
    }
