"""The label-scoring head: log-likelihood of each label's verbalization after a prompt.

The prompt is run once; its state is then shared by every candidate label, which are scored
together as one right-padded batch. Contextual calibration divides out the model's prior for the
labels, measured on content-free inputs (Zhao et al., 2021).
"""

from __future__ import annotations

import numpy as np

from ..errors import NlpsuiteError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(scores))


class LabelScorer:
    """Scores candidate continuations of prompts on the suite's shared backbone."""

    def __init__(self, suite) -> None:
        self.backbone = suite.backbone
        self.tokenizer = suite.tokenizer

    def log_likelihoods(self, prompt_ids: list[int], labels: list[str]) -> np.ndarray:
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
        prompt = np.array([prompt_ids], np.int64)
        step = backbone.forward(prompt, np.ones_like(prompt), np.arange(p)[None], backbone.empty_state(1))
        first = log_softmax(step.logits[0, -1])
        # Every label continues the same prompt state: repeat it along the batch axis.
        state = {name: np.repeat(value, n, axis=self._batch_axis(name)) for name, value in step.state.items()}
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

    def _batch_axis(self, state_name: str) -> int:
        spec = next(s for s in self.backbone.state_spec if s["input"] == state_name)
        return spec["shape"].index(None)

    def probabilities(self, prompt_ids: list[int], labels: list[str], prior: np.ndarray | None = None) -> np.ndarray:
        """P(label | prompt) over the given labels; with ``prior`` (from ``content_free_prior``), calibrated."""
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise NlpsuiteError("give at least two distinct labels")
        probs = softmax(self.log_likelihoods(prompt_ids, labels))
        if prior is not None:
            probs = probs / prior
            probs = probs / probs.sum()
        return probs

    def content_free_prior(self, prompts_ids: list[list[int]], labels: list[str]) -> np.ndarray:
        """The model's average label distribution on content-free prompts (e.g. the template with 'N/A')."""
        return np.mean([softmax(self.log_likelihoods(ids, labels)) for ids in prompts_ids], axis=0)
