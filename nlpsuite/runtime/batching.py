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
from . import grammar
from .backbone import Backbone, State, left_pad
from .generation import Completion, _Stream, repeating_tail
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer


class Sequence:
    """One prompt's decoding: its sampler, streamed text and the token the next step feeds in."""

    def __init__(
        self, prompt: list[int], params: SamplingParams, context: int, eos_ids: list[int], constraint=None
    ) -> None:
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
        self.eos_ids, self.constraint = list(eos_ids), constraint  # what the output must match (grammar.py)
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
        if self.constraint is not None:
            logits = logits.astype(np.float32, copy=True)
            if not self.constraint.accepting():
                logits[0, self.eos_ids] = -np.inf
            self.constraint.mask(logits[0])
        token = int(self.sampler(logits, [self.seen])[0])
        stream = self.stream
        if token in self.eos:
            delta = stream.finish("stop")
        else:
            self.seen.append(token)
            delta = stream.push(token, tokenizer)
            if self.constraint is not None:
                self.constraint.consume(token)
                if not stream.done and self.constraint.finished():
                    delta += stream.finish("stop")
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
        held = grammar.constraint(params.grammar, self.tokenizer) if params.grammar else None
        return Sequence(prompt, params, self.backbone.context_length, self.tokenizer.eos_token_ids, held)

    def add(self, seqs: list[Sequence]) -> list[str]:
        """Prefill ``seqs`` together (left-padded, as ``Generator.generate`` does), sample each one's first token
        and let those it did not end join the batch; the text each made final."""
        started = time.perf_counter()
        ids, mask, positions = left_pad([s.prompt for s in seqs], self.tokenizer.pad_token_id)
        step = self.backbone.forward(ids, mask, positions, self.backbone.empty_state(len(seqs)))
        now = time.perf_counter()
        deltas = []
        for row, seq in enumerate(seqs):
            seq.prefill_ms, seq._decode_started = (now - started) * 1000, now
            deltas.append(seq.accept(step.logits[row : row + 1, -1, :], self.tokenizer))
        keep = [row for row, seq in enumerate(seqs) if not seq.done]
        if keep:
            state = step.state if len(keep) == len(seqs) else self.backbone.select_rows(step.state, keep)
            self._join([seqs[row] for row in keep], state, mask[keep])
        return deltas

    def _join(self, rows: list[Sequence], state: State, mask: np.ndarray) -> None:
        empty = int(np.argmax(mask.any(axis=0)))  # columns only the rows that already finished needed
        mask, state = mask[:, empty:], self.backbone.trim_state(state, empty)
        if not self.rows:
            self.rows, self.mask, self.state = rows, mask, state
            return
        old, new = self.mask.shape[1], mask.shape[1]
        if new > old:  # the newcomers are longer: every row already here gets padding in front
            self.state = self.backbone.widen_state(self.state, new - old)
            self.mask = np.concatenate([np.zeros((len(self.rows), new - old), np.int64), self.mask], axis=1)
        elif old > new:
            state = self.backbone.widen_state(state, old - new)
            mask = np.concatenate([np.zeros((len(rows), old - new), np.int64), mask], axis=1)
        self.state = self.backbone.concat_states([self.state, state])
        self.mask = np.concatenate([self.mask, mask], axis=0)
        self.rows = self.rows + rows

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
