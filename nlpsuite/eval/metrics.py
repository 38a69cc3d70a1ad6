"""Evaluation metrics, each on the scale of the reference implementation it is checked against.

BLEU and chrF come from sacrebleu (0-100, with its signature); ROUGE from Google's ``rouge-score``
(F-measure, 0-1); exact match and token F1 follow the official SQuAD evaluation (0-100); text in Chinese
or Japanese is scored by character, as the CMRC 2018, DRCD and MLQA evaluations (QA) and Chinese ROUGE
evaluations do, since those languages write no spaces between words; the
classification metrics follow scikit-learn's definitions (0-1); retrieval metrics are 0-1 with
linear gains for nDCG, as trec_eval and scikit-learn's ``ndcg_score`` compute it.
"""

from __future__ import annotations

import collections
import io
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import NlpsuiteError
from ..text import CHARACTER_WORDS
from .calibration import bin_index, confidence_ece, expected_calibration_error

__all__ = [
    "accuracy",
    "bleu",
    "chrf",
    "sentence_chrf",
    "confidence_diagram",
    "confusion_matrix",
    "ece",
    "exact_match",
    "field_exact_match",
    "macro_f1",
    "normalize_answer",
    "per_class",
    "qa_scores",
    "reliability_diagram",
    "rouge",
    "token_f1",
]


# --- translation -----------------------------------------------------------------------------

# sacrebleu tokenizes these target languages with their own tokenizers (its ``trg_lang``): zh splits Han
# characters (built in); ja and ko are the WMT standard ja-mecab/ko-mecab, which need nlpsuite's [ja-ko] extra.
_SPECIAL_TARGETS = {"zh": "zh", "chinese": "zh", "ja": "ja", "japanese": "ja", "ko": "ko", "korean": "ko"}


def _target(lang: str | None) -> str:
    if not lang:
        return ""
    lang = lang.strip().lower()
    return _SPECIAL_TARGETS.get(lang.split("-")[0].split("_")[0], _SPECIAL_TARGETS.get(lang, ""))


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise NlpsuiteError(f"{len(hypotheses)} outputs but {len(references)} references")
    if not hypotheses:
        raise NlpsuiteError("no examples to score")


def bleu(hypotheses: Sequence[str], references: Sequence[str], target_lang: str | None = None) -> dict:
    """Corpus BLEU of one reference per hypothesis: ``{"score", "signature"}``."""
    from sacrebleu.metrics import BLEU

    _check_pairs(hypotheses, references)
    target = _target(target_lang)
    try:
        metric = BLEU(trg_lang=target)
    except (ImportError, RuntimeError):  # ja/ko need MeCab, an optional sacrebleu extra
        extra = f"sacrebleu[{target}]"
        raise NlpsuiteError(f"BLEU for {target_lang!r} needs sacrebleu's tokenizer: pip install '{extra}'") from None
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return {"score": float(result.score), "signature": str(metric.get_signature())}


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus chrF (character 6-grams, beta 2): ``{"score", "signature"}``."""
    from sacrebleu.metrics import CHRF

    _check_pairs(hypotheses, references)
    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return {"score": float(result.score), "signature": str(metric.get_signature())}


def sentence_chrf(hypothesis: str, reference: str) -> float:
    """chrF of one hypothesis against one reference (0-100), as sacrebleu's ``sentence_score`` computes it."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score)


# --- summarization ---------------------------------------------------------------------------


_ROUGE_TOKEN = re.compile(rf"[{CHARACTER_WORDS}]|[^\W_{CHARACTER_WORDS}]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")


class RougeTokenizer:
    """rouge-score's tokens on ASCII text (lowercase letter/digit runs, Porter-stemmed past 3 letters), plus the
    words of other scripts, and each Han or kana character as a token of its own."""

    def __init__(self, stemmer: bool = True) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer() if stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = _ROUGE_TOKEN.findall(text.lower())
        if self._stemmer is None:
            return tokens
        return [self._stemmer.stem(t) if len(t) > 3 and _ASCII_WORD.fullmatch(t) else t for t in tokens]


