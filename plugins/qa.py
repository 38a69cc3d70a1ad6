"""Built-in plugin: the `ask` task, question answering, extractive (span head) or generative.

With ``--context`` the answer comes from that text; with ``--index`` the question first retrieves
passages from a search index and the answer cites them (``sources``). Every mode may answer null (the text
does not say): a null candidate competes with the answer, and ``score`` is then the probability of no answer.
"""

from __future__ import annotations

import re

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.records import answers_column
from nlpsuite.tasks import Eval, Input, Option, Task
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
# Log-weight of the null reply against the generated answer: none. Tuned on tests/data/qa_noanswer_tune.jsonl it
# came out at 7-7.6, which nulled every answerable question of the held-out split: too few examples to trust.
GENERATIVE_NULL_PRIOR = 0.0
PASSAGES = 3  # retrieved passages an answer may draw on


def _null(no_answer: float, **extra) -> dict:
    return {"answer": None, "score": round(no_answer, 4), "start": None, "end": None, **extra}


def _locate(answer: str, context: str) -> tuple[int | None, int | None]:
    """Offsets of a generated answer in the context when it appears there verbatim (case-insensitively)."""
    probe = answer.strip().rstrip(".")
    if not probe:
        return None, None
    found = re.search(re.escape(probe), context, re.IGNORECASE)
    return (found.start(), found.end()) if found else (None, None)


def _mean_prob(suite, prompt_ids: list[int], answer: str) -> float:
    """The geometric-mean probability of the answer's tokens under the model: how sure it was."""
    import numpy as np

    ids = suite.tokenizer.encode(answer, add_special_tokens=False)
    if not ids:
        return 0.0
    total = suite.head("scoring").log_likelihoods(prompt_ids, [answer])[0]
    return float(np.exp(total / len(ids)))


def _generative(suite, question: str, context: str, prompt: str) -> dict:
    import numpy as np

    from nlpsuite.eval import metrics
    from nlpsuite.runtime.sampling import SamplingParams

    head = suite.head("generation")
    ids = head.encode_chat([{"role": "user", "content": prompt}])
    answer = head.decoder.generate([ids], SamplingParams(max_tokens=96, stop=["\n\n"]))[0].text.strip()
    if not answer:  # the model's own reply was nothing: no answer, and nothing competes with that
        return _null(1.0)
    if metrics.normalize_answer(answer) == NO_ANSWER:  # it chose the null reply itself
        return _null(_mean_prob(suite, ids, answer))
    start, end = _locate(answer, context)
    if start is not None:
        answer = context[start:end]
    # The null reply competes with the answer: its share of their summed probability, the prior tuned on dev data.
    said, null = suite.head("scoring").log_likelihoods(ids, [answer, NO_ANSWER])
    no_answer = float(1 / (1 + np.exp(said - null - GENERATIVE_NULL_PRIOR)))
    if no_answer > 0.5:
        return _null(no_answer)
    return {"answer": answer, "score": round(_mean_prob(suite, ids, answer), 4), "start": start, "end": end}


def answer_one(suite, question: str, context: str | None, index: str | None, generate: bool) -> dict:
    import numpy as np

    from nlpsuite.heads.span import decide

    if not isinstance(question, str) or blank(question):
        raise NlpsuiteError("empty question")
    if (context is None) == (index is None):
        raise NlpsuiteError("give a context or an index to answer from (one of them)")
    if context is not None:
        if blank(context):
            raise NlpsuiteError("empty context")
        if generate:
            return _generative(suite, question, context, GENERATIVE_PROMPT.format(context=context, question=question))
        return suite.head("span").extract(question, context).to_json()
    passages = suite.search(index, question, k=PASSAGES)
    if not passages:
        raise NlpsuiteError(f"index {index!r} has no passages for this question")
    sources = [{"id": i + 1, **p} for i, p in enumerate(passages)]
    if generate:
        numbered = "\n\n".join(f"[{s['id']}] {s['text']}" for s in sources)
        joined = "\n\n".join(s["text"] for s in sources)
        result = _generative(
            suite, question, joined, GENERATIVE_INDEX_PROMPT.format(passages=numbered, question=question)
        )
        result.update(start=None, end=None)  # offsets would point into a joined text the user never saw
        return {**result, "sources": sources}
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
        return _null(min(null.score for _, null in read.values()), sources=sources)
    # The answer's own probability, weighed by how well its passage matched the question; then that span
    # against its passage's null.
    best = max(spans, key=lambda i: read[i][0].logp + np.log(max(sources[i]["score"], 1e-6)))
    chosen = decide(*read[best])
    if chosen.answer is None:
        return _null(chosen.score, sources=sources)
    # start/end point into the cited passage (``source``/``passage`` say which).
    return {**chosen.to_json(), "source": sources[best]["source"], "passage": best + 1, "sources": sources}


def run(suite, inputs, index=None, generate=False):
    languages.check(suite, [i["question"] for i in inputs] + [i.get("context") for i in inputs])
    return [answer_one(suite, i["question"], i.get("context"), index, generate) for i in inputs]


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
        )
    )
