"""Continuous batching: sequences join a running batch after their own prefill and leave the step they finish.

One ``DecodeBatch`` holds the rows decoding together, right-aligned like ``left_pad``'s batches: a row that
joins gets empty past positions in front of its state (masked out), and columns that are padding in every
row are dropped when rows leave. Each row keeps its own sampler, stop strings and budget, and accepts
tokens exactly as ``Generator.generate`` does, so a greedy row decodes what it would decode alone.
Single-threaded: whoever owns the batch calls ``add``, ``step`` and ``remove``.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import NlpsuiteError
from .backbone import Backbone, State
from .generation import Completion, _Stream, repeating_tail
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer


class Sequence:
    """One prompt's decoding: its sampler, streamed text and the token the next step feeds in."""

    def __init__(self, prompt: list[int], params: SamplingParams, context: int, eos_ids: list[int]) -> None:
        params.check()
        if not prompt:
            raise NlpsuiteError("empty prompt")
        if len(prompt) >= context:
            raise NlpsuiteError(f"the prompt is {len(prompt)} tokens; this model's context window is {context} tokens")
        self.prompt = list(prompt)
        self.params = params
        self.budget = min(params.max_tokens, context - len(prompt))
        self.sampler = Sampler(params)
        self.eos = set() if params.ignore_eos else set(eos_ids)
        self.stop_loops = params.stop_repetition and not params.ignore_eos  # as Generator.generate
        self.stream = _Stream(list(params.stop))
        self.seen = list(prompt)
        self.pending = 0  # the last sampled token: the next step's input
        self.position = len(prompt)  # its position id
        self.prefill_ms = 0.0
        self._decode_started = 0.0
        self._decode_s = 0.0

    @property
    def done(self) -> bool:
        return self.stream.done

    def accept(self, logits: np.ndarray, tokenizer: Tokenizer) -> str:
        """Sample this row's next token from ``logits`` [1, vocab]; the text it makes final."""
        token = int(self.sampler(logits, [self.seen])[0])
        stream = self.stream
        if token in self.eos:
            delta = stream.finish("stop")
        else:
            self.seen.append(token)
            delta = stream.push(token, tokenizer)
            if self.stop_loops and not stream.done and repeating_tail(stream.ids):
                delta += stream.finish("repetition")
        if not stream.done and len(self.seen) - len(self.prompt) >= self.budget:
            delta += stream.finish("length")
        self.pending = token
        return delta

    def cancel(self) -> str:
        """End the sequence where it is (a client went away)."""
        return "" if self.stream.done else self.stream.finish("cancelled")

    def completion(self) -> Completion:
        steps = max(0, len(self.stream.ids) - 1)
        return Completion(
            text=self.stream.text,
            token_ids=self.stream.ids,
            prompt_tokens=len(self.prompt),
            finish_reason=self.stream.reason,
            prefill_ms=self.prefill_ms,
            decode_tokens_per_s=steps / self._decode_s if steps and self._decode_s > 0 else 0.0,
        )


class DecodeBatch:
    """The rows that decode together, one token each per ``step``."""

    def __init__(self, backbone: Backbone, tokenizer: Tokenizer) -> None:
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.rows: list[Sequence] = []
        self.mask = np.zeros((0, 0), np.int64)
        self.state: State | None = None

    def sequence(self, prompt: list[int], params: SamplingParams) -> Sequence:
        """A sequence for ``prompt`` on this batch's model (checked: raises NlpsuiteError)."""
        return Sequence(prompt, params, self.backbone.context_length, self.tokenizer.eos_token_ids)

    def add(self, seq: Sequence) -> str:
        """Prefill ``seq`` alone, sample its first token and let it join the batch unless that ended it."""
        started = time.perf_counter()
        n = len(seq.prompt)
        ids = np.array([seq.prompt], np.int64)
        step = self.backbone.forward(
            ids, np.ones((1, n), np.int64), np.arange(n, dtype=np.int64)[None], self.backbone.empty_state(1)
        )
        seq.prefill_ms = (time.perf_counter() - started) * 1000
        seq._decode_started = time.perf_counter()
        delta = seq.accept(step.logits[:, -1, :], self.tokenizer)
        if not seq.done:
            self._join(seq, step.state, n)
        return delta

    def _join(self, seq: Sequence, state: State, length: int) -> None:
        if not self.rows:
            self.rows, self.mask, self.state = [seq], np.ones((1, length), np.int64), state
            return
        width = self.mask.shape[1]
        if length > width:  # the newcomer is longer: every row already here gets padding in front
            self.state = self.backbone.widen_state(self.state, length - width)
            self.mask = np.concatenate([np.zeros((len(self.rows), length - width), np.int64), self.mask], axis=1)
            width = length
        row_mask = np.concatenate([np.zeros((1, width - length), np.int64), np.ones((1, length), np.int64)], axis=1)
        self.state = self.backbone.concat_states([self.state, self.backbone.widen_state(state, width - length)])
        self.mask = np.concatenate([self.mask, row_mask], axis=0)
        self.rows.append(seq)

    def step(self) -> list[tuple[Sequence, str]]:
        """One decode step for every row: (row, its new text) pairs; finished rows have left the batch."""
        if not self.rows:
            return []
        ids = np.array([[s.pending] for s in self.rows], np.int64)
        mask = np.concatenate([self.mask, np.ones((len(self.rows), 1), np.int64)], axis=1)
        positions = np.array([[s.position] for s in self.rows], np.int64)
        step = self.backbone.forward(ids, mask, positions, self.state)
        self.mask, self.state = mask, step.state
        out = []
        now = time.perf_counter()
        for row, seq in enumerate(self.rows):
            seq.position += 1
            out.append((seq, seq.accept(step.logits[row : row + 1, -1, :], self.tokenizer)))
            seq._decode_s = now - seq._decode_started
        self._keep([s for s in self.rows if not s.done])
        return out

    def remove(self, seq: Sequence) -> None:
        """Drop a row (cancelled) before the next step."""
        if seq in self.rows:
            self._keep([s for s in self.rows if s is not seq])

    def _keep(self, rows: list[Sequence]) -> None:
        if len(rows) == len(self.rows):
            return
        if not rows:
            self.rows, self.mask, self.state = [], np.zeros((0, 0), np.int64), None
            return
        index = [i for i, s in enumerate(self.rows) if any(s is r for r in rows)]
        self.rows = [self.rows[i] for i in index]
        self.state = self.backbone.select_rows(self.state, index)
        mask = self.mask[index]
        empty = int(np.argmax(mask.any(axis=0)))  # leading columns that are padding in every row left
        self.mask = mask[:, empty:]
        self.state = self.backbone.trim_state(self.state, empty)
