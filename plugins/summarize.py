"""Built-in plugin: the `summarize` task (`nlpsuite summarize TEXT [--max-words N]`).

A text that does not fit the model's working window is never cut: it is split into chunks of whole
paragraphs/sentences, each chunk is summarized (map), and the chunk summaries are summarized
together (reduce), recursively until they fit.
"""

from __future__ import annotations

import re

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.records import reference_field
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.tasks import Confidence, Eval, Option, Task, Tune
from nlpsuite.text import blank, chunk, count_words, counts_characters, word_spans

PROMPT = "Summarize the following text in {length}.\n\n{text}"
CHUNK_TOKENS = 1536  # small models summarize short inputs far better than long ones, whatever their window
CHUNK_WORDS = 80  # length of each chunk's summary in the map step
# A character budget this short is asked for as one sentence: Qwen2.5-0.5B's 20-character Chinese summaries went
# from ROUGE-L 42.4 to 44.2 (30 news items, benchmarks/quality_zh.py), fewer of them cut off mid-clause.
SENTENCE_CHARACTERS = 40
# A summary counts as right at a ROUGE-L F of 0.3 or more against a reference summary (docs/confidence.md).
GOOD_ROUGE_L = 0.3
_LEADS = re.compile(r"^(here is|here's|sure|summary|the summary|in summary)[^:\n]{0,60}:\s*", re.IGNORECASE)


def clip_words(text: str, max_words: int | None) -> str:
    """At most ``max_words`` words (a Han or kana character is one), ending at a sentence end when one is near."""
    text = _LEADS.sub("", text.strip())
    if max_words is None:
        return text
    text = " ".join(text.split())
    spans = word_spans(text)
    if len(spans) <= max_words:
        return text
    clipped = text[: spans[max_words - 1][1]]
    ends = [clipped.rfind(". "), clipped.rfind("! "), clipped.rfind("? ")]
    ends += [clipped.rfind(mark) for mark in "。！？"]  # these end a sentence with no space after them
    end = max(*ends, len(clipped) - 1 if clipped[-1:] in ".!?" else -1)
    return clipped[: end + 1] if end >= len(clipped) // 2 else clipped


def _length(text: str, words: int | None) -> str:
    """How long the summary may be, in the unit its length is counted in, and in the text's language when its
    script tells it (small models otherwise summarize Chinese in English)."""
    length = "a few sentences"
    if words:
        by_character = counts_characters(text)
        length = f"at most {words} characters" if by_character else f"at most {words} words"
        if by_character and words <= SENTENCE_CHARACTERS:
            length = f"one sentence of {length}"
    language = languages.written_in(text)
    return f"{length}, in {language}" if language else length


