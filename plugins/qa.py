"""Built-in plugin: the `ask` task, question answering, extractive (span head) or generative.

With ``--context`` the answer comes from that text; with ``--index`` the question first retrieves
passages from a search index and the answer cites them (``sources``). Every mode may answer null (the text
does not say). ``score`` is the probability that what is returned is right: that the answer is right (see
``matches``), or, for null, that the text holds no answer. It comes from a few signals of each answer (the
model's log-probability of it, and of "not in the text" or "unknown" instead; its length; how much of the
question the text covers) through a model that ``nlpsuite calibrate ask DATA`` fits per model; the built-in
one was fitted for the default model on a development set (docs/confidence.md).
"""

from __future__ import annotations

import re

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.eval.signals import FLOOR  # no span, or the model said "unknown" itself
from nlpsuite.hookspecs import hookimpl
from nlpsuite.records import answers_column
from nlpsuite.tasks import Confidence, Eval, Input, Option, Task, Tune
from nlpsuite.text import blank

# numpy, the metrics, the span head and sampling are imported where they are used: registering the task
# happens in every process (start-up time), running it only in some.

GENERATIVE_PROMPT = (
    "Answer the question in one short sentence, using only the text below. If the text does not say, answer "
    '"unknown".\n\nText: {context}\n\nQuestion: {question}'
)
GENERATIVE_INDEX_PROMPT = (
    "Answer the question in one or two sentences using only these numbered passages, and cite the passages "
    'you used like [1]. If they do not say, answer "unknown".\n\n{passages}\n\nQuestion: {question}'
)
NO_ANSWER = "unknown"  # the null reply both prompts offer
PASSAGES = 3  # retrieved passages an answer may draw on
# Words every question has, whatever it asks about: left out when measuring how much of a question the text covers.
QUESTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "many",
        "much",
        "long",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "can",
        "could",
        "may",
        "might",
        "must",
        "should",
        "would",
        "will",
        "has",
        "have",
        "had",
        "not",
    ]
)
RIGHT, NULL, WRONG = 0, 1, 2  # ask's outcomes: the answer is right; the text holds no answer; the answer is wrong


def _null(**extra) -> dict:
    return {"answer": None, "start": None, "end": None, **extra}


def _locate(answer: str, context: str) -> tuple[int | None, int | None]:
    """Offsets of a generated answer in the context when it appears there verbatim (case-insensitively)."""
    probe = answer.strip().rstrip(".")
    if not probe:
        return None, None
    found = re.search(re.escape(probe), context, re.IGNORECASE)
    return (found.start(), found.end()) if found else (None, None)


def _coverage(question: str, context: str) -> float:
    """The share of the question's content words that the text contains: a question about what the text never
    mentions ("the population of Tokyo" over a text about the Amazon) is seldom answerable from it."""
    from nlpsuite.heads.span import words

    asked = [w for w in words(question) if w not in QUESTION_WORDS]
    if not asked:
        return 1.0
    present = set(words(context))
    return sum(w in present for w in asked) / len(asked)


def _generative(suite, question: str, context: str, prompt: str) -> dict:
    """The generated answer (None: the model said it does not know) and its signals."""
    import numpy as np

    from nlpsuite.eval import metrics
    from nlpsuite.runtime.sampling import SamplingParams

    head = suite.head("generation")
    ids = head.encode_chat([{"role": "user", "content": prompt}])
    answer = head.decoder.generate([ids], SamplingParams(max_tokens=96, stop=["\n\n"]))[0].text.strip()
    coverage = _coverage(question, context)
    if not answer or metrics.normalize_answer(answer) == NO_ANSWER:  # it said it does not know (or nothing)
        return {"result": _null(), "signals": [FLOOR, FLOOR, 0.0, 0.0, coverage, 1.0]}  # as SIGNALS name them
    start, end = _locate(answer, context)
    if start is not None:
        answer = context[start:end]
    said, null = suite.head("scoring").log_likelihoods(ids, [answer, NO_ANSWER])
    tokens = max(1, len(suite.tokenizer.encode(answer, add_special_tokens=False)))
    signals = [said - null, said / tokens, float(np.log(tokens)), float(start is not None), coverage, 0.0]
    return {"result": {"answer": answer, "start": start, "end": end}, "signals": signals}


def _extractive(suite, question: str, context: str, best, null) -> dict:
    """The best span (None: the text has none) and its signals, against the null candidate it competed with."""
    import numpy as np

    coverage = _coverage(question, context)
    if best is None:
        return {"result": _null(), "signals": [FLOOR, FLOOR, 0.0, 1.0, coverage, 1.0]}
    tokens = max(1, len(suite.tokenizer.encode(best.answer, add_special_tokens=False)))
    signals = [best.logp - null.logp, best.logp / tokens, float(np.log(tokens)), 1.0, coverage, 0.0]
    return {"result": {"answer": best.answer, "start": best.start, "end": best.end}, "signals": signals}


