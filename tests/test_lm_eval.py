"""lm_eval.cross_entropy on converted backbones: windows against a direct computation, BOS handling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlpsuite.eval.lm import _log_softmax_at, cross_entropy, window_spans

TEXT = (
    "The quick brown fox jumps over the lazy dog. A small model speaks in short sentences, "
    "and this tiny test corpus has numbers like 1 2 3 and words like cat dog bird."
)


def _direct(backbone, ids: list[int], spans) -> float:
    """Summed nats of every scored token, each from a forward pass over exactly its window's prefix."""
    total = 0.0
    for begin, end, first in spans:
        window = np.array([ids[begin:end]])
        step = backbone.forward(
            window, np.ones_like(window), np.arange(end - begin)[None], backbone.empty_state(1), end - begin
        )
        logits = step.logits[0, first - 1 - begin : end - 1 - begin]
        total -= float(_log_softmax_at(logits, np.array(ids[first:end])).sum())
    return total


def _check(suite, text: str, window: int, stride: int) -> dict:
    backbone, tokenizer = suite.backbone, suite.tokenizer
    result = cross_entropy(backbone, tokenizer, text, window=window, stride=stride)
    plain = tokenizer.encode(text, add_special_tokens=False)
    full = tokenizer.encode(text, add_special_tokens=True)
    prefixed = len(full) > len(plain) and full[-len(plain) :] == plain  # a BOS before the text: score it all
    ids, first = (full, len(full) - len(plain)) if prefixed else (plain, 1)
    spans = [(b, e, max(f, first)) for b, e, f in window_spans(len(ids), window, stride) if e > max(f, first)]
    total = _direct(backbone, ids, spans)
    assert result["tokens"] == len(ids) - first
    assert result["nats_per_token"] == pytest.approx(total / result["tokens"], rel=1e-4)
    assert result["perplexity"] == pytest.approx(math.exp(result["nats_per_token"]), rel=1e-9)
    assert result["bits_per_char"] == pytest.approx(total / math.log(2) / result["chars"], rel=1e-9)
    return result


@pytest.mark.shared_cache
def test_windows_on_a_converted_llama(tiny_llama):
    from nlpsuite import Suite

    suite = Suite(model=str(tiny_llama), device="cpu")
    whole = _check(suite, TEXT, window=128, stride=127)
    windowed = _check(suite, TEXT, window=16, stride=6)
    assert whole["tokens"] == windowed["tokens"] and whole["nats_per_token"] != windowed["nats_per_token"]
    told = []  # records.Progress: n more scored, and the total
    cross_entropy(
        suite.backbone, suite.tokenizer, TEXT, window=16, stride=6, progress=lambda n, total: told.append((n, total))
    )
    assert len(told) > 1 and sum(n for n, _ in told) == windowed["tokens"] == told[0][1] == told[-1][1]


def test_spans_score_every_token_once_with_enough_context():
    for n, window, stride in ((2, 2, 1), (10, 4, 3), (101, 16, 5), (7, 64, 32)):
        spans = window_spans(n, window, stride)
        assert [t for _, e, f in spans for t in range(f, e)] == list(range(1, n))
        assert all(e - b <= window and f - b >= min(window - stride, f) for b, e, f in spans)
    with pytest.raises(Exception, match="stride"):
        window_spans(10, 4, 4)


@pytest.mark.e2e
def test_cross_entropy_of_the_default_model(real_home, monkeypatch):
    from nlpsuite import Suite

    monkeypatch.setenv("NLPSUITE_HOME", str(real_home))
    suite = Suite(device="cpu")
    result = _check(suite, TEXT * 2, window=24, stride=16)
    assert 1.0 < result["perplexity"] < 200  # an English sentence is not a surprise to a language model
