"""The embedding head: the final hidden state after a prompt that asks for a text's meaning in one word,
standardized per dimension and L2-normalized, in length-sorted batches.

Why not mean pooling: mean-pooled final hidden states of SmolLM2-135M rank STS-B sentence pairs at
Spearman 0.54 (dev) / 0.37 (test). Wrapping the text in ``This sentence : "…" means in one word:"``
and taking the last token's state (PromptEOL, Jiang et al. 2023) makes the model compress the text into
what it would say next: 0.74 on dev. A few dimensions of a decoder's hidden state carry large values
that dominate every cosine; dividing out each dimension's mean and spread, measured once per model on
fixed neutral sentences (embedding_sentences.py), lifts that to 0.77 (dev) / 0.71 (test).
"""

from __future__ import annotations

import numpy as np

from ..errors import NlpsuiteError
from ..runtime.backbone import left_pad
from ..text import blank
from . import derived
from .embedding_sentences import SENTENCES
from .scoring import Prefix

PROMPT = 'This sentence : "{text}" means in one word:"'
KIND = "prompt-eol-std/1"  # recorded by indexes: a change to the prompt, pooling or stats must bump it
CALIBRATION_BATCH = 16


class Embedder:
    """Texts -> unit vectors from the suite's shared backbone."""

    kind = KIND

    def __init__(self, suite) -> None:
        self.backbone = suite.backbone
        self.tokenizer = suite.tokenizer
        self.head = self._shared_head()
        self.mean, self.scale = self._stats()

    def __call__(self, texts: list[str], batch_size: int = 16, max_tokens: int = 512) -> np.ndarray:
        if not texts or any(blank(t) for t in texts):
            raise NlpsuiteError("empty text")
        z = (self.states(texts, batch_size, max_tokens) - self.mean) / self.scale
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    def encode(self, text: str, max_tokens: int = 512) -> list[int]:
        """The prompt's token ids; a text too long for ``max_tokens`` is cut inside the quotes."""
        limit = min(max_tokens, self.backbone.context_length)
        ids = self.tokenizer.encode(PROMPT.format(text=text))
        if len(ids) <= limit:
            return ids
        text_ids = self.tokenizer.encode(text, add_special_tokens=False)
        keep = max(1, limit - (len(ids) - len(text_ids)) - 4)  # a few spare: re-encoding may merge differently
        ids = self.tokenizer.encode(PROMPT.format(text=self.tokenizer.decode(text_ids[:keep])))
        return ids[-limit:]

    def states(self, texts: list[str], batch_size: int = 16, max_tokens: int = 512) -> np.ndarray:
        """The unstandardized last-token hidden states of each text's prompt: [len(texts), hidden]."""
        encoded = [self.encode(t, max_tokens) for t in texts]
        order = np.argsort([len(ids) for ids in encoded])  # similar lengths together: less padding
        out = np.empty((len(texts), self.backbone.hidden_size), np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._last_states([encoded[i] for i in rows])
        return out

    def _last_states(self, batch: list[list[int]]) -> np.ndarray:
        head = self.head
        if head is None or any(len(ids) <= len(head.ids) or tuple(ids[: len(head.ids)]) != head.ids for ids in batch):
            ids, mask, positions = left_pad(batch, self.tokenizer.pad_token_id)
            empty = self.backbone.empty_state(len(batch))
            step = self.backbone.forward(ids, mask, positions, empty, want_hidden=True, want_state=False)
            return step.hidden[:, -1]
        # Every prompt starts with the same tokens: their state is computed once and each row goes on from it,
        # left-padded after it (a KV cache attends only to unmasked positions, so a gap changes nothing).
        ids, rest, _ = left_pad([ids[len(head.ids) :] for ids in batch], self.tokenizer.pad_token_id)
        mask = np.concatenate([np.ones((len(batch), len(head.ids)), np.int64), rest], axis=1)
        positions = len(head.ids) + np.maximum(rest.cumsum(axis=1) - 1, 0)
        state = self.backbone.repeat_state(head.state, len(batch))
        return self.backbone.forward(ids, mask, positions, state, want_hidden=True, want_state=False).hidden[:, -1]

    def _shared_head(self) -> Prefix | None:
        """The state after the tokens every embedding prompt starts with (None for a recurrent backbone)."""
        if not self.backbone.can_rewind:  # a recurrent state would run through the padding after the head
            return None
        a, b = (self.tokenizer.encode(PROMPT.format(text=t)) for t in ("a", "b"))
        shared = [x == y for x, y in zip(a, b, strict=False)] + [False]
        ids = np.array([a[: shared.index(False)]], np.int64)
        if not ids.size:
            return None
        step = self.backbone.forward(ids, np.ones_like(ids), np.arange(ids.size)[None], self.backbone.empty_state(1))
        return Prefix(tuple(ids[0].tolist()), step.state, step.logits[0, -1])

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and spread of this model's states on the calibration sentences, measured once
        per converted model and kept in the user cache (derived.py)."""

        def build():
            states = self.states(list(SENTENCES), batch_size=CALIBRATION_BATCH)
            return {"mean": states.mean(axis=0), "scale": np.maximum(states.std(axis=0), 1e-6)}

        what = {"kind": KIND, "calibration": SENTENCES}
        self.stats_path = derived.path_for(self.backbone.manifest, what)
        size = (self.backbone.hidden_size,)

        def spread(stats) -> bool:  # texts are divided by it
            return bool((stats["scale"] > 0).all())

        stats = derived.cached(self.backbone.manifest, what, {"mean": size, "scale": size}, build, spread)
        return stats["mean"], stats["scale"]
