"""The decoding loop of every front-end: prompts are prefilled in chunks, rows decode together (each with its
own drafts) and leave the step they finish; a prompt cache spares prefixes already seen.

Rows being prefilled wait in ``waiting``. Each ``step`` runs one prefill pass (one chunk of a long prompt, or
several short prompts, ``prefill_chunk`` tokens at most), then one decode pass for the rows decoding. Those are
right-aligned like ``left_pad``'s batches: a row that joins gets empty past positions in front of its state
(masked out), and columns that are padding in every row go when rows leave. A decode pass feeds each row its
pending token and its drafts (rows draft different numbers, or none), keeps the drafts each row would have
chosen itself and drops the rest from the state, so a greedy row decodes what it decodes alone.
Single-threaded: whoever owns the batch calls ``add``, ``step`` and ``remove``.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import NlpsuiteError
from . import grammar
from .backbone import Backbone, State, on_host
from .drafting import pass_draft_limit
from .prompt_cache import BLOCK, PromptCache
from .sampling import SamplingParams
from .sequence import Constraint, Sequence
from .tokenizer import Tokenizer

# Tokens per prefill pass. On the default model a 256-token pass runs at ~95% of a whole-prompt pass's speed;
# it bounds a pass's memory and how long decoding rows (and Ctrl-C) wait for one.
PREFILL_CHUNK = 256

Events = list[tuple[Sequence, str]]  # (row, the text a pass made final for it)


class DecodeBatch:
    """The rows of one backbone: those waiting for their prompt's prefill and those decoding."""

    def __init__(
        self,
        backbone: Backbone,
        tokenizer: Tokenizer,
        cache: PromptCache | None = None,
        prefill_chunk: int = PREFILL_CHUNK,
        serving: bool = False,
    ) -> None:
        """``serving``: rows of many callers. Decode passes go on between prefill chunks, and a prefill pass that
        fails fails only its own rows (each alone, on a retry). Otherwise (one caller's batch) every prompt is
        prefilled first, so that the rows decode together, and errors propagate."""
        if prefill_chunk < 1:
            raise NlpsuiteError("--prefill-chunk must be at least 1")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.cache = cache
        self.chunk = max(BLOCK, prefill_chunk - prefill_chunk % BLOCK)  # whole blocks: every chunk's end is cached
        self.serving = serving
        self.rows: list[Sequence] = []  # decoding
        self.waiting: list[Sequence] = []  # being prefilled, first come first served
        self.mask = np.zeros((0, 0), np.int64)
        self.state: State | None = None
        self.prefilled = 0  # prompt tokens fed by prefill passes (work, counted: the cache makes it fewer)
        self.passes = 0

    def sequence(self, prompt: list[int], params: SamplingParams, constraint: Constraint | None = None) -> Sequence:
        """A row for ``prompt`` on this batch's model (checked: raises NlpsuiteError)."""
        backbone = self.backbone
        if constraint is None and params.grammar is not None:  # the request's grammar, one matcher per row
            constraint = grammar.constraint(params.grammar, self.tokenizer)
        return Sequence(prompt, params, backbone.context_length, self.tokenizer, constraint, backbone.can_rewind)

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.waiting)

    def add(self, rows: list[Sequence]) -> None:
        """Queue rows for their prefill (done by ``step``)."""
        for row in rows:
            row.keys = self.cache.keys(row.prompt) if self.cache is not None else []
        self.waiting.extend(rows)

    def step(self) -> Events:
        """One prefill pass, if a prompt waits, and one decode pass, if rows decode (and, outside ``serving``, no
        prompt waits): each row that chose tokens with the text they made final. Finished rows have left."""
        events = self._prefill() if self.waiting else []
        if self.rows and (self.serving or not self.waiting):
            events += self._decode()
        merged: dict[int, tuple[Sequence, str]] = {}  # a row just prefilled decodes in the same step: one event
        for row, delta in events:
            merged[id(row)] = (row, merged[id(row)][1] + delta if id(row) in merged else delta)
        return list(merged.values())

    def remove(self, row: Sequence) -> None:
        """Drop a row (cancelled) before the next step."""
        if row in self.waiting:
            self.waiting.remove(row)
            row.state = None
        elif row in self.rows:
            self._keep([r for r in self.rows if r is not row])

    def clear(self) -> list[Sequence]:
        """Drop every row, keeping nothing of their state (a pass failed: it may be broken); the rows dropped."""
        dropped = self.rows + self.waiting
        self.rows, self.waiting, self.mask, self.state = [], [], np.zeros((0, 0), np.int64), None
        return dropped

    # -- prefill -----------------------------------------------------------------------------------------------

    def _prefill(self) -> Events:
        rows = self._plan()
        for row in rows:
            self._restore(row)
        spans = [row.prompt[row.fed : row.fed + self._width(row)] for row in rows]
        ids, mask, positions, state = self._prefill_inputs(rows, spans)
        started = time.perf_counter()
        try:
            step = self.backbone.forward(ids, mask, positions, state)
        except Exception as exc:
            if not self.serving:
                raise
            if len(rows) > 1:  # which prompt failed is not known: each alone next time
                for row in rows:
                    row.solo = True
                return []
            self.waiting.remove(rows[0])
            return [(rows[0], rows[0].fail(exc))]
        elapsed = time.perf_counter() - started
        self.passes += 1
        for row, span in zip(rows, spans, strict=True):
            row.fed += len(span)
            row.prefill_s += elapsed
            self.prefilled += len(span)
        if self.cache is not None:
            for i, row in enumerate(rows):
                self.cache.store(row.prompt, step.state, i, np.flatnonzero(mask[i]))
        return self._after_prefill(rows, step, mask)

    def _plan(self) -> list[Sequence]:
        """The waiting rows that the next prefill pass feeds: first come first served, several short prompts
        together; a row whose next block another row computes in this pass waits to take it from the cache."""
        chosen: list[Sequence] = []
        computing: set[bytes] = set()
        widest = 0
        for row in self.waiting:
            held = self.cache.match(row.keys, row.fed, len(row.prompt) - 1) if self.cache is not None else row.fed
            if held // BLOCK < len(row.keys) and row.keys[held // BLOCK] in computing:
                continue
            width = min(len(row.prompt) - held, self.chunk)
            if chosen and (row.solo or chosen[0].solo or (len(chosen) + 1) * max(widest, width) > self.chunk):
                break
            chosen.append(row)
            widest = max(widest, width)
            computing.update(row.keys[held // BLOCK : (held + width) // BLOCK])
        return chosen

    def _restore(self, row: Sequence) -> None:
        """Take what the cache holds of the row's prompt beyond what the row holds already."""
        if self.cache is None or row.fed % BLOCK:
            return
        end, part = self.cache.restore(row.keys, row.fed, len(row.prompt) - 1)
        if part is None:
            return
        if self.cache.blocks and row.state is not None:
            row.state = self.backbone.concat_positions([row.state, part])
            row.mask = np.concatenate([row.mask, np.ones((1, end - row.fed), np.int64)], axis=1)
        else:
            row.state, row.mask = part, np.ones((1, end), np.int64)
        row.cached_tokens += end - row.fed
        row.fed = end

    def _width(self, row: Sequence) -> int:
        """How many prompt tokens the row feeds in this pass; a recurrent state stops at a block's end before the
        prompt's last token, where it can be kept."""
        width = min(len(row.prompt) - row.fed, self.chunk)
        if self.cache is not None and not self.cache.blocks and row.fed + width == len(row.prompt):
            aligned = len(row.prompt) - len(row.prompt) % BLOCK
            if row.fed < aligned < len(row.prompt):
                width = aligned - row.fed
        return width

    def _prefill_inputs(self, rows: list[Sequence], spans: list[list[int]]):
        """(ids, mask, positions, state) of one prefill pass: each row's new tokens right-aligned after its own
        past, the pasts widened to the longest one."""
        backbone = self.backbone
        wide = max(map(len, spans))
        ids = np.full((len(rows), wide), self.tokenizer.pad_token_id, np.int64)
        new = np.zeros((len(rows), wide), np.int64)
        positions = np.zeros((len(rows), wide), np.int64)
        for i, (row, span) in enumerate(zip(rows, spans, strict=True)):
            ids[i, wide - len(span) :] = span
            new[i, wide - len(span) :] = 1
            positions[i, wide - len(span) :] = np.arange(row.fed, row.fed + len(span))
        pasts = [row.state if row.state is not None else backbone.empty_state(1) for row in rows]
        masks = [row.mask if row.state is not None else np.zeros((1, 0), np.int64) for row in rows]
        longest = max(m.shape[1] for m in masks)
        if len(rows) == 1:
            return ids, np.concatenate([masks[0], new], axis=1), positions, pasts[0]
        pasts = [backbone.widen_state(p, longest - m.shape[1]) for p, m in zip(pasts, masks, strict=True)]
        masks = [np.pad(m, ((0, 0), (longest - m.shape[1], 0))) for m in masks]
        mask = np.concatenate([np.concatenate(masks, axis=0), new], axis=1)
        return ids, mask, positions, backbone.concat_states(pasts)

    def _after_prefill(self, rows: list[Sequence], step, mask: np.ndarray) -> Events:
        """Rows whose prompt is in: their first token, and those it did not end join the decoding rows; the
        others keep their state for their next chunk."""
        events, joining = [], []
        for i, row in enumerate(rows):
            if row.fed < len(row.prompt):
                own = step.state if len(rows) == 1 else self.backbone.select_rows(step.state, [i])
                row.state, row.mask = own, mask[i : i + 1]
                continue
            self.waiting.remove(row)
            row.state = None
            events.append((row, row.first(step.logits[i, -1])))
            if not row.done:
                joining.append(i)
        if joining:
            state = step.state if len(joining) == len(rows) else self.backbone.select_rows(step.state, joining)
            self._join([rows[i] for i in joining], state, mask[joining])
        return events

    # -- decode ------------------------------------------------------------------------------------------------

    def _decode(self) -> Events:
        rows = self.rows
        limit = pass_draft_limit(len(rows))
        drafts = [row.drafts(limit) for row in rows]
        fed = max(map(len, drafts))
        ids = np.full((len(rows), fed + 1), self.tokenizer.pad_token_id, np.int64)
        new = np.zeros((len(rows), fed + 1), np.int64)
        for i, (row, draft) in enumerate(zip(rows, drafts, strict=True)):  # padding after a draft is never attended
            ids[i, : len(draft) + 1] = [row.pending, *draft]
            new[i, : len(draft) + 1] = 1
        positions = np.array([[row.position] for row in rows], np.int64) + np.arange(fed + 1)[None, :]
        past = self.mask.shape[1]
        mask = np.concatenate([self.mask, new], axis=1)
        step = self.backbone.forward(ids, mask, positions, self.state, num_logits=fed + 1, device_state=True)
        self.passes += 1
        self.mask, self.state = mask, step.state
        events, kept = [], []
        for i, (row, draft) in enumerate(zip(rows, drafts, strict=True)):
            k, delta = row.verify(step.logits[i, : len(draft) + 1], draft)
            kept.append(k)
            events.append((row, delta))
        if fed:
            self._drop_rejected(past, kept, drafts)
        if self.cache is not None and not self.cache.blocks:
            self._snapshot()
        self._keep([row for row in rows if not row.done])
        return events

    def _drop_rejected(self, past: int, kept: list[int], drafts: list[list[int]]) -> None:
        """Rejected drafts leave the state; a row that kept fewer than another masks the rest."""
        for i, k in enumerate(kept):
            self.mask[i, past + 1 + k :] = 0
        width = past + 1 + max(kept)
        self.mask = self.mask[:, :width]
        if self.backbone.can_rewind:
            self.state = self.backbone.keep_positions(self.state, width)
        elif any(k < len(d) and not row.done for row, k, d in zip(self.rows, kept, drafts, strict=True)):
            raise NlpsuiteError("a constraint forced a token it did not allow (a recurrent state cannot take it back)")

    def _snapshot(self) -> None:
        """A recurrent state is kept whenever a row has fed a whole number of blocks."""
        fed = self.mask.sum(axis=1)
        for i, row in enumerate(self.rows):
            if not row.done and fed[i] % BLOCK == 0:
                self.state = on_host(self.state)
                self.cache.store(row.seen, self.state, i, np.arange(fed[i]))

    # -- rows joining and leaving ------------------------------------------------------------------------------

    def _join(self, rows: list[Sequence], state: State, mask: np.ndarray) -> None:
        empty = int(np.argmax(mask.any(axis=0)))  # columns only the rows that already finished needed
        if empty:
            mask, state = mask[:, empty:], self.backbone.trim_state(state, empty)
        if not self.rows:
            self.rows, self.mask, self.state = rows, mask, state
            return
        self.state = on_host(self.state)
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

    def _keep(self, rows: list[Sequence]) -> None:
        """Only ``rows`` go on decoding; the state of those leaving goes to the cache."""
        if len(rows) == len(self.rows):
            return
        index = [i for i, r in enumerate(self.rows) if any(r is k for k in rows)]
        if self.cache is not None and self.cache.blocks:
            self.state = on_host(self.state)
            for i, row in enumerate(self.rows):
                if i not in index:
                    self.cache.store(row.seen, self.state, i, np.flatnonzero(self.mask[i]))
        if not rows:
            self.rows, self.mask, self.state = [], np.zeros((0, 0), np.int64), None
            return
        self.rows = [self.rows[i] for i in index]
        self.state = self.backbone.select_rows(on_host(self.state), index)
        mask = self.mask[index]
        empty = int(np.argmax(mask.any(axis=0)))  # leading columns that are padding in every row left
        self.mask = mask[:, empty:]
        if empty:
            self.state = self.backbone.trim_state(self.state, empty)
