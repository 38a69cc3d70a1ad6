import json

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.eval import calibration
from nlpsuite.eval.calibration import Calibration, expected_calibration_error, fit_temperature, nll


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    gold = np.array([0, 1, 1, 0])
    # ten bins (i/10, (i+1)/10], one example each, weight 1/4: |1 - 0.9|, |0 - 0.8|, |1 - 0.7|, |1 - 0.6|
    assert expected_calibration_error(probs, gold) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    # two bins: (0.5, 1] holds all four: |3/4 - 0.75|
    assert expected_calibration_error(probs, gold, bins=2) == pytest.approx(0.0)


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 2000)
    clean = rng.normal(size=(2000, 3))
    clean[np.arange(2000), gold] += 1.0
    overconfident = clean * 6  # right ranking, far too sharp
    t = fit_temperature(overconfident, gold)
    assert 4 < t < 9
    assert nll(overconfident, gold, t) < nll(overconfident, gold)
    cal = Calibration(["a", "b", "c"], temperature=t)
    before = expected_calibration_error(Calibration(["a", "b", "c"]).apply(overconfident), gold)
    after = expected_calibration_error(cal.apply(overconfident), gold)
    assert after < before / 3


def test_bias_divides_out_the_prior():
    cal = Calibration(["x", "y"], bias=list(np.log([0.8, 0.2])))
    assert cal.apply(np.log([0.8, 0.2])) == pytest.approx([0.5, 0.5])


def test_round_trip_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path))
    assert calibration.load("m", "fp32", "sentiment") is None
    cal = Calibration(["neg", "pos"], 1.7, [0.1, -0.1], {"n": 10})
    where = calibration.save("m", "fp32", "sentiment", cal)
    assert calibration.load("m", "fp32", "sentiment") == cal
    where.write_text('{"labels": ["a"], "temperature": -1}')
    with pytest.raises(NlpsuiteError):
        calibration.load("m", "fp32", "sentiment")


def test_keys_and_label_order():
    assert calibration.task_key("classify", ["b", "a"]) == calibration.task_key("classify", ["a", "b"])
    assert calibration.task_key("classify", ["a", "b"]) != calibration.task_key("classify", ["a", "c"])
    cal = Calibration(["a", "b"], 2.0, [0.5, -0.5])
    flipped = cal.for_labels(["b", "a"])
    assert flipped.apply([1.0, 3.0]) == pytest.approx(cal.apply([3.0, 1.0])[::-1])
    with pytest.raises(NlpsuiteError):
        cal.for_labels(["a", "c"])


@pytest.mark.parametrize(
    "stored",
    [
        {"labels": ["a", "b", "c"], "temperature": 1e-300, "bias": [1e308, -1e308, 0]},
        {"labels": ["a", "b", "c"], "temperature": 1.0, "bias": [1e308, -1e308, 0]},
        {"labels": ["a", "b", "c"], "temperature": 1e300},
        {"labels": ["a", "b", "c"], "temperature": 1.0, "bias": ["a", "b", "c"]},
        {"labels": ["a", "b", "c"], "temperature": 1.0, "bias": [[1, 2], [3, 4], [5, 6]]},
        {"labels": ["a", "b", "c"], "temperature": 1.0, "bias": [1, 2]},
        {"labels": ["a", "b", "c"], "temperature": "1"},
        {"labels": ["a", "b", "c"], "temperature": True},
        {"labels": ["a", "a"], "temperature": 1.0},
        {"labels": [1, 2], "temperature": 1.0},
        {"labels": "ab", "temperature": 1.0},
        {"labels": ["a", "b"], "temperature": 1.0, "info": [1]},
        [1, 2, 3],
    ],
)
def test_a_tampered_calibration_file_is_refused_in_one_line(tmp_path, monkeypatch, stored):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path))
    where = calibration.path("m", "fp32", "sentiment")
    where.parent.mkdir(parents=True)
    where.write_text(json.dumps(stored))
    with pytest.raises(NlpsuiteError) as caught:
        calibration.load("m", "fp32", "sentiment")
    message = str(caught.value)
    assert message.startswith(f"calibration file {where} is damaged (") and "\n" not in message
    assert "nlpsuite calibrate" in message


def test_an_oversized_calibration_file_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path))
    where = calibration.path("m", "fp32", "sentiment")
    where.parent.mkdir(parents=True)
    with open(where, "wb") as fh:
        fh.truncate(1 << 30)  # sparse: a 1 GiB file costs nothing here, and is refused before it is read
    with pytest.raises(NlpsuiteError, match="is damaged .*larger than"):
        calibration.load("m", "fp32", "sentiment")


@pytest.mark.shared_cache
def test_classify_refuses_a_tampered_calibration(tiny_llama, cli):
    from nlpsuite.modelstore.catalog import Catalog

    key = Catalog().resolve(str(tiny_llama)).key
    where = calibration.path(key, "fp32", calibration.task_key("classify", ["cat", "dog"]))
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps({"labels": ["cat", "dog"], "temperature": 1e-300, "bias": [1e308, -1e308]}))
    try:
        result = cli(["classify", "a cat", "--labels", "cat,dog", "--json", "--model", str(tiny_llama), "--quiet"])
    finally:
        where.unlink()
    assert result.code == 1 and result.err.startswith("error: calibration file ") and "NaN" not in result.out
