"""One sequence's decoding: its tokens, streamed text, stop rules, budget, drafts, sampler and constraint.

Every front-end decodes through these rows (the CLI and ``Suite`` through ``Generator``, the server through its
engine), and batching.py steps a batch of them, so the rules for a token are written here once: how it is
chosen (the constraint's mask, then the sampler), and what it does to the row (EOS, stop strings, a loop, the
budget, a grammar finished).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import NlpsuiteError
from .drafting import DRAFT_TOKENS, MAX_DRAFT_TOKENS, next_draft_length, propose
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer

OnText = Callable[[int, str], None]  # (sequence index, newly final text)
# A chosen token's log-probability under the model's own distribution and the top alternatives, best first.
TokenLogprob = tuple[int, float, list[tuple[int, float]]]


class Constraint(Protocol):
    """What a row's output must match (a JSON schema, a regex, a grammar): the loop asks it at every token.

    ``mask`` runs before repetition penalty, temperature, top-k and top-p; EOS is allowed only while
    ``accepting``; ``finished`` ends the row ("stop"); ``forced`` tokens are fed as drafts that are always kept,
    and prompt-lookup drafts are cut to ``valid_prefix`` before they are verified. The loop consumes only
    tokens it keeps, one at a time, in order; ``rollback`` is there for an implementation's own look-ahead."""

    def mask(self, logits: np.ndarray) -> None:
        """Set the logits [vocab] of tokens not allowed next to -inf, in place."""

    def consume(self, token: int) -> None:
        """Advance past ``token`` (always one ``mask`` allowed)."""

    def accepting(self) -> bool:
        """Whether the output so far is complete enough to end here (EOS allowed)."""

    def finished(self) -> bool:
        """Whether nothing more can follow: the row ends now."""

    def forced(self) -> list[int]:
        """The tokens that must come next, whatever the model prefers (may be empty)."""

    def valid_prefix(self, tokens: list[int]) -> int:
        """How many of ``tokens``, from the current state, the constraint allows in a row."""

    def rollback(self, n: int) -> None:
        """Undo the last ``n`` consumed tokens."""


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (EOS, stop string, grammar done) | "length" | "repetition" | "interrupted" | ...
    prefill_ms: float = 0.0
    decode_tokens_per_s: float = 0.0
    drafted_tokens: int = 0  # prompt-lookup guesses verified for this sequence...
    accepted_tokens: int = 0  # ...and how many of them the model chose itself
    cached_tokens: int = 0  # prompt tokens whose state came from the prompt cache (not prefilled)
    logprobs: list[TokenLogprob] | None = None  # per chosen token, when SamplingParams.logprobs asked for them

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
class Stream:
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


def top_logprobs(logits: np.ndarray, token: int, k: int) -> TokenLogprob:
    """``token``'s log-probability under softmax(``logits``) and the ``k`` likeliest tokens', best first."""
    shifted = logits.astype(np.float64) - logits.max()
    logp = shifted - np.log(np.exp(shifted).sum())
    k = min(k, len(logp))
    best = np.argpartition(-logp, k - 1)[:k] if k else np.zeros(0, np.int64)
    best = best[np.argsort(-logp[best], kind="stable")]
    return token, float(logp[token]), [(int(t), float(logp[t])) for t in best]


