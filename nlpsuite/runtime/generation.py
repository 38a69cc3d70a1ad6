"""The decoding loop: batched prefill, then one token per step, feeding the backbone's state back.

It never looks inside the state, so the same loop drives transformers (KV cache) and recurrent
backbones (hidden/cell state) alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import NlpsuiteError
from .backbone import Backbone, left_pad
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

        started = time.perf_counter()
        step = self.backbone.forward(ids, mask, positions, self.backbone.empty_state(batch))
        prefill_s = time.perf_counter() - started
        decode_started = time.perf_counter()
        steps = 0
        reason_all = None
        try:
            for produced in range(budget):
                tokens = sampler(step.logits[:, -1, :], seen)
                for row, token in enumerate(tokens):
                    stream = streams[row]
                    if stream.done:
                        continue
                    token = int(token)
                    if token in eos:
                        delta = stream.finish("stop")
                    else:
                        seen[row].append(token)
                        delta = stream.push(token, self.tokenizer)
                        if stop_loops and not stream.done and repeating_tail(stream.ids):
                            delta += stream.finish("repetition")
                    if delta and on_text:
                        on_text(row, delta)
                if all(s.done for s in streams) or produced == budget - 1:
                    break
                next_ids = np.array(
                    [[int(t) if not s.done else pad] for t, s in zip(tokens, streams, strict=True)], np.int64
                )
                mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
                positions = positions[:, -1:] + 1
                step = self.backbone.forward(next_ids, mask, positions, step.state)
                steps += 1
        except KeyboardInterrupt:
            if on_text is None:  # nobody is watching a stream: Ctrl-C stops the whole command, nothing half-done
                raise
            reason_all = "interrupted"  # a streamed reply keeps what was shown (the REPL stays in chat)
        decode_s = time.perf_counter() - decode_started
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
                    decode_tokens_per_s=steps / decode_s if steps and decode_s > 0 else 0.0,
                )
            )
        return results
