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


def test_classify_scores_are_the_channel_plus_the_calibrated_reply(suite):
    from nlpsuite_plugins.classify import CHANNEL_SCALE, CLASSIFY_PREFIX, _tasks

    from nlpsuite.eval.calibration import CONTENT_FREE

    labels = ["alpha", "beta gamma"]
    names, scores = suite.label_scores("classify", ["some text here"], labels=labels)
    enc = lambda t: suite.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    scorer, text = suite.head("scoring"), enc("some text here")
    channel = scorer.continuation_log_likelihoods(
        [enc(CLASSIFY_PREFIX.format(label=label)) for label in labels], text
    ) / np.sqrt(len(text))
    question = _tasks(suite).question(labels)
    reply = scorer.log_likelihoods(enc(question.format(text="some text here")), labels)
    prior = np.mean([softmax(scorer.log_likelihoods(enc(question.format(text=c)), labels)) for c in CONTENT_FREE], 0)
    assert names == labels
    np.testing.assert_allclose(scores[0], channel / CHANNEL_SCALE + reply - np.log(prior), atol=1e-4)


def test_the_question_is_a_chat_turn_whose_reply_is_the_label(suite):
    from nlpsuite_plugins.classify import _tasks

    question = _tasks(suite).question(["a{b}", "正面"])
    text = "a text with {braces} in it"
    ask = "Classify the text as one of: a{b}, 正面. Reply with the label only."
    rendered = suite.chat_template.render([{"role": "user", "content": f"{ask}\n\n{text}"}])
    assert question.format(text=text) == rendered  # the model's own chat format, up to its reply


def test_a_label_in_any_script_is_scored_in_its_own_tokens_as_the_reply(tiny, suite):
    """A label after a space ("about 正面") is cut into byte pieces by BPE vocabularies that have no merge for a
    space before a Han character: the reply is scored as the label's own tokens, all of them (the sum of their
    log-probabilities, checked against transformers)."""
    import torch
    from nlpsuite_plugins.classify import _tasks
    from transformers import AutoModelForCausalLM

    labels = ["正面", "负面", "отрицательный"]
    enc = lambda t: suite.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    assert all(len(enc(label)) > 1 for label in labels)  # several tokens each on the tiny vocabulary
    prompt = enc(_tasks(suite).question(labels).format(text="这家店很好。"))
    got = suite.head("scoring").log_likelihoods(prompt, labels)
    hf = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    for label, score in zip(labels, got, strict=True):
        ids = enc(label)
        with torch.no_grad():
            logp = torch.log_softmax(hf(input_ids=torch.tensor([prompt + ids])).logits[0], -1)
        assert score == pytest.approx(sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(ids)), abs=1e-4)


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


def test_a_classify_calibration_fitted_on_the_old_scores_is_refused_in_one_line(suite, isolated_home):
    """classify's scores changed on 2026-12-06 (two readings of each label): a calibration saved before was fitted on
    the old scores and would mis-scale the new ones, so it is refused, saying how to fit it again."""
    from nlpsuite_plugins.classify import CLASSIFY_SCORING

    from nlpsuite.eval import calibration

    labels = ["sports", "weather"]
    key = calibration.task_key("classify", labels)
    old = calibration.Calibration(labels, 0.5, None, {"n_fit": 40})  # as calibrate saved it before
    calibration.save(suite.source.key, suite.precision, key, old)
    with pytest.raises(NlpsuiteError, match="fitted on scores made another way.*nlpsuite calibrate classification"):
        suite.classify("rain all day", labels=labels)
    now = calibration.Calibration(labels, 0.5, None, {"n_fit": 40, "scoring": CLASSIFY_SCORING})
    calibration.save(suite.source.key, suite.precision, key, now)
    assert suite.classify("rain all day", labels=labels)["label"] in labels


@pytest.mark.parametrize("labels", [["only"], ["a", "a"], ["a", " "], []])
def test_bad_label_sets(suite, labels):
    with pytest.raises(NlpsuiteError):
        suite.classify("text", labels=labels)


def test_empty_text_is_refused(suite):
    with pytest.raises(NlpsuiteError, match="empty"):
        suite.sentiment("   ")


def test_tune_trains_both_readings_of_the_labels(suite):
    from nlpsuite_plugins.classify import CLASSIFY_PREFIX, _tasks, examples

    enc = lambda t: suite.tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    channel, reply = examples(suite, "classify", [{"text": "这家店很好。"}], ["正面"], labels=["正面", "负面"])
    text = enc("这家店很好。")
    assert channel.alternatives == [(enc(CLASSIFY_PREFIX.format(label=label)), text) for label in ("正面", "负面")]
    assert channel.gold == 0 and channel.norms == [len(text) ** 0.5] * 2
    question = enc(_tasks(suite).question(["正面", "负面"]).format(text="这家店很好。"))
    assert reply.alternatives == [(question, enc("正面")), (question, enc("负面"))] and reply.gold == 0