class Sequence:
    """One prompt's decoding: what it has chosen, what it streams, and the token the next pass feeds in."""

    def __init__(
        self,
        prompt: list[int],
        params: SamplingParams,
        context: int,
        tokenizer: Tokenizer,
        constraint: Constraint | None = None,
        can_rewind: bool = True,
    ) -> None:
        params = params.resolved()  # unset sampling fields: built-in greedy (the generation head fills the model's)
        params.check()
        if not prompt:
            raise NlpsuiteError("empty prompt")
        if len(prompt) >= context:
            raise NlpsuiteError(f"the prompt is {len(prompt)} tokens; this model's context window is {context} tokens")
        self.prompt = list(prompt)
        self.params = params
        self.tokenizer = tokenizer
        self.budget = min(params.max_tokens, context - len(prompt))
        self.sampler = Sampler(params)
        self.eos_ids = list(tokenizer.eos_token_ids)
        self.eos = set() if params.ignore_eos else set(self.eos_ids)
        # A loop is an ending like EOS: ignore_eos (benchmarks, parity with transformers) keeps every token.
        self.stop_loops = params.stop_repetition and not params.ignore_eos
        self.stream = Stream(list(params.stop))
        self.seen = list(prompt)  # the prompt and every token chosen since (EOS aside)
        self.constraint = constraint
        self.logprobs: list[TokenLogprob] | None = [] if params.logprobs is not None else None
        # Draft from the prompt when it can only pay: greedy choices (sampling would need an accept/reject step to
        # keep its distribution) and a state that can drop rejected tokens. Forced tokens are drafted regardless.
        self.drafting = params.draft and params.temperature == 0 and can_rewind
        self.draft_length = DRAFT_TOKENS  # longer while its guesses are kept, shorter when not
        self.chosen = 0  # tokens chosen, EOS included
        self.drafted = self.accepted = 0
        self._forced = 0  # how many of the drafts being verified a constraint forced
        self.pending = 0  # the last chosen token: the next pass's input
        self.position = 0  # its position id
        self.fed = 0  # prompt tokens whose state is held (while the prompt is prefilled)
        self.cached_tokens = 0
        self.keys: list[bytes] = []  # the prompt cache's key for each whole block of the prompt
        self.state: dict | None = None  # the prompt's state while it is prefilled (a batch of one)...
        self.mask = np.zeros((1, 0), np.int64)  # ...and its attention mask
        self.solo = False  # prefilled alone (a pass it shared failed)
        self.error: Exception | None = None
        self.prefill_s = 0.0
        self._decode_started = self._decode_s = 0.0

    @property
    def done(self) -> bool:
        return self.stream.done

    def choose(self, logits: np.ndarray) -> int:
        """The token this row chooses from ``logits`` [vocab] at one position."""
        raw = logits
        if self.constraint is not None:
            logits = logits.astype(np.float32, copy=True)
            self.constraint.mask(logits)
            if not self.constraint.accepting():
                logits[self.eos_ids] = -np.inf
        token = int(self.sampler(logits[None], [self.seen])[0])
        if self.logprobs is not None:  # the model's own distribution: before the constraint, penalty, temperature
            self.logprobs.append(top_logprobs(raw, token, self.params.logprobs))
        return token

    def take(self, token: int) -> str:
        """Append one chosen token: end the row on EOS, a stop string, a finished grammar, a loop or the budget;
        the text it makes final."""
        self.chosen += 1
        stream = self.stream
        if token in self.eos:
            return stream.finish("stop")
        self.seen.append(token)
        if self.constraint is not None:
            self.constraint.consume(token)
        delta = stream.push(token, self.tokenizer)
        if stream.done:
            return delta
        if self.constraint is not None and self.constraint.finished():
            return delta + stream.finish("stop")
        if self.stop_loops and repeating_tail(stream.ids):
            return delta + stream.finish("repetition")
        if self.chosen >= self.budget:
            return delta + stream.finish("length")
        return delta

    def first(self, logits: np.ndarray) -> str:
        """Choose the first token from the prompt's last logits; the text it makes final."""
        now = time.perf_counter()
        self._decode_started = now
        self.position = len(self.prompt)
        self.pending = self.choose(logits)
        return self.take(self.pending)

    def drafts(self, limit: int = MAX_DRAFT_TOKENS) -> list[int]:
        """What the next pass feeds after the pending token, ``limit`` tokens at most: the tokens a constraint
        forces, then guesses from the text so far (those the constraint allows), within the budget."""
        room = min(self.budget - self.chosen - 1, limit)
        if room <= 0 or self.done:
            return []
        forced = self.constraint.forced()[:room] if self.constraint is not None else []
        guess = []
        if self.drafting and len(forced) < room:
            guess = propose(self.seen + forced if forced else self.seen, min(self.draft_length, room - len(forced)))
            if guess and self.constraint is not None:
                guess = guess[: max(0, self.constraint.valid_prefix(forced + guess) - len(forced))]
        self._forced = len(forced)
        return forced + guess

    def verify(self, logits: np.ndarray, drafts: list[int]) -> tuple[int, str]:
        """Choose from ``logits`` [1 + len(drafts), vocab]: position 0 follows the pending token, position j its
        j-th draft. A draft is kept while it is the token chosen there, and the first choice that differs is kept
        too. (drafts kept, text made final)."""
        token = self.choose(logits[0])
        delta = self.take(token)
        kept = 0
        for j, draft in enumerate(drafts, start=1):
            if self.done or token != draft:
                break
            kept += 1
            token = self.choose(logits[j])
            delta += self.take(token)
        guessed, right = len(drafts) - self._forced, max(0, kept - self._forced)
        self.drafted, self.accepted = self.drafted + guessed, self.accepted + right
        self.draft_length = next_draft_length(self.draft_length, guessed, right)
        self.pending, self.position = token, self.position + 1 + kept
        self._decode_s = time.perf_counter() - self._decode_started
        return kept, delta

    def finish(self, reason: str) -> str:
        """End the sequence where it is (interrupted, cancelled); the text that makes final."""
        return "" if self.stream.done else self.stream.finish(reason)

    def fail(self, error: Exception) -> str:
        self.error = error
        return self.finish("error")

    def completion(self) -> Completion:
        steps = max(0, len(self.stream.ids) - 1)
        return Completion(
            text=self.stream.text,
            token_ids=self.stream.ids,
            prompt_tokens=len(self.prompt),
            finish_reason=self.stream.reason,
            prefill_ms=self.prefill_s * 1000,
            decode_tokens_per_s=steps / self._decode_s if steps and self._decode_s > 0 else 0.0,
            drafted_tokens=self.drafted,
            accepted_tokens=self.accepted,
            cached_tokens=self.cached_tokens,
            logprobs=self.logprobs,
        )
