"""Metrics against hand-computed values and against the reference libraries, computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.eval import calibration, metrics, ranking

HYPS = [
    "the cat sat on the mat",
    "a quick brown fox jumped over the dog",
    "it is raining today in the city",
    "nothing in common here",
    "Paris is the capital of France.",
]
REFS = [
    "the cat sat on a mat",
    "the quick brown fox jumps over the lazy dog",
    "today it rains in the city",
    "completely different words",
    "The capital of France is Paris.",
]


def test_bleu_by_hand():
    # 1-4-gram precisions 5/6, 3/5, 2/4, 1/3; same length, so no brevity penalty
    done = metrics.bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert done["score"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert done["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert metrics.bleu(["a b c d e"], ["a b c d e"])["score"] == pytest.approx(100)


def test_bleu_and_chrf_match_sacrebleu():
    import sacrebleu

    assert metrics.bleu(HYPS, REFS)["score"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert metrics.chrf(HYPS, REFS)["score"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert metrics.chrf(HYPS, REFS)["signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no")
    assert metrics.chrf(["abc"], ["abc"])["score"] == pytest.approx(100)
    assert metrics.chrf(["xyz"], ["abc"])["score"] == pytest.approx(0)


def test_bleu_tokenizes_chinese_targets_as_sacrebleu_does():
    import sacrebleu

    hyps, refs = ["我喜欢吃苹果。"], ["我很喜欢吃苹果。"]
    done = metrics.bleu(hyps, refs, target_lang="zh")
    assert "tok:zh" in done["signature"]
    assert done["score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score)
    assert "tok:13a" in metrics.bleu(hyps, refs, target_lang="fr")["signature"]
    assert "tok:zh" in metrics.bleu(hyps, refs, target_lang="Chinese")["signature"]  # the name translate passes
    for name, code, hyp, ref in (
        ("Japanese", "ja", "今日は良い天気です。", "今日はいい天気です。"),
        ("Korean", "ko", "나는 프로그래밍을 좋아한다", "나는 프로그래밍을 정말 좋아한다"),
    ):
        try:
            reference = sacrebleu.metrics.BLEU(trg_lang=code)
        except (ImportError, RuntimeError):  # without sacrebleu's [ja]/[ko] extra: one line saying what to install
            with pytest.raises(NlpsuiteError, match=rf"^BLEU for '{name}' needs .*pip install 'sacrebleu\[{code}\]'$"):
                metrics.bleu([hyp], [ref], target_lang=name)
            continue
        done = metrics.bleu([hyp], [ref], target_lang=name)
        assert f"tok:{code}-mecab" in done["signature"]
        assert done["score"] == pytest.approx(reference.corpus_score([hyp], [[ref]]).score)


def test_rouge_by_hand_and_against_rouge_score():
    from rouge_score import rouge_scorer

    done = metrics.rouge(["the cat sat on the mat"], ["the cat sat on a mat"])
    # unigrams: 5 of 6 shared both ways; bigrams: 3 of 5; longest common subsequence: 5 of 6
    assert done == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6})
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = {
        name: np.mean([scorer.score(r, h)[name].fmeasure for h, r in zip(HYPS, REFS, strict=True)])
        for name in ("rouge1", "rouge2", "rougeL")
    }
    assert metrics.rouge(HYPS, REFS) == pytest.approx(expected)
    # the stemmer makes "jumped" and "jumps" one word
    assert metrics.rouge(["jumped"], ["jumps"])["rouge1"] == pytest.approx(1.0)


def test_squad_normalization_and_scores_by_hand():
    assert metrics.normalize_answer("  The Eiffel   Tower! ") == "eiffel tower"
    assert metrics.normalize_answer("an apple, a pear") == "apple pear"
    assert metrics.exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 1.0
    assert metrics.exact_match("Tower", ["Eiffel Tower"]) == 0.0
    # "big red dog" vs "red dog": 2 shared tokens, precision 2/3, recall 1
    assert metrics.token_f1("the big red dog", "red dog") == pytest.approx(0.8)
    # the best of several gold answers counts
    assert metrics.token_f1("the big red dog", ["cat", "red dog", "big red dog"]) == pytest.approx(1.0)
    assert metrics.token_f1("dog dog", "dog") == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts, not sets
    assert metrics.token_f1("", "the") == 1.0 and metrics.token_f1("", "cat") == 0.0
    done = metrics.qa_scores(["Eiffel Tower", "big red dog", "nope"], [["the Eiffel Tower"], "red dog", ["yes"]])
    assert done["exact_match"] == pytest.approx(100 / 3)
    assert done["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    with pytest.raises(NlpsuiteError):
        metrics.exact_match("x", [])


ZH_HYPS = ["我爱编程。", "自然语言处理是计算机科学的一个分支。", "亚马逊河流经巴西。", "今天天气很好"]
ZH_REFS = [
    "我很爱编程。",
    "自然语言处理（NLP）是计算机科学的分支之一。",
    "亚马逊河流经秘鲁、哥伦比亚和巴西。",
    "明天下雨",
]


def test_rouge_scores_chinese_by_character_as_rouge_score_does_on_character_ids():
    """The usual Chinese ROUGE: every character mapped to an ASCII id, then Google's rouge-score as it is."""
    import re

    from rouge_score import rouge_scorer

    ids: dict[str, str] = {}

    def as_ids(text: str) -> str:
        tokens = re.findall(r"[\u4e00-\u9fff]|[a-z0-9]+", text.lower())  # a character, or an ASCII word
        return " ".join(ids.setdefault(t, f"c{len(ids)}x") for t in tokens)

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    expected = {
        name: np.mean(
            [scorer.score(as_ids(r), as_ids(h))[name].fmeasure for h, r in zip(ZH_HYPS, ZH_REFS, strict=True)]
        )
        for name in ("rouge1", "rouge2", "rougeL")
    }
    assert expected["rouge1"] > 0.5
    assert metrics.rouge(ZH_HYPS, ZH_REFS) == pytest.approx(expected)
    # by hand: 我 爱 编 程 against 我 很 爱 编 程: 4 of 4 and 4 of 5 unigrams, bigrams 2 of 3 and 2 of 4
    done = metrics.rouge(["我爱编程"], ["我很爱编程"])
    assert done == pytest.approx({"rouge1": 8 / 9, "rouge2": 4 / 7, "rougeL": 8 / 9})
    # mixed: the nlp 分 支 against nlp 的 分 支, 3 of 4 both ways; English words stay words
    assert metrics.rouge(["The NLP 分支"], ["nlp的分支"])["rouge1"] == pytest.approx(0.75)


