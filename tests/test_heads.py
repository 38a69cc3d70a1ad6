"""Label-scoring and embedding heads against transformers on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpsuite.api import Suite
from nlpsuite.errors import NlpsuiteError

pytestmark = pytest.mark.shared_cache

LABELS = [" cat", " dog bird", " the quick brown fox"]  # one, two and several tokens


@pytest.fixture(scope="module")
def hf(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()


@pytest.fixture
def suite(tiny_llama):
    return Suite(model=str(tiny_llama), device="cpu")


def test_label_log_likelihoods_match_transformers(suite, hf):
    prompt = suite.tokenizer.encode("hello world, this is")
    got = suite.head("scoring").log_likelihoods(prompt, LABELS)
    for label, score in zip(LABELS, got, strict=True):
        label_ids = suite.tokenizer.encode(label, add_special_tokens=False)
        with torch.no_grad():
            logp = torch.log_softmax(hf(input_ids=torch.tensor([prompt + label_ids])).logits[0], -1)
        ref = sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(label_ids))
        assert score == pytest.approx(ref, abs=1e-4)


def test_probabilities_and_contextual_calibration(suite):
    scorer = suite.head("scoring")
    prompt = suite.tokenizer.encode("numbers like 1 2 3")
    probs = scorer.probabilities(prompt, LABELS)
    assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
    # Calibrating against a prior equal to the model's own answer leaves no preference at all.
    assert scorer.probabilities(prompt, LABELS, prior=probs) == pytest.approx(np.full(3, 1 / 3))
    prior = scorer.content_free_prior([suite.tokenizer.encode("N/A")], LABELS)
    assert prior.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("labels", [[" cat"], [" cat", " cat"]])
def test_one_or_duplicate_labels_are_refused(suite, labels):
    with pytest.raises(NlpsuiteError, match="two distinct labels"):
        suite.head("scoring").probabilities(suite.tokenizer.encode("hi"), labels)


def _hf_last_state(hf, ids):
    with torch.no_grad():
        return hf(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0, -1].numpy()


def test_embeddings_match_transformers_last_token_after_the_prompt(suite, hf):
    from nlpsuite.heads.embedding import PROMPT

    embedder = suite.head("embedding")
    texts = ["a small model", "hello world, this is a tiny test corpus", "cat"]
    got = embedder(texts, batch_size=2)  # padded batches
    for text, vec in zip(texts, got, strict=True):
        ref = (_hf_last_state(hf, suite.tokenizer.encode(PROMPT.format(text=text))) - embedder.mean) / embedder.scale
        np.testing.assert_allclose(vec, ref / np.linalg.norm(ref), atol=1e-4)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_embedding_stats_are_the_models_own_and_cached(suite, hf, tiny_llama):
    from nlpsuite.heads import derived
    from nlpsuite.heads.embedding import PROMPT
    from nlpsuite.heads.embedding_sentences import SENTENCES

    embedder = suite.head("embedding")
    states = np.array([_hf_last_state(hf, suite.tokenizer.encode(PROMPT.format(text=s))) for s in SENTENCES])
    np.testing.assert_allclose(embedder.mean, states.mean(0), atol=1e-4)
    np.testing.assert_allclose(embedder.scale, states.std(0), rtol=1e-3, atol=1e-5)
    cached = embedder.stats_path
    derived.save(cached, {"mean": embedder.mean + 1, "scale": embedder.scale})  # later suites read it, not measure
    try:
        assert np.array_equal(Suite(model=str(tiny_llama), device="cpu").head("embedding").mean, embedder.mean + 1)
    finally:
        cached.unlink()


def test_a_long_text_is_cut_inside_the_prompt(suite):
    embedder = suite.head("embedding")
    ids = embedder.encode("the quick brown fox " * 50, max_tokens=40)
    suffix = suite.tokenizer.encode('" means in one word:"', add_special_tokens=False)
    assert len(ids) <= 40 and ids[-len(suffix) :] == suffix
    assert ids[:3] == suite.tokenizer.encode("This sentence :")[:3]


def test_heads_share_one_backbone(suite):
    assert suite.head("scoring").backbone is suite.head("embedding").backbone is suite.backbone
    assert suite.head("embedding") is suite.head("embedding")


def test_continuation_log_likelihoods_match_transformers_across_windows(suite, hf):
    prefixes = [
        suite.tokenizer.encode(p, add_special_tokens=False) for p in ("Topic: cats\n", "About dogs and birds:\n")
    ]
    text = suite.tokenizer.encode(" the quick brown fox jumps over the lazy dog again", add_special_tokens=False)
    scorer = suite.head("scoring")
    for window in (3, 1000):
        got = scorer.continuation_log_likelihoods(prefixes, text, window=window)
        for prefix, score in zip(prefixes, got, strict=True):
            with torch.no_grad():
                logp = torch.log_softmax(hf(input_ids=torch.tensor([prefix + text])).logits[0], -1)
            ref = sum(float(logp[len(prefix) - 1 + k, t]) for k, t in enumerate(text))
            assert score == pytest.approx(ref, abs=1e-3)


def test_a_span_may_end_at_a_full_width_mark_as_chinese_closes_a_phrase():
    from types import SimpleNamespace

    from nlpsuite.heads.span import SpanHead

    one_token_per_character = SimpleNamespace(encode=lambda text, add_special_tokens: [ord(c) for c in text],
                                              eos_token_ids=[0])  # fmt: skip
    head = SpanHead(SimpleNamespace(backbone=None, tokenizer=one_token_per_character))
    assert {ord(mark) for mark in "。，、；！？.,"} <= set(head.end_ids)
