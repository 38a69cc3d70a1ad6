"""The decoding loop: batched prefill, then one token per step, feeding the backbone's state back.

It never looks inside the state, so the same loop drives transformers (KV cache) and recurrent
backbones (hidden/cell state) alike. Greedy rows on a KV cache also feed tokens guessed from their
prompt (drafting.py) and keep those the model would have chosen itself, so a step may yield several.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import NlpsuiteError
from . import grammar
from .backbone import Backbone, left_pad
from .drafting import DRAFT_TOKENS, next_draft_length, propose
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer

OnText = Callable[[int, str], None]  # (sequence index, newly final text)


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (EOS or stop string) | "length" | "repetition" | "interrupted"
    prefill_ms: float = 0.0
    decode_tokens_per_s: float = 0.0
    drafted_tokens: int = 0  # prompt-lookup guesses verified, over the whole batch...
    accepted_tokens: int = 0  # ...and how many of them the model chose itself

    @property
    def acceptance_rate(self) -> float:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else 0.0

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


REPEAT_COPIES = 3  # back-to-back copies of a span before a reply counts as a loop...
REPEAT_TOKENS = 32  # ...and as many tokens in them at least, so "ha ha ha" or a row of dashes goes on
MAX_REPEAT_SPAN = 256


def repeating_tail(ids: list[int]) -> bool:
    """Whether ``ids`` ends in at least REPEAT_COPIES back-to-back copies of one span (REPEAT_TOKENS or more in
    all): greedy decoding that got there repeats itself until the token limit."""
    last = len(ids) - 1
    for span in range(1, min(MAX_REPEAT_SPAN, len(ids) // REPEAT_COPIES) + 1):
        if ids[last] != ids[last - span]:  # cheap filter: most spans fail here
            continue
        copies = max(REPEAT_COPIES, -(-REPEAT_TOKENS // span))
        if copies * span <= len(ids) and ids[-copies * span :] == ids[-span:] * copies:
            return True
    return False


def _whole_characters(text: str) -> str:
    """``text`` without the U+FFFD that the tokenizer's decoder puts for a trailing incomplete UTF-8 sequence."""
    return text.rstrip("\ufffd")