def measure_one(suite, question: str, context: str | None, index: str | None, generate: bool) -> dict:
    import numpy as np

    if not isinstance(question, str) or blank(question):
        raise NlpsuiteError("empty question")
    if (context is None) == (index is None):
        raise NlpsuiteError("give a context or an index to answer from (one of them)")
    if context is not None:
        if blank(context):
            raise NlpsuiteError("empty context")
        if generate:
            return _generative(suite, question, context, GENERATIVE_PROMPT.format(context=context, question=question))
        return _extractive(suite, question, context, *suite.head("span").read(question, context))
    passages = suite.search(index, question, k=PASSAGES)
    if not passages:
        raise NlpsuiteError(f"index {index!r} has no passages for this question")
    sources = [{"id": i + 1, **p} for i, p in enumerate(passages)]
    if generate:
        numbered = "\n\n".join(f"[{s['id']}] {s['text']}" for s in sources)
        joined = "\n\n".join(s["text"] for s in sources)
        done = _generative(
            suite, question, joined, GENERATIVE_INDEX_PROMPT.format(passages=numbered, question=question)
        )
        done["result"].update(start=None, end=None, sources=sources)  # offsets would point into a joined text
        return done
    read = {}
    for i, s in enumerate(sources):
        try:
            read[i] = suite.head("span").read(question, s["text"])
        except NlpsuiteError:  # a passage the span head cannot read: the others may still answer
            continue
    if not read:
        raise NlpsuiteError("no answer span found in the retrieved passages")
    spans = [i for i in read if read[i][0] is not None]
    if not spans:
        i = min(read, key=lambda i: read[i][1].score)
        done = _extractive(suite, question, sources[i]["text"], None, read[i][1])
        done["result"]["sources"] = sources
        return done
    # The answer's own probability, weighed by how well its passage matched the question; then that span
    # against its passage's null. start/end point into the cited passage (``source``/``passage`` say which).
    best = max(spans, key=lambda i: read[i][0].logp + np.log(max(sources[i]["score"], 1e-6)))
    done = _extractive(suite, question, sources[best]["text"], *read[best])
    done["result"].update(source=sources[best]["source"], passage=best + 1, sources=sources)
    return done


def measure(suite, inputs, index=None, generate=False):
    languages.check(suite, [i["question"] for i in inputs] + [i.get("context") for i in inputs])
    return [measure_one(suite, i["question"], i.get("context"), index, generate) for i in inputs]


def finish(result: dict, chosen: int, score: float) -> dict:
    """The answer (outcome 0) or no answer (outcome 1), with the probability that this is right."""
    if chosen == RIGHT and result["answer"] is not None:
        return {**result, "score": round(score, 4)}
    kept = {k: v for k, v in result.items() if k in ("sources",)}
    return {**_null(**kept), "score": round(score, 4)}


def matches(answer: str | None, gold: list[str]) -> bool:
    """Whether an answer is right: token F1 of at least 0.5 with a gold answer, or holding one whole (SQuAD's
    normalization; a generated sentence that contains the answer is right)."""
    from nlpsuite.eval import metrics

    if answer is None or not gold:
        return False
    said = f" {metrics.normalize_answer(answer)} "
    return metrics.token_f1(answer, gold) >= 0.5 or any(
        (g := metrics.normalize_answer(a)) and f" {g} " in said for a in gold
    )


def outcome(result: dict, gold: list[str], options: dict) -> int:
    if not gold:
        return NULL
    return RIGHT if matches(result["answer"], gold) else WRONG


def right(result: dict, gold: list[str], options: dict) -> bool:
    return not gold if result["answer"] is None else matches(result["answer"], gold)


def run(suite, inputs, index=None, generate=False):
    from nlpsuite.eval import confidence

    return confidence.scored(suite, "ask", CONFIDENCE, inputs, {"index": index, "generate": generate})


def score(predictions: list[str | None], gold: list[list[str]]) -> dict[str, float]:
    """SQuAD 2.0's scoring: a null answer is the empty string, right only where the gold has no answers;
    with unanswerable questions in the data, also the scores on each kind."""
    from nlpsuite.eval import metrics

    said = [p or "" for p in predictions]
    golds = [g or [""] for g in gold]
    result = metrics.qa_scores(said, golds)
    if any(not g for g in gold):
        has = [i for i, g in enumerate(gold) if g]
        if has:
            parts = metrics.qa_scores([said[i] for i in has], [golds[i] for i in has])
            result.update(has_answer_exact_match=parts["exact_match"], has_answer_f1=parts["f1"])
        result["no_answer_accuracy"] = metrics.qa_scores(
            [said[i] for i, g in enumerate(gold) if not g], [[""] for g in gold if not g]
        )["exact_match"]
    return result