def _mlqa_chinese_f1(prediction: str, gold: str) -> float:
    """MLQA's evaluation for Chinese, written out: no punctuation, each Han character a token, bag-of-tokens F1."""
    import collections
    import re
    import string
    import sys
    import unicodedata

    punct = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
    punct |= set(string.punctuation)

    def tokens(text: str) -> list[str]:
        out, word = [], ""
        for ch in "".join(c for c in text.lower() if c not in punct):
            if re.match(r"[\u4e00-\u9fa5]", ch):
                out += word.split() + [ch]
                word = ""
            else:
                word += ch
        return out + word.split()

    p, g = tokens(prediction), tokens(gold)
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    return 0.0 if same == 0 else 2 * same / (len(p) + len(g))


def test_chinese_answers_are_scored_by_character_as_mlqa_and_cmrc_do():
    # 巴 西 against 巴 西 和 秘 鲁: 2 shared characters, precision 1, recall 2/5
    assert metrics.token_f1("巴西", "巴西和秘鲁") == pytest.approx(2 * 0.4 / 1.4)
    assert metrics.exact_match("巴西。", ["巴西"]) == 1.0 and metrics.exact_match("巴 西", "巴西") == 1.0
    assert metrics.exact_match("巴西", "秘鲁") == 0.0
    pairs = [
        ("计算机科学的一个分支", "计算机科学的一个分支，它研究如何让计算机理解人类语言。"),
        ("自然语言处理（NLP）", "NLP 自然语言处理"),
        ("Python 编程", "python编程语言"),
        ("一八八七年", "1887年"),
    ]
    for prediction, gold in pairs:
        assert metrics.token_f1(prediction, gold) == pytest.approx(_mlqa_chinese_f1(prediction, gold)), prediction
    assert 0 < metrics.qa_scores(["巴西"], [["巴西和秘鲁"]])["f1"] < 100


