"""`nlpsuite eval`: run a task over labelled data on a Suite and score what it returns.

Each task reads named columns, predicts in batches through the public Suite API, and turns the
predictions into metrics (see metrics.py for their definitions and scales). Data files are checked
whole before any model is loaded, so a bad file fails in a second with one line.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fsutil, metrics
from .errors import NlpsuiteError
from .records import answers_field, documents, judgements_field, read_records, text_field

TASKS = ("translation", "summarization", "qa", "sentiment", "classification", "retrieval", "lm")
Progress = Callable[[int], None]  # advance by this many examples


@dataclass
class Options:
    """What the eval command passes down; each task reads the fields it needs."""

    to: str | None = None  # translation target language
    source_lang: str | None = None
    max_words: int | None = None  # summarization length
    head: str | None = None  # classification probe head
    docs: Path | None = None  # retrieval corpus
    k: int = 10
    window: int | None = None  # lm
    stride: int | None = None
    reliability: Path | None = None  # where sentiment/classification write the reliability diagram
    bins: int = 10


# --- tasks -----------------------------------------------------------------------------------


@dataclass
class Examples:
    """Checked inputs for one task: what the Suite gets, and the gold side kept for scoring."""

    inputs: list  # one entry per example, in the form the task's predict() takes
    gold: list
    extra: dict = field(default_factory=dict)


def _prepare(task: str, path: Path, options: Options, limit: int | None) -> Examples:
    columns = {
        "translation": ("source", "reference"),
        "summarization": ("text", "reference"),
        "qa": ("question", "context", "answers"),
        "sentiment": ("text", "label"),
        "classification": ("text", "label"),
        "retrieval": ("query", "relevant"),
    }[task]
    rows = read_records(path, columns)
    if limit is not None:
        rows = rows[:limit]
    if task == "translation":
        inputs = [text_field(path, n, r, "source") for n, r in rows]
        return Examples(inputs, [text_field(path, n, r, "reference", allow_empty=True) for n, r in rows])
    if task == "summarization":
        inputs = [text_field(path, n, r, "text") for n, r in rows]
        return Examples(inputs, [text_field(path, n, r, "reference", allow_empty=True) for n, r in rows])
    if task == "qa":
        inputs = [(text_field(path, n, r, "question"), text_field(path, n, r, "context")) for n, r in rows]
        return Examples(inputs, [answers_field(path, n, r["answers"]) for n, r in rows])
    if task in ("sentiment", "classification"):
        inputs = [text_field(path, n, r, "text") for n, r in rows]
        gold = [text_field(path, n, r, "label") for n, r in rows]
        labels = sorted(set(gold))
        if task == "classification" and len(labels) < 2:
            raise NlpsuiteError(f"{path}: classification needs at least two distinct labels in the data")
        return Examples(inputs, gold, {"labels": labels})
    # retrieval
    if options.docs is None:
        raise NlpsuiteError("retrieval needs --docs FILE (a JSONL of documents with 'id' and 'text')")
    docs = documents(options.docs)
    inputs = [text_field(path, n, r, "query") for n, r in rows]
    gold = [judgements_field(path, n, r["relevant"]) for n, r in rows]
    unknown = sorted({doc for judged in gold for doc in judged} - set(docs))
    if unknown:
        raise NlpsuiteError(f"{path}: relevant ids not in {options.docs}: {', '.join(unknown[:5])}")
    return Examples(inputs, gold, {"docs": docs})


def _predict(task: str, suite, batch: list, options: Options, examples: Examples) -> list:
    if task == "translation":
        return list(suite.translate(batch, to=options.to, source=options.source_lang))
    if task == "summarization":
        return list(suite.summarize(batch, max_words=options.max_words))
    if task == "qa":
        done = suite.ask([q for q, _ in batch], context=[c for _, c in batch])
        return [d["answer"] for d in done]
    if task == "sentiment":
        return list(suite.sentiment(batch))
    if task == "classification":  # a probe head brings its own labels; zero-shot takes the data's
        labels = None if options.head else examples.extra["labels"]
        return list(suite.classify(batch, labels=labels, head=options.head))
    return [_ranked(suite, query, options, examples) for query in batch]


def _ranked(suite, query: str, options: Options, examples: Examples) -> list[str]:
    """Document ids in the order the suite's search ranks them; a document's passages count once."""
    want = options.k * 4
    while True:
        hits = suite.search(examples.extra["index"], query, k=want)
        found = list(dict.fromkeys(str(hit["source"]) for hit in hits))
        if len(found) >= options.k or len(hits) < want:  # enough documents, or the index has no more
            return found[: options.k]
        want *= 2


def _score(task: str, examples: Examples, predictions: list, options: Options) -> dict:
    gold = examples.gold
    if task == "translation":
        b, c = metrics.bleu(predictions, gold, options.to), metrics.chrf(predictions, gold)
        return {"bleu": b["score"], "chrf": c["score"], "signature": {"bleu": b["signature"], "chrf": c["signature"]}}
    if task == "summarization":
        return metrics.rouge(predictions, gold)
    if task == "qa":
        return metrics.qa_scores(predictions, gold)
    if task in ("sentiment", "classification"):
        return _score_labels(task, gold, predictions, options)
    scores = metrics.retrieval_scores(predictions, gold, options.k)
    return {**scores, "k": options.k, f"recall@{options.k}": scores["recall@k"], f"ndcg@{options.k}": scores["ndcg@k"]}


def _score_labels(task: str, gold: list[str], predictions: list[dict], options: Options) -> dict:
    names = list(predictions[0]["scores"])  # the label order the task scored in
    _check_labels(task, gold, names)
    predicted = [p["label"] for p in predictions]
    probs = np.array([[p["scores"][name] for name in names] for p in predictions], dtype=np.float64)
    gold_index = np.array([names.index(g) for g in gold])
    labels = sorted(set(gold) | set(predicted))
    result = {
        "accuracy": metrics.accuracy(gold, predicted),
        "macro_f1": metrics.macro_f1(gold, predicted),
        "ece": metrics.ece(probs, gold_index, options.bins),
        "per_class": metrics.per_class(gold, predicted, labels),
        "confusion_matrix": {"labels": labels, "matrix": metrics.confusion_matrix(gold, predicted, labels).tolist()},
    }
    if options.reliability is not None:
        metrics.reliability_diagram(probs, gold_index, options.reliability, options.bins, f"{task} reliability")
        result["reliability_png"] = str(options.reliability)
    return result


def check_options(task: str, options: Options) -> None:
    """Option errors that need no data or model."""
    if task not in TASKS:
        raise NlpsuiteError(f"unknown task {task!r} (choose from: {', '.join(TASKS)})")
    if task == "translation" and not options.to:
        raise NlpsuiteError("translation needs --to LANG (the language of the references)")
    if options.k < 1:
        raise NlpsuiteError("--k must be at least 1")
    if options.max_words is not None and options.max_words < 1:
        raise NlpsuiteError("--max-words must be at least 1")
    if options.bins < 1:
        raise NlpsuiteError("--bins must be at least 1")


def evaluate(
    task: str,
    data: Path,
    open_suite: Callable[[], object],
    options: Options,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Callable[[int], Progress] | None = None,
    done: list[dict] | None = None,
    on_batch: Callable[[list, list], None] | None = None,
) -> dict:
    """``{"task", "n", "metrics"}`` for a record task. ``progress(total)`` returns an advance callback;
    ``done`` holds ``{"input", "prediction"}`` records of an earlier, interrupted run, which resumes after
    them; ``on_batch(inputs, predictions)`` sees each new batch as soon as it is predicted."""
    check_options(task, options)
    _check_counts(limit, batch_size)
    if task == "lm":
        raise NlpsuiteError("lm is scored with evaluate_lm")
    examples = _prepare(task, data, options, limit)
    predictions = _resumed(done or [], examples.inputs)
    if len(predictions) < len(examples.inputs):  # a finished predictions file is scored without the model
        _predict_rest(task, open_suite(), examples, predictions, options, batch_size, progress, on_batch)
    return {"task": task, "n": len(examples.inputs), "metrics": _score(task, examples, predictions, options)}


def _predict_rest(task, suite, examples, predictions, options, batch_size, progress, on_batch) -> None:
    """Append the predictions still missing, batch by batch."""
    advance = progress(len(examples.inputs)) if progress else (lambda _n: None)
    advance(len(predictions))
    with _search_index(task, suite, examples, options.docs):
        for start in range(len(predictions), len(examples.inputs), batch_size):
            batch = examples.inputs[start : start + batch_size]
            new = _predict(task, suite, batch, options, examples)
            if len(new) != len(batch):
                raise NlpsuiteError(f"{task} returned {len(new)} results for {len(batch)} inputs")
            if task == "sentiment" or options.head:  # labels the task chose: fail on the first batch, not the last
                _check_labels(task, examples.gold, list(new[0]["scores"]))
            predictions.extend(new)
            if on_batch:
                on_batch(batch, new)
            advance(len(batch))


def _check_counts(limit: int | None, batch_size: int) -> None:
    if limit is not None and limit < 1:
        raise NlpsuiteError("--limit must be at least 1")
    if batch_size < 1:
        raise NlpsuiteError("--batch-size must be at least 1")


def _check_labels(task: str, gold: Sequence[str], names: Sequence[str]) -> None:
    outside = sorted(set(gold) - set(names))
    if outside:
        raise NlpsuiteError(
            f"labels in the data that {task} does not produce: {', '.join(outside)} (it produces: {', '.join(names)})"
        )


def _resumed(done: list[dict], inputs: list) -> list:
    """The predictions of an earlier run, if they were made on these very inputs, in this order."""
    if len(done) > len(inputs):
        raise NlpsuiteError(f"the saved predictions ({len(done)}) outnumber the examples ({len(inputs)})")
    for i, record in enumerate(done):
        if not isinstance(record, dict) or "prediction" not in record:
            raise NlpsuiteError(f"saved prediction {i + 1} is not an {{input, prediction}} record")
        if record.get("input") != json.loads(json.dumps(inputs[i])):
            raise NlpsuiteError(f"saved prediction {i + 1} is for another input: that file is not this run's")
    return [record["prediction"] for record in done]


def _remove_index(name: str) -> None:
    from .retrieval import index

    index.remove(name)


@contextlib.contextmanager
def _search_index(task: str, suite, examples: Examples, docs: Path | None):
    """For retrieval: the --docs corpus in an index of its own while the queries run, removed after."""
    if task != "retrieval":
        yield
        return
    name = f"eval-{uuid.uuid4().hex[:12]}"
    try:
        suite.index(name, [docs])  # a JSONL of {"id", "text"}: each passage's source is its document's id
        examples.extra["index"] = name
        yield
    finally:
        _remove_index(name)


def evaluate_lm(
    data: Path,
    open_suite: Callable[[], object],
    options: Options,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Cross-entropy (nats/token), perplexity and bits/char of the suite's backbone on a text file
    (``limit``: its first lines); ``on_progress(tokens scored, total)``."""
    from .lm_eval import cross_entropy

    _check_counts(limit, 1)
    if options.window is not None and options.window < 2:
        raise NlpsuiteError("--window must be at least 2 tokens")
    if options.stride is not None and options.stride < 1:
        raise NlpsuiteError("--stride must be at least 1")
    if options.stride is not None and options.window is not None and options.stride > options.window:
        raise NlpsuiteError("--stride must not exceed --window")
    text = fsutil.read_utf8(data).removeprefix("\ufeff")  # a byte-order mark is no text to score
    if limit is not None:
        text = "".join(text.splitlines(keepends=True)[:limit])
    if not text.strip():
        raise NlpsuiteError(f"{data} holds no text")
    windows = {}
    if options.window is not None:
        windows = {"window": options.window, "stride": options.stride or max(1, options.window // 2)}
    elif options.stride is not None:
        windows = {"stride": options.stride}
    suite = open_suite()
    result = cross_entropy(suite.backbone, suite.tokenizer, text, **windows, on_progress=on_progress)
    return {
        "task": "lm",
        "n": int(result["tokens"]),
        "metrics": {
            "cross_entropy": result["nats_per_token"],
            "perplexity": result["perplexity"],
            "bits_per_char": result["bits_per_char"],
            "tokens": result["tokens"],
            "chars": result["chars"],
        },
    }


# --- calibrate -------------------------------------------------------------------------------

CALIBRATE_TASKS = {"sentiment": "sentiment", "classification": "classify", "classify": "classify"}
CONTENT_FREE = ("N/A", "[MASK]")  # inputs that say nothing: the model's label prior (Zhao et al., 2021)


def calibrate(
    task: str,
    data: Path,
    open_suite: Callable[[], object],
    labels: list[str] | None = None,
    head: str | None = None,
    holdout: float = 0.5,
    seed: int = 0,
    batch_size: int = 8,
    bins: int = 10,
    progress: Callable[[int], Progress] | None = None,
    limit: int | None = None,
) -> dict:
    """Fit calibration on a seeded split of labelled data, measure it on the held-out rest, and save it
    with the model for later ``sentiment``/``classify`` runs."""
    from . import calibration

    api_task = CALIBRATE_TASKS.get(task)
    if api_task is None:
        raise NlpsuiteError(f"calibrate works on sentiment or classification, not {task!r}")
    if not 0 < holdout < 1:
        raise NlpsuiteError("--holdout must be between 0 and 1 (the share of the data held out)")
    _check_counts(limit, batch_size)
    rows = read_records(data, ("text", "label"))[:limit]
    texts = [text_field(data, n, r, "text") for n, r in rows]
    gold = [text_field(data, n, r, "label") for n, r in rows]
    if labels is not None:
        if len(set(labels)) < 2 or len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
            raise NlpsuiteError("--labels needs at least two distinct, non-empty labels")
        outside = sorted(set(gold) - set(labels))
        if outside:
            raise NlpsuiteError(f"labels in the data not among --labels: {', '.join(outside)}")
    elif api_task == "classify" and head is None:
        labels = sorted(set(gold))
        if len(labels) < 2:
            raise NlpsuiteError(f"{data}: classification needs at least two distinct labels in the data")
    held_n = round(len(texts) * holdout)
    if held_n < 1 or held_n >= len(texts):
        raise NlpsuiteError(f"{data} has {len(texts)} examples: too few to hold out {holdout:g} and fit on the rest")
    order = np.random.default_rng(seed).permutation(len(texts))
    held, fit_part = order[:held_n], order[held_n:]

    suite = open_suite()
    extra = len(CONTENT_FREE) if head is None else 0
    advance = progress(len(texts) + extra) if progress else (lambda _n: None)
    names: list[str] | None = None
    chunks = []
    for start in range(0, len(texts), batch_size):
        got, scores = suite.label_scores(api_task, texts[start : start + batch_size], labels, head)
        if names is None:
            names = list(got)
            _check_labels(task, gold, names)
        elif list(got) != names:
            raise NlpsuiteError(f"{task} changed its labels between batches")
        chunks.append(np.asarray(scores, dtype=np.float64))
        advance(len(chunks[-1]))
    scores = np.concatenate(chunks)
    gold_index = np.array([names.index(g) for g in gold])
    content_free = None
    if head is None:  # contextual calibration applies to label scoring, not to a trained probe's logits
        content_free = np.asarray(suite.label_scores(api_task, list(CONTENT_FREE), labels, None)[1], dtype=np.float64)
        advance(extra)
    fitted = calibration.fit(names, scores[fit_part], gold_index[fit_part], content_free)
    before = calibration.assess(calibration.softmax(scores[held]), gold_index[held], bins)
    after = calibration.assess(fitted.apply(scores[held]), gold_index[held], bins)
    fitted.info.update(
        n_fit=len(fit_part), n_heldout=len(held), seed=seed, holdout=holdout, before=before, after=after, data=str(data)
    )
    key = calibration.task_key(api_task, names, head)  # what the task looks up: its labels, or its probe head
    saved = calibration.save(suite.source.key, suite.backbone.precision, key, fitted)
    return {
        "task": task,
        "model": suite.source.key,
        "labels": names,
        "n_fit": len(fit_part),
        "n_heldout": len(held),
        "method": fitted.info["method"],
        "temperature": fitted.temperature,
        "bias": fitted.bias,
        "before": before,
        "after": after,
        "saved": str(saved),
    }