@dataclass
class _Stream:
    """Incremental detokenization of one sequence with stop-string handling."""

    stop: list[str]
    ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    done: bool = False
    reason: str = "length"

    def push(self, token: int, tokenizer: Tokenizer) -> str:
        self.ids.append(token)
        text = tokenizer.decode(self.ids)
        cuts = [c for stop in self.stop if (c := text.find(stop, max(0, self.emitted - len(stop)))) != -1]
        if cuts:  # the earliest match wins, whichever stop string it is
            self.text, self.done, self.reason = _whole_characters(text[: min(cuts)]), True, "stop"
            return self._release(len(self.text))
        self.text = text
        safe = len(_whole_characters(text))  # an incomplete UTF-8 sequence waits for the next token
        for stop in self.stop:  # hold back a suffix that may still grow into a stop string
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:n]):
                    safe = min(safe, len(text) - n)
                    break
        return self._release(safe)

    def finish(self, reason: str) -> str:
        # A character the last token left incomplete is never completed now: drop its bytes.
        self.text, self.done, self.reason = _whole_characters(self.text), True, reason
        return self._release(len(self.text))

    def _release(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        out, self.emitted = self.text[self.emitted : upto], upto
        return out


class Generator:
    """Generates continuations of token-id prompts on one backbone."""

    def __init__(self, backbone: Backbone, tokenizer: Tokenizer) -> None:
        self.backbone = backbone
        self.tokenizer = tokenizer

    def generate(
        self, prompts: list[list[int]], params: SamplingParams, on_text: OnText | None = None
    ) -> list[Completion]:
        params = params.resolved()  # unset sampling fields: built-in greedy (the generation head fills the model's)
        params.check()
        if not prompts or any(len(p) == 0 for p in prompts):
            raise NlpsuiteError("empty prompt")
        context = self.backbone.context_length
        longest = max(len(p) for p in prompts)
        if longest >= context:
            raise NlpsuiteError(f"the prompt is {longest} tokens; this model's context window is {context} tokens")
        budget = min(params.max_tokens, context - longest)
        batch = len(prompts)
        pad = self.tokenizer.pad_token_id
        ids, mask, positions = left_pad(prompts, pad)  # every sequence's last token in the last column
        sampler = Sampler(params)
        eos = set() if params.ignore_eos else set(self.tokenizer.eos_token_ids)
        # A loop is an ending like EOS: ignore_eos (benchmarks, parity with transformers) keeps every token.
        stop_loops = params.stop_repetition and not params.ignore_eos
        streams = [_Stream(list(params.stop)) for _ in prompts]
        seen = [list(p) for p in prompts]
        held = [grammar.constraint(params.grammar, self.tokenizer) for _ in prompts] if params.grammar else None

        drafting = self._drafting(params) and held is None
        chosen = [0] * batch  # tokens chosen per row, EOS included
        drafted = accepted = 0
        draft_length = [DRAFT_TOKENS] * batch  # per row: longer while its guesses are kept, shorter when not

        def take(row: int, token: int) -> None:
            """Append one chosen token to a row: end it on EOS, a stop string, a loop or the token budget."""
            stream = streams[row]
            chosen[row] += 1
            if token in eos:
                delta = stream.finish("stop")
            else:
                seen[row].append(token)
                delta = stream.push(token, self.tokenizer)
                if held:
                    held[row].consume(token)
                    if not stream.done and held[row].finished():
                        delta += stream.finish("stop")
                if stop_loops and not stream.done and repeating_tail(stream.ids):
                    delta += stream.finish("repetition")
                if not stream.done and chosen[row] == budget:
                    delta += stream.finish("length")
            if delta and on_text:
                on_text(row, delta)

        started = time.perf_counter()
        step = self.backbone.forward(ids, mask, positions, self.backbone.empty_state(batch), device_state=True)
        prefill_s = time.perf_counter() - started
        decode_started = time.perf_counter()
        drafts: list[list[int]] = [[] for _ in prompts]  # what each row fed after its last token in this pass
        fed = 0  # the longest of them
        next_position = positions[:, -1]  # of the token fed last without drafts after it (prefill: the prompt's last)
        reason_all = None
        try:
            while True:
                # Position 0's logits follow the row's last token, position j's its j-th draft: a draft is kept
                # while it is the token the model chooses there, and the first choice that differs is kept too.
                first = sampler(self._masked(step.logits[:, 0, :], held, eos, streams), seen)
                kept = [0] * batch
                for row in range(batch):
                    if streams[row].done:
                        continue
                    token = int(first[row])
                    take(row, token)
                    for j, draft in enumerate(drafts[row], start=1):
                        if streams[row].done or token != draft:
                            break
                        kept[row] += 1
                        token = int(sampler(step.logits[row : row + 1, j, :], [seen[row]])[0])
                        take(row, token)
                    drafted += len(drafts[row])
                    accepted += kept[row]
                    draft_length[row] = next_draft_length(draft_length[row], len(drafts[row]), kept[row])
                if all(s.done for s in streams):
                    break
                next_position += 1 + np.array(kept)
                if fed:  # rejected drafts leave the state; a row that kept fewer than another masks the rest
                    past = mask.shape[1] - fed - 1
                    for row in range(batch):
                        mask[row, past + 1 + kept[row] :] = 0
                    mask = mask[:, : past + 1 + max(kept)]
                    step.state = self.backbone.keep_positions(step.state, mask.shape[1])
                drafts = [
                    propose(seen[row], min(draft_length[row], budget - chosen[row] - 1))
                    if drafting and not streams[row].done
                    else []
                    for row in range(batch)
                ]
                fed = max(map(len, drafts))
                next_ids = np.full((batch, fed + 1), pad, np.int64)
                new_mask = np.zeros((batch, fed + 1), np.int64)
                for row, draft in enumerate(drafts):  # padding after a shorter draft is never attended to
                    next_ids[row, : len(draft) + 1] = [seen[row][-1] if not streams[row].done else pad, *draft]
                    new_mask[row, : len(draft) + 1] = 1
                mask = np.concatenate([mask, new_mask], axis=1)
                positions = next_position[:, None] + np.arange(fed + 1)[None, :]
                step = self.backbone.forward(
                    next_ids, mask, positions, step.state, num_logits=fed + 1, device_state=True
                )
        except KeyboardInterrupt:
            if on_text is None:  # nobody is watching a stream: Ctrl-C stops the whole command, nothing half-done
                raise
            reason_all = "interrupted"  # a streamed reply keeps what was shown (the REPL stays in chat)
        decode_s = time.perf_counter() - decode_started
        decoded = max(chosen) - 1  # the first token of each row came from the prefill
        results = []
        for row, stream in enumerate(streams):
            if not stream.done:
                delta = stream.finish(reason_all or "length")
                if delta and on_text:
                    on_text(row, delta)
            results.append(
                Completion(
                    text=stream.text,
                    token_ids=stream.ids,
                    prompt_tokens=len(prompts[row]),
                    finish_reason=stream.reason,
                    prefill_ms=prefill_s * 1000,
                    decode_tokens_per_s=decoded / decode_s if decoded > 0 and decode_s > 0 else 0.0,
                    drafted_tokens=drafted,
                    accepted_tokens=accepted,
                )
            )
        return results

    @staticmethod
    def _masked(logits: np.ndarray, held, eos: set[int], streams: list[_Stream]) -> np.ndarray:
        """``logits`` [batch, vocab] with what each row's constraint refuses at -inf (EOS while it is incomplete)."""
        if not held:
            return logits
        logits = logits.astype(np.float32, copy=True)
        for row, constraint in enumerate(held):
            if streams[row].done:
                continue
            if not constraint.accepting():
                logits[row, list(eos)] = -np.inf
            constraint.mask(logits[row])
        return logits

    def _drafting(self, params: SamplingParams) -> bool:
        """Draft from the prompt when it can only pay: greedy choices and a state that can drop rejected tokens."""
        # Sampling would need an accept/reject step to keep its distribution: not done, so no drafting there.
        return params.draft and params.temperature == 0 and self.backbone.can_rewind
