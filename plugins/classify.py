"""Built-in plugin: the `sentiment` and `classify` tasks (zero-shot labels, or a trained probe head).

Both tasks score label verbalizations with the label-scoring head (one shared prefill for all
labels), divide out the model's prior for the labels measured on content-free inputs (contextual
calibration), and apply a temperature, so the probabilities they print are calibrated. `nlpsuite
calibrate` refits both on the user's own labelled data; the fitted values then replace the defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlpsuite import languages
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import LABEL_EVAL, Eval, Option, Task, Tune
from nlpsuite.text import blank

if TYPE_CHECKING:  # imported where they are used: registering the tasks stays cheap (start-up time)
    import numpy as np

    from nlpsuite.eval.calibration import Calibration
    from nlpsuite.heads.scoring import Prefix

SENTIMENT_LABELS = ["positive", "negative", "neutral"]
# Few-shot examples written for this project (not taken from any dataset).
SENTIMENT_SHOTS = [
    ("a warm, funny and beautifully acted film that stays with you long after the credits.", "positive"),
    ("two hours of wooden dialogue and a plot that makes no sense at all.", "negative"),
    ("the movie opens on friday and runs about two hours.", "neutral"),
    ("the cast is superb and the story keeps you guessing until the very end.", "positive"),
    ("dull, overlong and painfully predictable.", "negative"),
    ("the package arrived on tuesday.", "neutral"),
    ("i would not recommend this to anyone; it broke after a week.", "negative"),
    ("great service and the staff were lovely.", "positive"),
]
SENTIMENT_PROMPT = "Text: {text}\nSentiment:"
# The default temperature, fitted (NLL) on a development split of 200 sentences of the public movie-review
# sentence-polarity corpus (Pang & Lee 2005), disjoint from the sentences the README's numbers were measured
# on; it lowered that split's ECE from 0.092 (T = 1) to 0.045. `nlpsuite calibrate sentiment DATA` fits the
# user's own, which then replaces it.
SENTIMENT_TEMPERATURE = 0.6

# Zero-shot classification reads each label two ways and adds the two log-probabilities (a product of experts):
# - the "noisy channel" way (Min et al., 2022): each label becomes a prefix and the text is scored under it,
#   log P(text | label). A 135M model is far better at predicting a text given its topic than at naming the topic
#   of a text: on 150 forum posts, each between two given topics, 0.83 accuracy against 0.51 for scoring the label
#   after the text. The sums grow with the text's length; dividing by sqrt(tokens) keeps one scale for short and
#   long texts.
# - the direct way: the model is asked, in its chat format, which of the labels fits, and each label's
#   log-probability as the whole reply is read, the content-free prior divided out (as for sentiment). The label
#   starts the reply, so it is read as the model writes it, in any script; a channel prefix alone misjudged
#   labels that are not topics, worst in other languages: on Chinese reviews, "about 负面" (negative) made any
#   Chinese text likelier than "about 正面" (positive), and 负面 was picked for 165 of 200 balanced reviews.
# CHANNEL_SCALE divides the channel's scores before the two are added: 0.2 was the channel's own temperature
# (fitted on those posts); 0.4 gives the reply twice that weight, which development sets preferred (100 Chinese
# reviews with Qwen2.5-Coder-0.5B-Instruct: 0.78 -> 0.82; 90 English package descriptions in 6 topics and 40
# English reviews with the default model: unchanged, 0.556 and 0.875). docs/languages.md has the measurements.
CLASSIFY_PREFIX = "The following text is about {label}.\n\n"
CHANNEL_SCALE = 0.4
CLASSIFY_QUESTION = "Classify the text as one of: {labels}. Reply with the label only."
# The temperature of the sum, fitted (NLL) on those three development sets together: ECE 0.11, 0.17 and 0.13
# at T = 1 became 0.075, 0.125 and 0.17.
CLASSIFY_TEMPERATURE = 1.6
# How classify's label scores are made (Task.scoring): a calibration fitted on scores made otherwise is refused.
CLASSIFY_SCORING = "channel/0.4 + reply (2026-12-06)"
MAX_TEXT_TOKENS = 2048  # label tasks read this much of a text; longer texts are refused, not cut


def _shots_prefix() -> str:
    return "".join(f"{SENTIMENT_PROMPT.format(text=t)} {label}\n\n" for t, label in SENTIMENT_SHOTS)


def _check_labels(labels: list[str]) -> list[str]:
    labels = [label.strip() for label in labels]
    if any(not label for label in labels):
        raise NlpsuiteError("a label is empty")
    if len(labels) < 2:
        raise NlpsuiteError("give at least two labels, e.g. --labels sports,politics")
    if len({label.lower() for label in labels}) != len(labels):
        raise NlpsuiteError("labels must be distinct: " + ", ".join(labels))
    return labels


class LabelTasks:
    """Sentiment and zero-shot classification for one Suite: prompts, prefix cache and priors, built once."""

    def __init__(self, suite) -> None:
        self.suite = suite
        self.scorer = suite.head("scoring")
        self.tokenizer = suite.tokenizer
        self._prefixes: dict[str, Prefix] = {}
        self._priors: dict[tuple, np.ndarray] = {}

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _prefix(self, shots: str, prompt: str) -> Prefix:
        """The state after the tokens of ``shots`` that every ``prompt`` after it shares: run once per model."""
        if shots not in self._prefixes:
            from nlpsuite.eval.calibration import CONTENT_FREE
            from nlpsuite.heads import derived
            from nlpsuite.heads.scoring import Prefix

            # Encoding the two together can merge tokens across the seam ("\n\n" then "Text" becomes "\n",
            # "\n", "Text"): only the tokens both encodings share are a prefix the prompts really start with.
            alone, joined = self._encode(shots), self._encode(shots + prompt.format(text=CONTENT_FREE[0]))
            shared = [a == b for a, b in zip(alone, joined, strict=False)] + [False]
            ids = alone[: shared.index(False)]
            backbone = self.suite.backbone
            shapes = {**backbone.state_shapes(1, len(ids)), "last_logits": (backbone.vocab_size,)}

            def build():
                prefix = self.scorer.prefix(ids)
                return {**prefix.state, "last_logits": prefix.last_logits}

            arrays = derived.cached(backbone.manifest, {"prefix": ids}, shapes, build)
            last = arrays.pop("last_logits")
            self._prefixes[shots] = Prefix(tuple(ids), arrays, last)
        return self._prefixes[shots]

    def _check_text(self, text: str) -> None:
        if not isinstance(text, str) or blank(text):
            raise NlpsuiteError("empty text")
        n = len(self._encode(text))
        if n > MAX_TEXT_TOKENS:
            raise NlpsuiteError(f"the text is {n} tokens; label tasks read at most {MAX_TEXT_TOKENS}: split it")

    def _scores(self, prompt: str, shots: str, texts: list[str], verbal: list[str]) -> np.ndarray:
        """Log-likelihoods of the label verbalizations ``verbal`` after ``shots + prompt(text)``, minus the
        content-free log-prior."""
        import numpy as np

        from nlpsuite.eval.calibration import CONTENT_FREE
        from nlpsuite.heads import derived

        for text in texts:
            self._check_text(text)
        prefix = self._prefix(shots, prompt) if shots else None
        key = (prompt, shots, tuple(verbal))
        if key not in self._priors:

            def build():
                free = [self._encode(shots + prompt.format(text=c)) for c in CONTENT_FREE]
                return {"log_prior": np.log(self.scorer.content_free_prior(free, verbal, prefix))}

            # "head" is the key's name in caches written before the prefix was called shots: those stay valid
            what = {"prior": prompt, "head": shots, "labels": verbal, "content_free": CONTENT_FREE}
            shapes = {"log_prior": (len(verbal),)}
            self._priors[key] = derived.cached(self.suite.backbone.manifest, what, shapes, build)["log_prior"]
        rows = [self.scorer.log_likelihoods(self._encode(shots + prompt.format(text=t)), verbal, prefix) for t in texts]
        return np.array(rows) - self._priors[key]

    def sentiment_scores(self, texts: list[str]) -> np.ndarray:
        return self._scores(SENTIMENT_PROMPT, _shots_prefix(), texts, [" " + label for label in SENTIMENT_LABELS])

    def question(self, labels: list[str]) -> str:
        """The chat turn asking which of ``labels`` fits, up to the reply, with ``{text}`` where the text goes."""
        marker = "\ufffctext\ufffc"
        ask = CLASSIFY_QUESTION.format(labels=", ".join(labels))
        rendered = self.suite.chat_template.render([{"role": "user", "content": f"{ask}\n\n{marker}"}])
        before, _, after = rendered.partition(marker)
        return "{text}".join(part.replace("{", "{{").replace("}", "}}") for part in (before, after))

    def channel_scores(self, texts: list[str], labels: list[str]) -> np.ndarray:
        """log P(text | label's prefix) per square root of the text's tokens: [texts, labels]."""
        import numpy as np

        prefixes = [self._encode(CLASSIFY_PREFIX.format(label=label)) for label in labels]
        rows = []
        for text in texts:
            self._check_text(text)
            ids = self._encode(text.strip())
            rows.append(self.scorer.continuation_log_likelihoods(prefixes, ids) / np.sqrt(len(ids)))
        return np.array(rows)

    def classify_scores(self, texts: list[str], labels: list[str]) -> np.ndarray:
        """The channel's scores (on the scale of log-probabilities) plus the direct reply's calibrated ones."""
        direct = self._scores(self.question(labels), "", texts, list(labels))
        return self.channel_scores(texts, labels) / CHANNEL_SCALE + direct


def examples(suite, task: str, inputs, gold, labels=None, head=None):
    """`nlpsuite tune` examples of a label task: the alternatives it scores (sentiment: each label after the
    few-shot prompt; classify, both ways it reads labels: the text after each label's prefix, per square root of its
    tokens, and each label as the reply to the question) and the gold."""
    from nlpsuite.tasks import Example

    if head:
        raise NlpsuiteError("tune trains the model for zero-shot --labels; a probe head is trained with 'heads train'")
    names = list(SENTIMENT_LABELS) if task == "sentiment" else _check_labels(list(labels or sorted(set(gold))))
    tasks = _tasks(suite)
    out = []
    for record, label in zip(inputs, gold, strict=True):
        if label not in names:
            raise NlpsuiteError(f"a tuning record's label {label!r} is not among: {', '.join(names)}")
        tasks._check_text(record["text"])
        if task == "sentiment":
            prompt = tasks._encode(_shots_prefix() + SENTIMENT_PROMPT.format(text=record["text"]))
            pairs = [(prompt, tasks._encode(" " + name)) for name in names]
            out.append(Example(pairs, names.index(label)))
        else:
            text = tasks._encode(record["text"].strip())
            pairs = [(tasks._encode(CLASSIFY_PREFIX.format(label=name)), text) for name in names]
            out.append(Example(pairs, names.index(label), [len(text) ** 0.5] * len(names)))
            prompt = tasks._encode(tasks.question(names).format(text=record["text"]))
            out.append(Example([(prompt, tasks._encode(name)) for name in names], names.index(label)))
    return out


def _tasks(suite) -> LabelTasks:
    return suite.shared("label-tasks", lambda: LabelTasks(suite))


def label_scores(suite, task: str, texts: list[str], labels=None, head=None) -> tuple[list[str], np.ndarray]:
    """Raw scores (before temperature) for ``task`` "sentiment" or "classify": what `calibrate` fits on."""
    if task == "sentiment":
        return list(SENTIMENT_LABELS), _tasks(suite).sentiment_scores(texts)
    if task != "classify":
        raise NlpsuiteError(f"no label scores for task {task!r}")
    if head:
        return suite.head("probe").scores(head, texts)
    labels = _check_labels(list(labels or []))
    return labels, _tasks(suite).classify_scores(texts, labels)


def calibration_for(suite, task: str, labels: list[str], head: str | None) -> Calibration:
    """The user's fitted calibration for this task and label set, else the built-in default."""
    from nlpsuite.eval import calibration
    from nlpsuite.eval.calibration import Calibration

    fitted = calibration.load(suite.source.key, suite.precision, calibration.task_key(task, labels, head))
    if fitted is not None:
        scoring = CLASSIFY_SCORING if task == "classify" and not head else ""
        if fitted.info.get("scoring", "") != scoring:
            name = "classification" if task == "classify" else task
            raise NlpsuiteError(
                f"the saved calibration of {task} for these labels was fitted on scores made another way: fit it "
                f"again with 'nlpsuite calibrate {name} DATA' (or remove it with --reset)"
            )
        return fitted.for_labels(labels)
    if task == "sentiment":
        return Calibration(labels, SENTIMENT_TEMPERATURE)
    return Calibration(labels, 1.0 if head else CLASSIFY_TEMPERATURE)


def predict(suite, task: str, texts: list[str], labels=None, head=None) -> list[dict]:
    names, scores = label_scores(suite, task, texts, labels, head)
    probs = calibration_for(suite, task, names, head).apply(scores)
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append(
            {
                "label": names[best],
                "score": round(float(row[best]), 4),
                "scores": {name: round(float(p), 4) for name, p in zip(names, row, strict=True)},
            }
        )
    return out


def run_sentiment(suite, inputs):
    languages.check(suite, [i["text"] for i in inputs])
    return predict(suite, "sentiment", [i["text"] for i in inputs])


def run_classify(suite, inputs, labels=None, head=None):
    languages.check(suite, [i["text"] for i in inputs] + list(labels or []))
    return predict(suite, "classify", [i["text"] for i in inputs], labels, head)


def _either_labels_or_head(options: dict, shared: dict, batch: bool) -> None:
    if options["labels"] and options["head"]:
        raise NlpsuiteError("give --labels a,b,... (zero-shot) or --head NAME (a trained probe), not both")
    if not options["labels"] and not options["head"]:
        raise NlpsuiteError("classify needs labels: give --labels a,b,... (zero-shot) or --head NAME (a trained probe)")


def _labels_from_data(gold: list[str], options: dict, path) -> dict:
    """Zero-shot classification is evaluated on the data's own label set (a probe brings its own)."""
    labels = sorted(set(gold))
    if len(labels) < 2:
        raise NlpsuiteError(f"{path}: classification needs at least two distinct labels in the data")
    return options if options.get("head") else {**options, "labels": labels}


def _score_labels(predictions: list[dict], gold: list[str], options: dict) -> dict:
    from nlpsuite.eval.run import score_labels

    return score_labels(predictions, gold, options)


def _check_gold(gold: list[str], predictions: list[dict]) -> None:
    from nlpsuite.eval.run import check_labels

    check_labels(gold, predictions)


OUTPUT = ("label", "score", "scores")


@hookimpl
def register_tasks(register):
    register(
        Task(
            "sentiment",
            "Sentiment of a text: positive, negative or neutral, with calibrated probabilities.",
            "scoring",
            run_sentiment,
            output=OUTPUT,
            eval=Eval("sentiment", {"text": "text"}, "label", _score_labels, check=_check_gold, options=LABEL_EVAL),
            scores=lambda suite, texts, labels=None, head=None: label_scores(suite, "sentiment", texts),
            batch_size=16,
            tune=Tune(
                "label",
                lambda suite, inputs, gold, options: examples(suite, "sentiment", inputs, gold),
                metric="accuracy",
            ),  # fmt: skip
        )
    )
    register(
        Task(
            "classify",
            "Classify a text into labels you name (zero-shot) or with a trained head, with calibrated probabilities.",
            "scoring",
            run_classify,
            options=(
                Option("labels", list, None, "Comma-separated labels (zero-shot).", short="-l", parse=_check_labels),
                Option("head", str, None, "A probe trained with 'nlpsuite heads train'.", label="Trained head"),
            ),
            output=OUTPUT,
            check=_either_labels_or_head,
            eval=Eval(
                "classification",
                {"text": "text"},
                "label",
                _score_labels,
                prepare=_labels_from_data,
                check=_check_gold,
                options=LABEL_EVAL,
            ),
            scores=lambda suite, texts, labels=None, head=None: label_scores(suite, "classify", texts, labels, head),
            scoring=CLASSIFY_SCORING,
            batch_size=16,
            tune=Tune(
                "label",
                lambda suite, inputs, gold, options: examples(suite, "classify", inputs, gold, **options),
                metric="accuracy",
            ),  # fmt: skip
        )
    )
