"""The relevance head: how well a passage answers a query, scored as how likely the model finds the query after
reading the passage (query likelihood, as in UPR: Sachan et al., 2022), against how likely it finds the query
after no passage at all.

Why this and not "is the passage relevant? yes/no" (the probability of " yes" after the passage, the query and
that question): on the first 5 search hits of 26 Debian FAQ questions (benchmarks/make_rerank_sets.py), the gain
below tells the relevant passages from the others at ROC AUC 0.74, the yes/no label at 0.48 (chance). On the
held-out Python FAQ questions (first 20 hits of each, 48 of 168 questions measured), reranking by the gain
takes search's nDCG@10 from 0.751 to 0.794 (MRR@10 0.695 to 0.753; 12 questions better, 7 worse); by the yes/no
label it falls to 0.269. Both cost the same: one pass over the N passages.

One left-padded batch holds every passage's prompt plus one content-free prompt; the query follows in the same
pass, so a query and its N passages cost one forward of N + 1 rows. The per-token log-likelihood gain over the
content-free prompt (pointwise mutual information) is comparable across queries; a logistic fit maps it to a
probability that the passage is the relevant one (fitted on those Debian questions, like the label tasks'
temperatures).
"""

from __future__ import annotations

import numpy as np

from ..errors import NlpsuiteError
from ..numeric import log_softmax
from ..runtime.backbone import left_pad

PASSAGE_PROMPT = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"
CONTENT_FREE = "N/A"
MAX_PASSAGE_TOKENS = 256  # longer passages are cut: the query is asked of their beginning
MAX_QUERY_TOKENS = 64
ROWS = 16  # passages scored in one pass
# relevance = sigmoid(SLOPE * (gain per query token) + BIAS): a logistic regression fitted on the 130 (question,
# hit) pairs of those 26 Debian questions; on the 960 held-out Python pairs it predicts 0.088 on average for a
# base rate of 0.097, ECE 0.038 (10 bins)
SLOPE = 0.672
BIAS = -2.85


class RelevanceHead:
    """(query, passages) -> relevance from 0 to 1 on the suite's shared backbone."""

    def __init__(self, suite) -> None:
        self.backbone = suite.backbone
        self.tokenizer = suite.tokenizer

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def prompt(self, passage: str) -> list[int]:
        """The ids a passage is read as (cut inside the passage when it is long)."""
        ids = self._encode(passage)
        if len(ids) > MAX_PASSAGE_TOKENS:
            passage = self.tokenizer.decode(ids[:MAX_PASSAGE_TOKENS])
        return self._encode(PASSAGE_PROMPT.format(passage=passage))

    def query_log_likelihoods(self, query: str, passages: list[str]) -> tuple[np.ndarray, int]:
        """(log P(query | each passage's prompt) for the passages then the content-free prompt, query tokens)."""
        if not isinstance(query, str) or not query.strip():
            raise NlpsuiteError("empty query")
        query_ids = self._encode(" " + query.strip())[:MAX_QUERY_TOKENS]
        prompts = [self.prompt(p) for p in passages] + [self.prompt(CONTENT_FREE)]
        out = np.empty(len(prompts))
        for start in range(0, len(prompts), ROWS):
            rows = [p + query_ids for p in prompts[start : start + ROWS]]
            if max(map(len, rows)) > self.backbone.context_length:
                raise NlpsuiteError(
                    f"a passage and the query exceed the context window ({self.backbone.context_length})"
                )
            ids, mask, positions = left_pad(rows, self.tokenizer.pad_token_id)
            empty = self.backbone.empty_state(len(rows))
            logits = self.backbone.forward(ids, mask, positions, empty, num_logits=len(query_ids) + 1, want_state=False)
            logp = log_softmax(logits.logits[:, :-1])  # position j predicts query token j
            out[start : start + len(rows)] = logp[:, np.arange(len(query_ids)), query_ids].sum(axis=1)
        return out, len(query_ids)

    def gains(self, query: str, passages: list[str]) -> np.ndarray:
        """Per query token, how much more likely each passage makes the query than no passage does."""
        likelihoods, n = self.query_log_likelihoods(query, passages)
        return (likelihoods[:-1] - likelihoods[-1]) / n

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        """Relevance of each passage to ``query``, from 0 to 1."""
        if not passages or any(not isinstance(p, str) or not p.strip() for p in passages):
            raise NlpsuiteError("empty passage")
        return 1.0 / (1.0 + np.exp(-(SLOPE * self.gains(query, passages) + BIAS)))
