"""``POST /v1/responses``: OpenAI's Responses API, without state (each request brings its whole conversation).

The request becomes chat messages (responses_input.py), decoded like ``/v1/chat/completions``: the same sampling
rule (openai_api.sampling: the request, then the model's generation defaults, then the built-in ones), the same
chat template, the same engine. The reply is one assistant message with one ``output_text`` part; streamed, it
comes as the Responses events, each numbered by ``sequence_number``, from ``response.created`` to
``response.completed`` (``response.incomplete`` when ``max_output_tokens`` cut it short, as OpenAI does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import types
import uuid

from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import NlpsuiteError
from ..runtime.grammar import Grammar, compile_for
from ..runtime.sequence import Completion
from ..tasks import sampling_options
from . import sse
from .errors import ApiError, bad
from .openai_api import check_model, fit, sampling
from .replies import collect
from .requests import parse
from .responses_input import NEUTRAL, ResponsesRequest

NAMES = {"max_tokens": "max_output_tokens"}  # the sampling declaration's names, as the Responses API calls them


def routes(service, endpoint) -> list[Route]:
    return [Route("/v1/responses", endpoint(service, create), methods=["POST"])]


async def create(service, request, body: dict):
    asked: ResponsesRequest = parse(ResponsesRequest, body, NEUTRAL)
    check_model(service, asked.model)
    asked.stateless()
    if asked.stream_options is not None and not asked.stream:
        raise bad("stream_options is only allowed with stream: true", "stream_options")
    params = dataclasses.replace(_sampling(service, asked), grammar=await _grammar(service, asked))
    prompt = await asyncio.to_thread(service.suite.head("generation").encode_chat, asked.messages())
    try:
        fit([prompt], service.context)
    except ApiError as exc:
        exc.param = "input"
        raise
    ticket = service.engine.submit([prompt], params)
    reply = Reply(service.model_id, asked, params)
    if asked.stream:
        return sse.response(_events(service, ticket, reply), service.config.keepalive_s)
    done = await collect(service, request, ticket)
    return JSONResponse(reply.finished(done[0]))


async def _grammar(service, asked: ResponsesRequest) -> Grammar | None:
    """``text.format``'s grammar, compiled for the model off the event loop (a schema may take seconds; the row
    then copies the compiled matcher); a 400 naming ``text`` when it cannot be used."""

    def made() -> Grammar | None:
        grammar = asked.grammar()
        if grammar is not None:
            compile_for(grammar, service.suite.tokenizer)
        return grammar

    try:
        return await asyncio.to_thread(made)
    except NlpsuiteError as exc:
        raise bad(f"text.format: {exc}", "text") from None


def _sampling(service, asked: ResponsesRequest):
    """The request's decoding settings by chat completions' rule (one function); its errors name the fields as
    the Responses API spells them."""
    given = {"max_tokens": asked.max_output_tokens, "temperature": asked.temperature, "top_p": asked.top_p}
    view = types.SimpleNamespace(**{o.name: None for o in sampling_options()}, max_completion_tokens=None)
    vars(view).update(given)
    try:
        return sampling(service, view)
    except ApiError as exc:
        for ours, theirs in NAMES.items():
            exc.message = exc.message.replace(ours, theirs)
            exc.param = theirs if exc.param == ours else exc.param
        raise


class Reply:
    """The response object of one request, as it stands at each step of its life."""

    def __init__(self, model: str, asked: ResponsesRequest, params) -> None:
        self.id, self.item_id = "resp_" + uuid.uuid4().hex, "msg_" + uuid.uuid4().hex
        self.created_at = int(time.time())
        self.echo = {  # what the request asked for, with the sampling values in effect
            "instructions": asked.instructions,
            "max_output_tokens": asked.max_output_tokens,
            "model": model,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": params.temperature,
            "text": {"format": asked.text.format.model_dump(by_alias=True, exclude_none=True), "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": params.top_p,
            "truncation": "disabled",
            "user": asked.user,
            "metadata": asked.metadata or {},
        }

    def response(self, status: str, output: list, **more) -> dict:
        fields = {"completed_at": None, "error": None, "incomplete_details": None, "usage": None, **more}
        return {"id": self.id, "object": "response", "created_at": self.created_at, "status": status, **fields,
                "output": output, **self.echo}  # fmt: skip

    def message(self, status: str, text: str | None = None) -> dict:
        content = [] if text is None else [part(text)]
        return {"id": self.item_id, "type": "message", "role": "assistant", "status": status, "content": content}

    def finished(self, done: Completion) -> dict:
        """The whole response once its reply is done: ``incomplete`` when the token budget ended it."""
        cut = done.finish_reason == "length"
        status = "incomplete" if cut else "completed"
        return self.response(
            status,
            [self.message(status, done.text)],
            completed_at=None if cut else int(time.time()),
            incomplete_details={"reason": "max_output_tokens"} if cut else None,
            usage=usage(done),
        )


def part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def usage(done: Completion) -> dict:
    return {
        "input_tokens": done.prompt_tokens,
        "input_tokens_details": {"cached_tokens": done.cached_tokens},  # prompt tokens the prompt cache spared
        "output_tokens": done.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


async def _events(service, ticket, reply: Reply):
    """The Responses events of one streamed reply, in OpenAI's order; a failure mid-stream is an ``error`` event
    then ``response.failed``; a client that goes away frees the reply's row."""
    numbers = itertools.count()

    def event(kind: str, **fields) -> str:
        return sse.event({"type": kind, "sequence_number": next(numbers), **fields}, kind)

    at = {"item_id": reply.item_id, "output_index": 0, "content_index": 0}
    yield event("response.created", response=reply.response("in_progress", []))
    yield event("response.in_progress", response=reply.response("in_progress", []))
    yield event("response.output_item.added", output_index=0, item=reply.message("in_progress"))
    yield event("response.content_part.added", **at, part=part(""))
    done = None
    try:
        while done is None:
            _, kind, value = await ticket.events.get()
            if kind == "text":
                yield event("response.output_text.delta", **at, delta=value, logprobs=[])
            elif kind == "done":
                done = value
            else:  # the status line is sent already: the failure is told in events
                yield event("error", code="generation_failed", message=value, param=None)
                failed = reply.response("failed", [], error={"code": "server_error", "message": value})
                yield event("response.failed", response=failed)
                return
    finally:
        if done is None:
            service.engine.cancel(ticket)
    final = reply.finished(done)
    yield event("response.output_text.done", **at, text=done.text, logprobs=[])
    yield event("response.content_part.done", **at, part=part(done.text))
    yield event("response.output_item.done", output_index=0, item=final["output"][0])
    yield event("response.completed" if final["status"] == "completed" else "response.incomplete", response=final)
