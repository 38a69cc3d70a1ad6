"""The embedding head: mean-pooled final hidden states, L2-normalized, in length-sorted batches."""

from __future__ import annotations

import numpy as np

from ..errors import NlpsuiteError


class Embedder:
    """Texts -> unit vectors from the suite's shared backbone."""

    def __init__(self, suite) -> None:
        self.backbone = suite.backbone
        self.tokenizer = suite.tokenizer

    def __call__(self, texts: list[str], batch_size: int = 16, max_tokens: int = 512) -> np.ndarray:
        if not texts or any(not t.strip() for t in texts):
            raise NlpsuiteError("empty text")
        limit = min(max_tokens, self.backbone.context_length)
        encoded = [self.tokenizer.encode(t)[:limit] for t in texts]
        order = np.argsort([len(ids) for ids in encoded])  # similar lengths together: less padding
        out = np.empty((len(texts), self.backbone.manifest["architecture"]["hidden_size"]), np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._embed([encoded[i] for i in rows])
        return out

    def _embed(self, batch: list[list[int]]) -> np.ndarray:
        width = max(map(len, batch))
        ids = np.full((len(batch), width), self.tokenizer.pad_token_id, np.int64)
        mask = np.zeros_like(ids)
        for row, toks in enumerate(batch):
            ids[row, width - len(toks) :] = toks
            mask[row, width - len(toks) :] = 1
        positions = np.maximum(mask.cumsum(axis=1) - 1, 0)
        empty = self.backbone.empty_state(len(batch))
        step = self.backbone.forward(ids, mask, positions, empty, want_hidden=True, want_state=False)
        weights = mask[..., None].astype(np.float32)
        pooled = (step.hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
