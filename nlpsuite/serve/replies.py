"""The answer of /v1/chat/completions and /v1/completions: a ticket's rows as OpenAI's choices, whole or as a
stream of server-sent events, with their log-probabilities (logprobs.py) and tool calls (tools.py).

A ticket holds one row per choice: choice ``i`` of prompt ``p`` is row ``p * n + i``, and its index in the answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from ..runtime.sequence import Completion
from . import logprobs as shapes
from .errors import ApiError, ClientGone
from .sse import event
from .tools import CallStream, ToolPlan, message

FINISH = {"repetition": "stop"}  # a reply ended because it only repeated itself ended like at EOS...
CUT = {"repetition": "length"}  # ...but a reply held to a grammar was cut short of it: never valid, like max_tokens


class Reply:
    """How one request is answered: chat or text completions, streamed or whole, with or without logprobs."""

    def __init__(self, service, stream: bool, usage: bool, chat: bool, logprobs: bool, grammar: bool = False,
                 tools: ToolPlan | None = None):  # fmt: skip
        self.service, self.stream, self.usage, self.chat = service, stream, usage, chat
        self.logprobs, self.tools = logprobs, tools
        self.finish = CUT if grammar else FINISH
        self.tokenizer = service.suite.tokenizer
        self._offsets: dict[int, int] = {}  # streamed completions: characters of the tokens sent, per choice
        self.meta = {
            "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
            "created": int(time.time()),
            "model": service.model_id,
        }

    @property
    def kind(self) -> str:
        return ("chat.completion" if self.chat else "text_completion") + (".chunk" if self.stream and self.chat else "")

    async def whole(self, request, ticket, n: int = 1) -> dict:
        done = await collect(self.service, request, ticket)
        choices = [self._choice(index, done[index]) for index in sorted(done)]
        return {**self.meta, "object": self.kind, "choices": choices, "usage": usage(done, n),
                "system_fingerprint": None}  # fmt: skip

    def _choice(self, index: int, done) -> dict:
        reason = self.finish.get(done.finish_reason, done.finish_reason)
        entries = (done.logprobs or [])[: len(done.token_ids)] if self.logprobs else None
        if self.chat:
            answer, reason = message(done.text, reason, self.tools)
            logprobs = shapes.chat(entries, self.tokenizer) if entries is not None else None
            return {"index": index, "message": answer, "logprobs": logprobs, "finish_reason": reason}
        logprobs = shapes.legacy(entries, self.tokenizer)[0] if entries is not None else None
        return {"index": index, "text": done.text, "logprobs": logprobs, "finish_reason": reason}

    # -- streamed ---------------------------------------------------------------------------------------------

    def _chunk(self, index: int, delta: dict | str, reason: str | None = None, entries=None) -> str:
        """One choice's event: ``delta`` (chat) or text (completions), with the log-probabilities of ``entries``."""
        logprobs = None
        if entries and self.chat:
            logprobs = shapes.chat(entries, self.tokenizer)
        elif entries:  # text_offset goes on from the choice's tokens streamed so far
            logprobs, self._offsets[index] = shapes.legacy(entries, self.tokenizer, self._offsets.get(index, 0))
        if self.chat:
            choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
        else:
            choice = {"index": index, "text": delta, "logprobs": logprobs, "finish_reason": reason}
        return event({**self.meta, "object": self.kind, "choices": [choice], **({"usage": None} if self.usage else {})})

    async def stream_events(self, ticket, n: int = 1):
        rows = len(ticket.sequences)
        calls = [CallStream(self.tools) for _ in range(rows)]
        pending: dict[int, list] = {}  # log-probabilities waiting for their text
        finished: dict[int, object] = {}
        try:
            if self.chat:
                for index in range(rows):
                    yield self._chunk(index, {"role": "assistant", "content": ""})
            while len(finished) < rows:
                index, kind, value = await ticket.events.get()
                if kind == "logprobs":
                    pending.setdefault(index, []).extend(value)
                elif kind == "text":
                    for part in self._deltas(index, value, calls[index], pending.pop(index, None)):
                        yield part
                elif kind == "done":
                    finished[index] = value
                    reason = self.finish.get(value.finish_reason, value.finish_reason)
                    deltas, reason = calls[index].finish(reason) if self.chat else ([], reason)
                    for delta in deltas:
                        yield self._chunk(index, delta)
                    yield self._chunk(index, {} if self.chat else "", reason, pending.pop(index, None))
                else:  # the status line is sent already: a failure mid-stream is an event carrying the error
                    yield event(ApiError(500, value, code="generation_failed").body())
                    return
            if self.usage:
                yield event({**self.meta, "object": self.kind, "choices": [], "usage": usage(finished, n)})
            yield "data: [DONE]\n\n"
        finally:
            if len(finished) < rows:
                self.service.engine.cancel(ticket)  # the client went away (or the stream failed): free its slots

    def _deltas(self, index: int, text: str, calls: CallStream, entries: list | None):
        """The events of a piece of one choice's text (and the log-probabilities of its tokens)."""
        if not self.chat:
            yield self._chunk(index, text, entries=entries)
            return
        deltas = calls.feed(text) or ([{}] if entries else [])
        for j, delta in enumerate(deltas):
            yield self._chunk(index, delta, entries=entries if j == 0 else None)


def usage(completions: dict, n: int = 1) -> dict:
    """Tokens of ``completions`` (by choice index): a prompt counts once for its ``n`` choices, as OpenAI counts."""
    firsts = [c for index, c in completions.items() if index % n == 0]
    prompt = sum(c.prompt_tokens for c in firsts)
    made = sum(c.completion_tokens for c in completions.values())
    cached = sum(c.cached_tokens for c in firsts)  # prompt tokens the prompt cache spared prefilling
    return {"prompt_tokens": prompt, "completion_tokens": made, "total_tokens": prompt + made,
            "prompt_tokens_details": {"cached_tokens": cached}}  # fmt: skip


async def collect(service, request, ticket) -> dict[int, Completion]:
    """Each of ``ticket``'s sequences' Completion by index, once all are done; a client that goes away meanwhile
    (ClientGone) or a failed step (500) frees the ticket's rows."""
    done: dict[int, Completion] = {}
    checked = time.monotonic()
    try:
        while len(done) < len(ticket.sequences):
            # Text keeps coming while it decodes, so whether the client is still there is asked by the clock.
            if time.monotonic() - checked > 0.5:
                if await request.is_disconnected():
                    raise ClientGone  # nobody waits for it: free the slot (finally, below)
                checked = time.monotonic()
            try:
                index, kind, value = await asyncio.wait_for(ticket.events.get(), 0.5)
            except asyncio.TimeoutError:
                continue
            if kind == "error":
                raise ApiError(500, value, code="generation_failed")
            if kind == "done":
                done[index] = value
    finally:
        if len(done) < len(ticket.sequences):
            service.engine.cancel(ticket)
    return done