def test_classification_metrics_match_scikit_learn():
    from sklearn import metrics as sk

    rng = np.random.default_rng(0)
    labels = ["neg", "neu", "pos", "rare"]
    gold = list(rng.choice(labels[:3], 200))
    predicted = [g if rng.random() < 0.6 else str(rng.choice(labels)) for g in gold]  # 'rare' only predicted
    assert metrics.accuracy(gold, predicted) == pytest.approx(sk.accuracy_score(gold, predicted))
    assert metrics.macro_f1(gold, predicted) == pytest.approx(sk.f1_score(gold, predicted, average="macro"))
    order = sorted(set(gold) | set(predicted))
    assert (metrics.confusion_matrix(gold, predicted) == sk.confusion_matrix(gold, predicted, labels=order)).all()
    precision, recall, f1, support = sk.precision_recall_fscore_support(gold, predicted, labels=order, zero_division=0)
    per = metrics.per_class(gold, predicted)
    assert list(per) == order
    for i, label in enumerate(order):
        assert per[label]["precision"] == pytest.approx(precision[i])
        assert per[label]["recall"] == pytest.approx(recall[i])
        assert per[label]["f1"] == pytest.approx(f1[i])
        assert per[label]["support"] == support[i]
    assert per["rare"]["support"] == 0 and per["rare"]["recall"] == 0.0