class Summarizer:
    def __init__(self, suite, batch_size: int = 4) -> None:
        self.suite = suite
        self.head = suite.head("generation")
        self.batch_size = batch_size
        self.budget = min(CHUNK_TOKENS, suite.backbone.context_length - 512)
        if self.budget < 64:
            raise NlpsuiteError("this model's context window is too small to summarize with")

    def count(self, text: str) -> int:
        return self.suite.tokenizer.count(text)

    def prompt_ids(self, text: str, words: int | None) -> list[int]:
        """The tokens the model reads before it summarizes ``text`` (what tuning trains it on too)."""
        return self.head.encode_chat(
            [{"role": "user", "content": PROMPT.format(length=_length(text, words), text=text)}]
        )

    def _generate(self, texts: list[str], words: int | None) -> list[tuple[str, tuple[float, int]]]:
        """Each text's summary, with its (log-probability, tokens) under the model."""
        out = []
        scorer = self.suite.head("scoring")
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            prompts = [self.prompt_ids(t, words) for t in part]
            # English takes ~1.3 tokens a word; a Han character takes up to three in English-centred vocabularies
            per_word = 3 if any(counts_characters(t) for t in part) else 1.8
            max_tokens = int((words or 120) * per_word) + 16
            params = SamplingParams(max_tokens=max_tokens, repetition_penalty=1.1)
            for ids, c in zip(prompts, self.head.decoder.generate(prompts, params), strict=True):
                summary = clip_words(c.text, words)
                out.append((summary, scorer.sequence(ids, summary)))
            self.suite.progress(len(part))
        return out

    def plan(self, text: str) -> tuple[int, int]:
        """(generation calls a text needs, for the progress bar; chunks it is first split into)."""
        first = pieces = len(chunk(text, self.count, self.budget))
        calls = 1
        while pieces > 1:
            calls += pieces
            pieces = max(1, min(pieces - 1, -(-pieces * (CHUNK_WORDS * 2) // self.budget)))  # always shrinks
        return calls, first

    def summarize(self, texts: list[str], max_words: int | None) -> list[tuple[str, tuple[float, int]]]:
        """Each text's summary, with the (log-probability, tokens) of the last step that wrote it ((0.0, 0) for
        a text with nothing left to summarize)."""
        for text in texts:
            if not isinstance(text, str) or blank(text):
                raise NlpsuiteError("empty text")
        current = list(texts)
        for _ in range(8):  # each round shrinks a text ~10x: eight rounds cover any input that fits in memory
            # (a text whose chunk summaries all came back empty has nothing left to summarize: it stays "")
            pieces = [[p.text for p in chunk(t, self.count, self.budget)] or [""] for t in current]
            if all(len(p) == 1 for p in pieces):
                todo = [i for i, p in enumerate(pieces) if p[0].strip()]
                done = dict(zip(todo, self._generate([pieces[i][0] for i in todo], max_words), strict=True))
                return [done.get(i, ("", (0.0, 0))) for i in range(len(pieces))]
            # Map: summarize every chunk of the long texts; short texts wait for the final step as they are.
            flat = [c for p in pieces if len(p) > 1 for c in p]
            summaries = iter(s for s, _ in self._generate(flat, CHUNK_WORDS))
            current = ["\n\n".join(next(summaries) for _ in p) if len(p) > 1 else p[0] for p in pieces]
        raise NlpsuiteError("the text did not shrink enough to summarize")


def measure(suite, inputs, max_words: int | None = None):
    from nlpsuite.eval.signals import sequence_signals

    summarizer = suite.shared("summarizer", lambda: Summarizer(suite))
    texts = [i["text"] for i in inputs]
    languages.check(suite, texts)
    plans = [summarizer.plan(t) for t in texts]
    suite.progress(0, sum(calls for calls, _ in plans))
    done = summarizer.summarize(texts, max_words)
    return [
        {
            "result": {"summary": s, "words": count_words(s), "chunks": chunks},
            "signals": sequence_signals(text, s, [said]),
        }
        for text, (s, said), (_, chunks) in zip(texts, done, plans, strict=True)
    ]


def rouge_right(summary: str, reference: str) -> bool:
    """Whether a summary is right: ROUGE-L F of at least GOOD_ROUGE_L against the reference."""
    from nlpsuite.eval import metrics

    return metrics.rouge([summary], [reference])["rougeL"] >= GOOD_ROUGE_L


def run(suite, inputs, max_words: int | None = None):
    from nlpsuite.eval import confidence

    return confidence.scored(suite, "summarize", CONFIDENCE, inputs, {"max_words": max_words})


def _score(predictions: list[str], gold: list[str], options: dict) -> dict:
    from nlpsuite.eval import metrics  # here, not at the top: registering the task happens in every process

    return metrics.rouge(predictions, gold)


def examples(suite, inputs, gold, max_words: int | None = None):
    """`nlpsuite tune` examples: each text in the prompt the model summarizes it from, then its gold summary."""
    from nlpsuite.tasks import Example

    summarizer = suite.shared("summarizer", lambda: Summarizer(suite))
    end = suite.tokenizer.eos_token_ids[:1]
    out = []
    for record, summary in zip(inputs, gold, strict=True):
        if not isinstance(summary, str) or not summary.strip():
            raise NlpsuiteError("a tuning record needs a 'text' and its 'summary'")
        reply = suite.tokenizer.encode(summary.strip(), add_special_tokens=False) + end
        out.append(Example([(summarizer.prompt_ids(record["text"], max_words), reply)]))
    return out


# The built-in model, for the default model: none of its 60 development summaries (nor of 85 held out) reached
# ROUGE-L 0.3, so no signal could be fitted and the score is the smoothed rate, (0 + 1) / (60 + 2): log(61) on
# "wrong" (docs/confidence.md). A model that summarizes well needs `nlpsuite calibrate summarization` on its data.
DEFAULT = {
    "classes": ["right", "wrong"],
    "signals": ["mean_logp", "worst_mean_logp", "log_tokens", "log_length_ratio"],
    "weights": [[0.0] * 5, [0.0, 0.0, 0.0, 0.0, 4.1109]],
}


def _finish(result: dict, chosen: int, score: float) -> dict:
    return {**result, "score": round(score, 4)}


CONFIDENCE = Confidence(
    f"the summary is right: ROUGE-L F >= {GOOD_ROUGE_L:g} against a reference summary",
    ("right", "wrong"),
    (0,),
    tuple(DEFAULT["signals"]),
    measure,
    lambda result, gold, options: 0 if rouge_right(result["summary"], gold) else 1,
    _finish,
    lambda result, gold, options: rouge_right(result["summary"], gold),
    default=lambda options: DEFAULT,
)


@hookimpl
def register_tasks(register):
    register(
        Task(
            "summarize",
            "Summarize a text; longer than the model's window, it is summarized chunk by chunk, then combined.",
            "generation",
            run,
            options=(Option("max_words", int, None, "Longest summary, in words.", min=1),),
            output=("summary", "score"),
            value="summary",
            eval=Eval("summarization", {"text": "text"}, "reference", _score, read_gold=reference_field),
            batch_size=4,
            progress_label="summarizing",
            display="beside",
            confidence=CONFIDENCE,
            tune=Tune(
                "summary",
                lambda suite, inputs, gold, options: examples(suite, inputs, gold, **options),
                metric="rougeL",
            ),  # fmt: skip
        )
    )