def rouge(predictions: Sequence[str], references: Sequence[str], stemmer: bool = True) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over the pairs (``rouge-score`` with ``RougeTokenizer``, Porter stemmer on).

    rouge-score's own tokenizer keeps only ASCII letters and digits, so Chinese would score 0.
    """
    from rouge_score import rouge_scorer

    _check_pairs(predictions, references)
    names = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(names), tokenizer=RougeTokenizer(stemmer))
    totals = dict.fromkeys(names, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # (target, prediction)
        for name in names:
            totals[name] += scores[name].fmeasure
    return {name: totals[name] / len(predictions) for name in names}


# --- question answering ----------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_CHARACTER = re.compile(f"[{CHARACTER_WORDS}]")
_CHARACTER_TOKEN = re.compile(rf"[{CHARACTER_WORDS}]|[^\s{CHARACTER_WORDS}]+")


def normalize_answer(text: str) -> str:
    """SQuAD's normalization: lowercase, drop punctuation and the articles a/an/the, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(answers: str | Sequence[str]) -> list[str]:
    golds = [answers] if isinstance(answers, str) else list(answers)
    if not golds:
        raise NlpsuiteError("an example has no gold answers")
    return golds


def _answer_tokens(prediction: str, gold: str) -> tuple[list[str], list[str]]:
    """SQuAD's tokens; when either holds Han or kana, MLQA's Chinese ones: lowercase, no punctuation of any
    script, each Han or kana character a token, other words split at whitespace."""
    if not (_CHARACTER.search(prediction) or _CHARACTER.search(gold)):
        return normalize_answer(prediction).split(), normalize_answer(gold).split()
    return _character_tokens(prediction), _character_tokens(gold)


def _character_tokens(text: str) -> list[str]:
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION and not unicodedata.category(c).startswith("P"))
    return _CHARACTER_TOKEN.findall(text)


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized gold answer, else 0.0."""
    return float(any(a == b for a, b in (_answer_tokens(prediction, gold) for gold in _golds(answers))))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = _answer_tokens(prediction, gold)
    if not pred_tokens or not gold_tokens:  # SQuAD 2.0's rule: both empty is a match, one empty is not
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """Bag-of-tokens F1 between the normalized prediction and the best-matching gold answer."""
    return max(_f1(prediction, gold) for gold in _golds(answers))


def qa_scores(predictions: Sequence[str], answers: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` averaged over examples, as percentages (SQuAD's convention)."""
    _check_pairs(predictions, answers)
    em = sum(exact_match(p, a) for p, a in zip(predictions, answers, strict=True))
    f1 = sum(token_f1(p, a) for p, a in zip(predictions, answers, strict=True))
    return {"exact_match": 100.0 * em / len(predictions), "f1": 100.0 * f1 / len(predictions)}


# --- extraction ------------------------------------------------------------------------------


def field_exact_match(predictions: Sequence[object], gold: Sequence[Mapping]) -> dict:
    """Extracted objects against gold ones (0-1): ``object_exact_match`` (every field right and none invented),
    ``field_exact_match`` (over every gold field of every example) and per field; a null field is an absent
    one, strings match as exact_match has them (SQuAD's: case, punctuation, articles and spacing aside; Han and
    kana by character), and a prediction that is no object (an output cut short) matches nothing (``invalid``
    counts them)."""
    _check_pairs(predictions, gold)
    fields: dict[str, list[bool]] = collections.defaultdict(list)
    whole = []
    for predicted, expected in zip(predictions, gold, strict=True):
        got = predicted if isinstance(predicted, Mapping) else {}
        for name in sorted(set(expected) | set(_present(got))):  # a gold null counts: the right answer is none
            fields[name].append(field_right(predicted, expected, name))
        whole.append(object_right(predicted, expected))
    hits = [hit for per_field in fields.values() for hit in per_field]
    return {
        "object_exact_match": sum(whole) / len(whole),
        "field_exact_match": sum(hits) / len(hits) if hits else 1.0,
        "fields": {name: sum(v) / len(v) for name, v in sorted(fields.items())},
        "invalid": sum(not isinstance(p, Mapping) for p in predictions),
    }


def field_right(predicted, expected: Mapping, name: str) -> bool:
    """Whether an extracted object's field ``name`` is right (a null one is an absent one; no object: wrong)."""
    return isinstance(predicted, Mapping) and _same_value(predicted.get(name), expected.get(name))