def test_classification_by_hand():
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    assert metrics.accuracy(gold, predicted) == 0.75
    assert metrics.confusion_matrix(gold, predicted).tolist() == [[1, 1], [0, 2]]
    # a: precision 1, recall 1/2, F1 2/3; b: precision 2/3, recall 1, F1 4/5
    assert metrics.macro_f1(gold, predicted) == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_ece_on_constructed_cases():
    # ten answers at confidence 0.8, eight of them right: perfectly calibrated
    probs = np.tile([0.8, 0.2], (10, 1))
    gold = np.array([0] * 8 + [1] * 2)
    assert metrics.ece(probs, gold) == pytest.approx(0.0)
    # always sure, always wrong
    assert metrics.ece(np.tile([1.0, 0.0], (5, 1)), np.ones(5, int)) == pytest.approx(1.0)
    # two bins at 0.6 (all right) and 0.9 (half right): (2/4)|1 - 0.6| + (2/4)|0.5 - 0.9|
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.1], [0.1, 0.9]])
    assert metrics.ece(probs, np.array([0, 1, 0, 0])) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_reliability_diagram_is_a_png(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], 50)
    gold = rng.integers(0, 3, 50)
    table = metrics.reliability_bins(probs, gold)
    assert sum(b["count"] for b in table) == 50
    filled = [b for b in table if b["count"]]
    assert all(b["low"] < b["confidence"] <= b["high"] for b in filled)
    target = metrics.reliability_diagram(probs, gold, tmp_path / "out" / "rel.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["rel.png"]  # no temp file left behind


def test_retrieval_by_hand():
    ranked = ["d3", "d1", "d2"]
    judged = {"d1": 1, "d2": 1}
    assert [ranking.recall_at_k(ranked, judged, k) for k in (1, 2, 3)] == [0.0, 0.5, 1.0]
    assert ranking.mrr(ranked, judged) == 0.5
    assert ranking.mrr(ranked, judged, k=1) == 0.0
    ideal = 1 + 1 / math.log2(3)
    assert ranking.ndcg_at_k(ranked, judged, 3) == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert ranking.ndcg_at_k(["d1", "d2"], judged, 2) == pytest.approx(1.0)
    both = ranking.retrieval_scores([ranked, ["d1"]], [judged, {"d1": 2, "d9": 0}], k=2)
    first = ranking.ndcg_at_k(ranked, judged, 2)
    assert both == pytest.approx({"recall@k": (0.5 + 1) / 2, "mrr": (0.5 + 1) / 2, "ndcg@k": (first + 1) / 2})
    with pytest.raises(NlpsuiteError):
        ranking.recall_at_k(ranked, {"d1": 0}, 3)


def test_graded_ndcg_matches_scikit_learn():
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(2)
    docs = [f"d{i}" for i in range(12)]
    for _ in range(20):
        grades = rng.integers(0, 4, len(docs))
        grades[0] = 3  # at least one relevant document
        scores = rng.permutation(len(docs)).astype(float)  # distinct: no ties
        ranked = [docs[i] for i in np.argsort(-scores)]
        judged = {d: int(g) for d, g in zip(docs, grades, strict=True)}
        for k in (1, 3, 5, 12):
            expected = ndcg_score(grades[None], scores[None], k=k)
            assert ranking.ndcg_at_k(ranked, judged, k) == pytest.approx(expected)


def miscalibrated(n: int, prior, scale: float = 4.0, seed: int = 0):
    """Gold labels and raw scores that rank well but are far too sharp and lean to some labels."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, len(prior), n)
    clean = rng.normal(size=(n, len(prior)))
    clean[np.arange(n), gold] += 1.5
    return gold, scale * clean + np.asarray(prior, dtype=float)


def test_calibration_lowers_ece_on_a_miscalibrated_set():
    n, labels, prior = 3000, ["a", "b", "c"], [1.5, 0.0, -1.0]  # the model leans to 'a' whatever the input
    gold, raw = miscalibrated(n, prior)
    fit, held = slice(0, n // 2), slice(n // 2, n)
    before = calibration.assess(calibration.softmax(raw[held]), gold[held])
    fitted = calibration.fit(labels, raw[fit], gold[fit])
    assert fitted.info["method"] == "bias+temperature"
    after = calibration.assess(fitted.apply(raw[held]), gold[held])
    assert after["ece"] < before["ece"] / 3
    assert after["nll"] < before["nll"]
    assert after["accuracy"] > before["accuracy"]  # removing the lean fixes decisions, not only confidence


def test_calibration_fits_only_what_the_data_supports():
    gold, raw = miscalibrated(2000, [0.0, 0.0, 0.0])  # overconfident, but no lean to any label
    fitted = calibration.fit(["a", "b", "c"], raw, gold)
    assert fitted.info["method"] == "temperature" and fitted.bias is None and fitted.temperature > 2


def test_bias_and_temperature_match_a_general_optimizer():
    from scipy.optimize import minimize

    gold, raw = miscalibrated(800, [1.0, 0.0, -0.5, 0.3], seed=4)
    bias, temperature = calibration.fit_bias_temperature(raw, gold, ridge=0.0)

    def loss(x):  # bias of labels 1..3 (label 0's is 0), log temperature
        return calibration.nll(raw - np.concatenate([[0.0], x[:3]]), gold, float(np.exp(x[3])))

    best = minimize(loss, np.zeros(4), method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20000})
    assert loss(np.concatenate([bias[1:], [np.log(temperature)]])) <= best.fun + 1e-9
    assert bias[1:] == pytest.approx(best.x[:3], abs=2e-3)
    assert temperature == pytest.approx(np.exp(best.x[3]), rel=1e-3)


def test_bad_metric_inputs():
    with pytest.raises(NlpsuiteError, match="2 outputs but 1 references"):
        metrics.bleu(["a", "b"], ["a"])
    with pytest.raises(NlpsuiteError, match="no examples"):
        metrics.rouge([], [])
    with pytest.raises(NlpsuiteError, match="k must be"):
        ranking.retrieval_scores([["a"]], [{"a": 1}], 0)


def test_field_exact_match_per_field_and_per_object():
    from nlpsuite.eval.metrics import field_exact_match

    gold = [
        {"name": "Ana", "age": 34, "pet": True, "city": None},
        {"name": "Bo  Li", "age": 5, "pet": False, "city": "Oslo"},
        {"name": "Cy", "age": 1, "pet": False, "city": None},
        {"name": "The Baker", "age": 2, "pet": False, "city": "東京"},
    ]
    predicted = [
        {"name": "Ana", "age": 34.0, "pet": True},  # a null is an absent field; 34.0 is 34
        {"name": " Bo Li ", "age": 5, "pet": 0, "city": "Oslo", "extra": "x"},  # 0 is not false; an invented field
        None,  # cut short: matches nothing
        {"name": "baker.", "age": 2, "pet": False, "city": "東 京"},  # SQuAD's exact match: case, article, spacing
    ]
    got = field_exact_match(predicted, gold)
    assert got["object_exact_match"] == pytest.approx(2 / 4)
    assert got["fields"] == {"age": 3 / 4, "city": 3 / 4, "extra": 0.0, "name": 3 / 4, "pet": 2 / 4}
    assert got["field_exact_match"] == pytest.approx(11 / 17)
    assert got["invalid"] == 1
    nested = field_exact_match([{"a": {"b": [1, "x  y"]}}], [{"a": {"b": [1, "x y"], "c": None}}])
    assert nested["object_exact_match"] == 1.0
    with pytest.raises(NlpsuiteError, match="1 outputs but 2 references"):
        field_exact_match([{}], gold[:2])
