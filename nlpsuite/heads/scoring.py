"""The label-scoring head: log-likelihood of each label's verbalization after a prompt.

The prompt is run once; its state is then shared by every candidate label, which are scored
together as one right-padded batch. Contextual calibration divides out the model's prior for the
labels, measured on content-free inputs (Zhao et al., 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import log_softmax, softmax
from ..runtime.backbone import left_pad


@dataclass(frozen=True)
class Prefix:
    """A prompt prefix run once (e.g. instructions and few-shot examples) whose state later prompts reuse."""

    ids: tuple[int, ...]
    state: dict
    last_logits: np.ndarray


class LabelScorer:
    """Scores candidate continuations of prompts on the suite's shared backbone."""

    def __init__(self, suite) -> None:
        self.backbone = suite.backbone
        self.tokenizer = suite.tokenizer

    def prefix(self, ids: list[int]) -> Prefix:
        """Run a shared prompt prefix once; pass it to ``log_likelihoods`` for prompts that start with it."""
        if not ids:
            raise NlpsuiteError("empty prefix")
        backbone, p = self.backbone, len(ids)
        arr = np.array([ids], np.int64)
        step = backbone.forward(arr, np.ones_like(arr), np.arange(p)[None], backbone.empty_state(1))
        return Prefix(tuple(ids), step.state, step.logits[0, -1])

    def _prompt_state(self, prompt_ids: list[int], prefix: Prefix | None):
        """(state after the prompt, logits of its last position), reusing ``prefix`` when the prompt starts with it."""
        backbone, p = self.backbone, len(prompt_ids)
        start, state = 0, backbone.empty_state(1)
        if prefix is not None and len(prefix.ids) <= p and tuple(prompt_ids[: len(prefix.ids)]) == prefix.ids:
            if len(prefix.ids) == p:
                return prefix.state, prefix.last_logits
            start, state = len(prefix.ids), prefix.state
        rest = np.array([prompt_ids[start:]], np.int64)
        step = backbone.forward(rest, np.ones((1, p), np.int64), np.arange(start, p)[None], state)
        return step.state, step.logits[0, -1]

    def log_likelihoods(self, prompt_ids: list[int], labels: list[str], prefix: Prefix | None = None) -> np.ndarray:
        """Sum of log-probabilities of each label's tokens after ``prompt_ids``: shape [len(labels)]."""
        if not prompt_ids:
            raise NlpsuiteError("empty prompt")
        label_ids = [self.tokenizer.encode(label, add_special_tokens=False) for label in labels]
        if any(not ids for ids in label_ids):
            raise NlpsuiteError("a label is empty after tokenization")
        longest = max(map(len, label_ids))
        if len(prompt_ids) + longest > self.backbone.context_length:
            raise NlpsuiteError(f"prompt and label exceed the context window of {self.backbone.context_length} tokens")
        backbone, n, p = self.backbone, len(labels), len(prompt_ids)
        prompt_state, last_logits = self._prompt_state(prompt_ids, prefix)
        first = log_softmax(last_logits)
        if longest == 1:  # one token per label: the prompt's own next-token distribution says it all
            return np.array([first[toks[0]] for toks in label_ids])
        state = backbone.repeat_state(prompt_state, n)  # every label continues the same prompt
        ids = np.full((n, longest), self.tokenizer.pad_token_id, np.int64)
        mask = np.zeros((n, p + longest), np.int64)
        mask[:, :p] = 1
        for row, toks in enumerate(label_ids):  # right padding: pads follow the real tokens, so they can't affect them
            ids[row, : len(toks)] = toks
            mask[row, p : p + len(toks)] = 1
        positions = np.tile(np.arange(p, p + longest), (n, 1))
        later = log_softmax(backbone.forward(ids, mask, positions, state, num_logits=longest, want_state=False).logits)
        scores = np.empty(n)
        for row, toks in enumerate(label_ids):
            scores[row] = first[toks[0]] + sum(later[row, k - 1, toks[k]] for k in range(1, len(toks)))
        return scores

    def sequence(self, prompt_ids: list[int], text: str) -> tuple[float, int]:
        """(log-probability of ``text`` right after ``prompt_ids``, its number of tokens): what a sequence-level
        confidence is made of; (0.0, 0), no evidence, for a text of no tokens or one the window cannot hold."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if not ids or len(prompt_ids) + len(ids) > self.backbone.context_length:
            return 0.0, 0
        return float(self.log_likelihoods(prompt_ids, [text])[0]), len(ids)

    def continuation_log_likelihoods(self, prefixes: list[list[int]], text_ids: list[int], window: int = 256):
        """Sum of log P(text | prefix) for each prefix: the "noisy channel" direction, where each prefix
        names a label and the text is scored under it. Returns [len(prefixes)].

        All prefixes run as one left-padded batch; the text follows in windows over the shared state, so
        logits are only ever held for ``window`` positions.
        """
        if not text_ids or any(not p for p in prefixes):
            raise NlpsuiteError("empty text or prefix")
        backbone, n, k = self.backbone, len(text_ids), len(prefixes)
        width = max(map(len, prefixes))
        if width + n > backbone.context_length:
            raise NlpsuiteError(f"the text is longer than the context window of {backbone.context_length} tokens")
        first = text_ids[:window]
        ids, mask, positions = left_pad([[*prefix, *first] for prefix in prefixes], self.tokenizer.pad_token_id)
        step = backbone.forward(ids, mask, positions, backbone.empty_state(k), num_logits=len(first) + 1)
        total = np.zeros(k)
        done = 0
        while True:
            logp = log_softmax(step.logits[:, :-1])  # position j predicts text token done + j
            chunk = text_ids[done : done + logp.shape[1]]
            total += logp[:, np.arange(len(chunk)), chunk].sum(axis=1)
            last_logits = step.logits[:, -1]
            done += len(chunk)
            if done >= n:
                return total
            piece = text_ids[done : done + window]
            arr = np.tile(np.array(piece, np.int64), (k, 1))
            mask = np.concatenate([mask, np.ones_like(arr)], axis=1)
            positions = positions[:, -1:] + 1 + np.arange(len(piece))[None]
            step = backbone.forward(arr, mask, positions, step.state, num_logits=len(piece))
            # the previous window's last logits predict this window's first token
            step.logits = np.concatenate([last_logits[:, None], step.logits], axis=1)

    def probabilities(
        self, prompt_ids: list[int], labels: list[str], prior: np.ndarray | None = None, prefix: Prefix | None = None
    ) -> np.ndarray:
        """P(label | prompt) over the given labels; with ``prior`` (from ``content_free_prior``), calibrated."""
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise NlpsuiteError("give at least two distinct labels")
        probs = softmax(self.log_likelihoods(prompt_ids, labels, prefix))
        if prior is not None:
            probs = probs / prior
            probs = probs / probs.sum()
        return probs

    def content_free_prior(
        self, prompts_ids: list[list[int]], labels: list[str], prefix: Prefix | None = None
    ) -> np.ndarray:
        """The model's average label distribution on content-free prompts (e.g. the template with 'N/A')."""
        return np.mean([softmax(self.log_likelihoods(ids, labels, prefix)) for ids in prompts_ids], axis=0)