# The signals of an answer: log P(answer) - log P(the null reply), its mean log-probability per token, log(tokens),
# whether it stands in the text verbatim (spans always do), the question's coverage, and whether the model declined
# (no span, or it said "unknown" itself).
SIGNALS = ("margin", "mean_logp", "log_tokens", "verbatim", "coverage", "declined")
# The built-in models, fitted for the default model on a development set (docs/confidence.md); `nlpsuite calibrate
# ask DATA [--generate]` fits a model's own.
SPAN_DEFAULT = {  # fitted on 104 questions of qa_pydoc_dev (docs/confidence.md): ECE 0.072 on the 208 held out
    "classes": ["right", "no answer", "wrong"],
    "signals": list(SIGNALS),
    "weights": [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [-0.1257, -0.476, 0.0394, 0.0, -9.6229, 0.0, 6.2432],
        [-0.088, -0.2246, -0.3371, 0.0, -0.3897, 0.0, 1.399],
    ],
}
GENERATED_DEFAULT = {  # fitted on 64 questions of qa_pydoc_dev, --generate (ridge 0.03): few, see docs/confidence.md
    "classes": ["right", "no answer", "wrong"],
    "signals": list(SIGNALS),
    "weights": [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [-0.0128, -1.9734, 0.5839, -1.4945, -5.0905, 0.0, 1.6846],
        [-0.0785, -2.1767, -0.0809, -2.1061, 1.913, 0.0, -1.6613],
    ],
}


def examples(suite, inputs, gold, index=None, generate=False):
    """`nlpsuite tune` examples: the prompt the answer is read (or generated) from, then the gold answer, or the
    reply the prompt offers for no answer (gold null)."""
    from nlpsuite.heads.span import NO_ANSWER as SPAN_NULL
    from nlpsuite.tasks import Example

    if index is not None:
        raise NlpsuiteError("tune ask from records with a 'context', not --index")
    end = suite.tokenizer.eos_token_ids[:1]
    out = []
    for record, answer in zip(inputs, gold, strict=True):
        if answer is not None and (not isinstance(answer, str) or not answer.strip()):
            raise NlpsuiteError("a tuning record's 'answer' must be text, or null for no answer")
        question, context = record["question"], record.get("context")
        if not isinstance(context, str) or not context.strip():
            raise NlpsuiteError("a tuning record needs a 'context'")
        if generate:
            prompt = suite.head("generation").encode_chat(
                [{"role": "user", "content": GENERATIVE_PROMPT.format(context=context, question=question)}]
            )
            said = answer.strip() if answer else NO_ANSWER
        else:
            prompt = suite.head("span").prompt_ids(question, context)
            said = " " + answer.strip() if answer else SPAN_NULL
        out.append(Example([(prompt, suite.tokenizer.encode(said, add_special_tokens=False) + end)]))
    return out


def _mode(options: dict) -> str:
    return "generate" if options.get("generate") else ""


CONFIDENCE = Confidence(
    "the answer is right (token F1 >= 0.5 with a gold answer, or it holds one whole); null: the text has no answer",
    ("right", "no answer", "wrong"),
    (RIGHT, NULL),
    SIGNALS,
    measure,
    outcome,
    finish,
    right,
    default=lambda options: GENERATED_DEFAULT if options.get("generate") else SPAN_DEFAULT,
    key=_mode,
)


def _context_or_index(options: dict, shared: dict, batch: bool) -> None:
    has_context = shared.get("context") is not None
    if (has_context and options["index"]) or (not batch and not has_context and not options["index"]):
        raise NlpsuiteError("give --context TEXT|FILE or --index NAME")


@hookimpl
def register_tasks(register):
    register(
        Task(
            "ask",
            "Answer a question from a text you give, or from a search index (citing its passages).",
            "span",
            run,
            inputs=(
                Input("question", "The question"),
                Input("context", "The text that holds the answer", optional=True, file=True),
            ),
            options=(
                Option("index", str, None, "Answer from this search index instead.", short="-i", label="Search index"),
                Option(
                    "generate",
                    bool,
                    False,
                    "Write the answer instead of copying it from the text.",
                    label="Write the answer",
                ),
            ),
            output=("answer", "score", "start", "end", "source", "passage", "sources"),
            check=_context_or_index,
            display="span",
            eval=Eval(
                "qa",
                {"question": "question", "context": "context"},
                "answers",
                lambda predictions, gold, options: score(predictions, gold),
                read_gold=answers_column,
                field="answer",
            ),
            confidence=CONFIDENCE,
            tune=Tune(
                "answer",
                lambda suite, inputs, gold, options: examples(suite, inputs, gold, **options),
                eval_gold=lambda answer: [answer] if answer else [],
                metric="f1",
            ),
        )
    )