def object_right(predicted, expected: Mapping) -> bool:
    """Whether an extracted object is right whole: every field, and none invented."""
    return isinstance(predicted, Mapping) and _same_value(_present(predicted), _present(expected))


def _present(value: Mapping) -> dict:
    return {k: v for k, v in value.items() if v is not None}


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return exact_match(a, b) == 1.0
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        a, b = _present(a), _present(b)
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    return a is None and b is None


# --- classification --------------------------------------------------------------------------


def _labels(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None) -> list[str]:
    _check_pairs(predicted, gold)
    return list(labels) if labels is not None else sorted(set(gold) | set(predicted))


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    _check_pairs(predicted, gold)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> np.ndarray:
    """Counts ``[gold label, predicted label]`` over ``labels`` (default: every label seen, sorted)."""
    labels = _labels(gold, predicted, labels)
    where = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        if g in where and p in where:
            matrix[where[g], where[p]] += 1
    return matrix


def per_class(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label; 0 where a ratio has nothing to divide by."""
    labels = _labels(gold, predicted, labels)
    matrix = confusion_matrix(gold, predicted, labels)
    out = {}
    for i, label in enumerate(labels):
        tp, predicted_n, support = int(matrix[i, i]), int(matrix[:, i].sum()), int(matrix[i].sum())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of the per-label F1 (by default over every label in gold or predictions)."""
    scores = per_class(gold, predicted, labels)
    return float(np.mean([s["f1"] for s in scores.values()]))


def ece(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top label (equal-width confidence bins)."""
    return expected_calibration_error(probs, gold, bins)


def reliability_table(confidence, correct, bins: int = 10) -> list[dict]:
    """Per confidence bin: its range, how many examples, their mean confidence and their accuracy."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    which = bin_index(confidence, bins)  # as ECE bins them
    out = []
    for i in range(bins):
        members = which == i
        count = int(members.sum())
        out.append(
            {
                "low": i / bins,
                "high": (i + 1) / bins,
                "count": count,
                "confidence": float(confidence[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return out


def reliability_bins(probs: np.ndarray, gold: np.ndarray, bins: int = 10) -> list[dict]:
    """The reliability table of the top label of ``probs`` against gold label indices."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold)
    return reliability_table(probs.max(axis=1), probs.argmax(axis=1) == gold, bins)


def reliability_diagram(probs: np.ndarray, gold: np.ndarray, path: Path, bins: int = 10, title: str = "") -> Path:
    """The reliability diagram of the top label of ``probs`` against gold label indices (see confidence_diagram)."""
    probs, gold = np.asarray(probs, dtype=np.float64), np.asarray(gold)
    return confidence_diagram(probs.max(axis=1), probs.argmax(axis=1) == gold, path, bins, title)


def confidence_diagram(confidence, correct, path: Path, bins: int = 10, title: str = "") -> Path:
    """Write a reliability diagram (accuracy against confidence per bin, with the diagonal) as a PNG; the
    title gets the ECE and the number of examples."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from ..fsutil import write_bytes_atomic

    table = reliability_table(confidence, correct, bins)
    error = confidence_ece(confidence, correct, bins)
    width = 1.0 / bins
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    try:
        filled = [b for b in table if b["count"]]
        top.bar([b["low"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
                edgecolor="black", label="accuracy")  # fmt: skip
        top.bar([b["low"] for b in filled], [b["confidence"] - b["accuracy"] for b in filled], width=width,
                bottom=[b["accuracy"] for b in filled], align="edge", fill=False, hatch="///",
                edgecolor="tab:red", label="gap to mean confidence")  # fmt: skip
        top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
        top.set_ylabel("accuracy")
        top.set_ylim(0, 1)
        top.set_title(f"{title or 'reliability'} (ECE {error:.3f}, n = {len(np.asarray(confidence))})")
        top.legend(loc="upper left")
        bottom.bar([b["low"] for b in table], [b["count"] for b in table], width=width, align="edge",
                   edgecolor="black")  # fmt: skip
        bottom.set_xlabel("confidence")
        bottom.set_ylabel("examples")
        bottom.set_xlim(0, 1)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)
