"""sentiment and classify on the tiny random model: label scoring, its content-free prior, saved calibration."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.numeric import softmax

pytestmark = pytest.mark.shared_cache


def test_prefix_cache_gives_the_same_scores(suite):
    scorer = suite.head("scoring")
    head = suite.tokenizer.encode("Instructions and examples. ", add_special_tokens=False)
    prompt = head + suite.tokenizer.encode("Text: hello there\nLabel:", add_special_tokens=False)
    labels = [" yes", " no way", " maybe so then"]
    plain = scorer.log_likelihoods(prompt, labels)
    cached = scorer.log_likelihoods(prompt, labels, scorer.prefix(head))
    np.testing.assert_allclose(plain, cached, atol=1e-4)
    # a prefix the prompt doesn't start with is ignored, not misused
    other = scorer.prefix(suite.tokenizer.encode("Something else", add_special_tokens=False))
    np.testing.assert_allclose(plain, scorer.log_likelihoods(prompt, labels, other), atol=1e-4)


def test_sentiment_scores_are_log_likelihoods_minus_the_content_free_prior(suite):
    from nlpsuite_plugins.classify import SENTIMENT_LABELS, SENTIMENT_PROMPT, _shots_prefix

    from nlpsuite.eval.calibration import CONTENT_FREE

    names, scores = suite.label_scores("sentiment", ["some text here"])
    scorer, enc = suite.head("scoring"), lambda t: suite.tokenizer.encode(t, add_special_tokens=False)
    verbal = [" " + label for label in SENTIMENT_LABELS]
    prompt = _shots_prefix() + SENTIMENT_PROMPT
    raw = scorer.log_likelihoods(enc(prompt.format(text="some text here")), verbal)
    prior = np.mean([softmax(scorer.log_likelihoods(enc(prompt.format(text=c)), verbal)) for c in CONTENT_FREE], 0)
    assert names == SENTIMENT_LABELS
    np.testing.assert_allclose(scores[0], raw - np.log(prior), atol=1e-4)


def test_classify_scores_are_text_given_label_log_likelihoods(suite):
    from nlpsuite_plugins.classify import CLASSIFY_PREFIX

    labels = ["alpha", "beta gamma"]
    names, scores = suite.label_scores("classify", ["some text here"], labels=labels)
    enc = lambda t: suite.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    text = enc("some text here")
    expected = suite.head("scoring").continuation_log_likelihoods(
        [enc(CLASSIFY_PREFIX.format(label=label)) for label in labels], text
    ) / np.sqrt(len(text))
    assert names == labels
    np.testing.assert_allclose(scores[0], expected, atol=1e-4)


def test_classify_probabilities_sum_to_one_and_label_is_one_of_them(suite):
    results = suite.classify(["first text", "second text"], labels=["sports", "politics", "art"])
    for r in results:
        assert r["label"] in ("sports", "politics", "art")
        assert sum(r["scores"].values()) == pytest.approx(1, abs=1e-3)
        assert r["score"] == max(r["scores"].values())


def test_sentiment_shape_and_saved_calibration_is_used(suite, isolated_home):
    from nlpsuite.eval import calibration

    before = suite.sentiment("a fine day")
    assert set(before["scores"]) == {"positive", "negative", "neutral"}
    key = calibration.task_key("sentiment")
    cal = calibration.Calibration(["negative", "neutral", "positive"], 1000.0)  # flat: everything ~1/3
    calibration.save(suite.source.key, suite.precision, key, cal)
    after = suite.sentiment("a fine day")
    assert all(p == pytest.approx(1 / 3, abs=0.01) for p in after["scores"].values())


@pytest.mark.parametrize("labels", [["only"], ["a", "a"], ["a", " "], []])
def test_bad_label_sets(suite, labels):
    with pytest.raises(NlpsuiteError):
        suite.classify("text", labels=labels)


def test_empty_text_is_refused(suite):
    with pytest.raises(NlpsuiteError, match="empty"):
        suite.sentiment("   ")
