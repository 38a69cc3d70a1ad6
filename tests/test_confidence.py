"""Scores as the probability that a result is right: the logistic model, its storage, ECE, and the tasks' use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.eval import calibration, confidence, metrics
from nlpsuite.eval.confidence import ConfidenceModel


def _data(n: int = 600, seed: int = 0):
    """Three outcomes whose log-odds are linear in two signals (so a multinomial logistic model is right)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) * [2.0, 0.5] + [1.0, -3.0]
    logits = np.stack([np.zeros(n), 1.5 * x[:, 0] - 0.5, -x[:, 0] + 2 * x[:, 1] + 6], axis=1)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return x, y


def test_the_fit_is_scikit_learns_multinomial_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    mine = confidence.fit(["a", "b", "c"], ["s1", "s2"], x, y, ridge=1e-9)
    reference = LogisticRegression(C=1e9, max_iter=10_000, tol=1e-10).fit(x, y)
    np.testing.assert_allclose(mine.probabilities(x), reference.predict_proba(x), atol=1e-4)


def test_a_fitted_model_is_calibrated_on_fresh_data_and_beats_a_wrong_one():
    x, y = _data(2000, seed=1)
    fresh_x, fresh_y = _data(2000, seed=2)
    fitted = confidence.fit(["a", "b", "c"], ["s1", "s2"], x, y)
    wrong = ConfidenceModel(["a", "b", "c"], ["s1", "s2"], [[0, 0, 0], [3, 0, 0], [0, 0, 0]])
    assert confidence.nll(fitted, fresh_x, fresh_y) < confidence.nll(wrong, fresh_x, fresh_y)
    probs = fitted.probabilities(fresh_x)
    assert calibration.expected_calibration_error(probs, fresh_y) < 0.03


def test_signals_are_floored_and_checked():
    model = ConfidenceModel(["right", "wrong"], ["lp"], [[0.0, 0.0], [-1.0, 0.0]])
    assert model.probabilities([[-np.inf]]) == pytest.approx(model.probabilities([[confidence.SIGNAL_FLOOR]]))
    with pytest.raises(NlpsuiteError, match="reads 1 signals, got 2"):
        model.probabilities([[1.0, 2.0]])


def test_round_trip_and_damaged_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path))
    model = ConfidenceModel(["right", "wrong"], ["lp", "n"], [[0.0, 0.0, 0.0], [-1.5, 0.25, 2.0]], {"n_fit": 9})
    where = confidence.save("m", "fp32", "ask-generate", model)
    assert confidence.load("m", "fp32", "ask-generate") == model
    assert confidence.load("m", "fp32", "ask") is None
    for bad in ({"classes": ["x"]}, {**model.to_json(), "weights": [[0.0] * 3, [1e9, 0, 0]]}, [1, 2]):
        where.write_text(json.dumps(bad))
        with pytest.raises(NlpsuiteError, match="is damaged"):
            confidence.load("m", "fp32", "ask-generate")


def test_score_ece_by_hand_and_its_reliability_diagram(tmp_path):
    scores, right = [0.9, 0.8, 0.3, 0.6], [True, False, False, True]
    # ten bins, one example each: |1 - 0.9|, |0 - 0.8|, |0 - 0.3|, |1 - 0.6|, each weighted 1/4
    assert calibration.confidence_ece(scores, right) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    table = metrics.reliability_table(scores, right, bins=2)
    assert [b["count"] for b in table] == [1, 3] and table[1]["accuracy"] == pytest.approx(2 / 3)
    png = metrics.confidence_diagram(scores, right, tmp_path / "r.png", bins=5, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_top_label_ece_is_the_score_ece_of_the_top_label():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    gold = np.array([0, 1, 1, 0])
    top = probs.max(1), probs.argmax(1) == gold
    assert calibration.expected_calibration_error(probs, gold) == calibration.confidence_ece(*top)


def test_a_result_claims_the_likeliest_outcome_it_may_claim():
    from nlpsuite_plugins.qa import CONFIDENCE

    # "wrong" is likeliest, but an answer cannot claim to be wrong: the likelier of right and no answer is claimed
    assert confidence.choose(CONFIDENCE, np.array([0.3, 0.2, 0.5])) == (0, 0.3)
    assert confidence.choose(CONFIDENCE, np.array([0.1, 0.45, 0.45])) == (1, 0.45)
