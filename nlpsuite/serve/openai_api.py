"""OpenAI-compatible endpoints: models, chat completions, completions (both streamed as SSE) and embeddings.

A field the server does not implement is refused with a 400 naming it, unless it holds OpenAI's default
(clients that spell defaults out keep working); nothing is ignored silently.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid

import numpy as np
from starlette.responses import JSONResponse

from ..errors import NlpsuiteError
from ..runtime.sampling import BUILT_IN, SamplingParams
from ..runtime.sequence import Completion
from ..tasks import sampling_options
from ..text import blank
from . import sse
from .errors import ApiError, ClientGone, api_words, bad
from .requests import MAX_STOPS, ChatRequest, CompletionRequest, EmbeddingRequest, parse

FINISH = {"repetition": "stop"}  # a reply ended because it only repeated itself ended like at EOS
MAX_EMBEDDING_INPUTS = 2048


def check_model(service, model: str | None) -> None:
    if not model:
        raise bad("'model' is required: GET /v1/models lists the one this server runs", "model")
    if model not in service.model_names:
        raise ApiError(404, f"the model {model!r} does not exist here; this server runs {service.model_id!r}",
                       "model", "model_not_found")  # fmt: skip


def sampling(service, request) -> SamplingParams:
    """The request's decoding settings, ranges checked by the one declaration (the CLI's and the tasks'), unset
    ones from the model's generation defaults, else the suite's built-in ones (as every other route)."""
    given = {o.name: getattr(request, o.name) for o in sampling_options() if getattr(request, o.name) is not None}
    limit = request.max_completion_tokens
    if limit is not None and given.setdefault("max_tokens", limit) != limit:
        raise bad("give max_tokens or max_completion_tokens, not both", "max_tokens")
    stop = given.pop("stop", [])
    stop = [stop] if isinstance(stop, str) else stop
    if len(stop) > MAX_STOPS:
        raise bad(f"stop takes at most {MAX_STOPS} strings", "stop")
    for option in sampling_options():  # the ranges (stop is checked below: its CLI form strips each string)
        if option.name in given:
            try:
                given[option.name] = option.check(given[option.name])
            except NlpsuiteError as exc:
                raise bad(api_words(str(exc)), option.name) from None
    params = SamplingParams(**{**given, "max_tokens": given.get("max_tokens", service.context)}, stop=stop)
    try:  # the context window caps max_tokens per prompt
        params.check()
    except NlpsuiteError as exc:
        named = re.search(r"--([a-z-]+)", str(exc))
        raise bad(api_words(str(exc)), named and named.group(1).replace("-", "_")) from None
    return params.resolved(service.suite.head("generation").defaults)


def stream_options(request) -> tuple[bool, bool]:
    """(stream, include_usage)."""
    if request.stream_options is not None and not request.stream:
        raise bad("stream_options is only allowed with stream: true", "stream_options")
    return request.stream, bool(request.stream_options and request.stream_options.include_usage)


def completion_prompts(value, tokenizer, vocab: int) -> list[list[int]]:
    """A prompt as OpenAI takes it: a string, strings, token ids, or lists of token ids."""
    value = _one_or_many(value, vocab)
    if not isinstance(value, list) or not value:
        raise bad("prompt must be a string, a list of strings, or token ids", "prompt")
    prompts = []
    for p in value:
        if isinstance(p, str):
            if not p:
                raise bad("prompt must not be empty", "prompt")
            prompts.append(tokenizer.encode(p, add_special_tokens=True))  # as `nlpsuite generate --raw`
        elif _ids(p, vocab):
            prompts.append(list(p))
        else:
            raise bad(f"prompt must be a string or a non-empty list of token ids below {vocab}", "prompt")
    return prompts


def _one_or_many(value, vocab: int):
    """``value`` as a list of prompts: a string or one token-id list is one prompt."""
    return [value] if isinstance(value, str) or _ids(value, vocab) else value


def _ids(value, vocab: int) -> bool:
    return isinstance(value, list) and bool(value) and all(_token(t, vocab) for t in value)


def _token(t, vocab: int) -> bool:
    return isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab


def fit(prompts: list[list[int]], context: int) -> None:
    for ids in prompts:
        if len(ids) >= context:
            raise bad(f"the prompt is {len(ids)} tokens; this model's context window is {context} tokens "
                      "(room for at least one new token is needed)", "messages", "context_length_exceeded")  # fmt: skip


# -- generation ------------------------------------------------------------------------------------------------


async def chat(service, request, body: dict):
    asked = parse(ChatRequest, body)
    check_model(service, asked.model)
    stream, usage = stream_options(asked)
    params = sampling(service, asked)
    messages = [m.plain() for m in asked.messages]
    prompt = await asyncio.to_thread(service.suite.head("generation").encode_chat, messages)
    return await _generate(service, request, [prompt], params, stream, usage, chat=True)


async def completions(service, request, body: dict):
    asked = parse(CompletionRequest, body)
    check_model(service, asked.model)
    stream, usage = stream_options(asked)
    params = sampling(service, asked)
    tokenizer = service.suite.tokenizer
    prompts = await asyncio.to_thread(completion_prompts, asked.prompt, tokenizer, service.vocab)
    if len(prompts) > service.config.max_queue:  # it could never be let in: not "busy, retry" but too big
        raise bad(f"at most {service.config.max_queue} prompts in one request (--max-queue)", "prompt")
    return await _generate(service, request, prompts, params, stream, usage, chat=False)


async def _generate(service, request, prompts, params, stream: bool, usage: bool, chat: bool):
    fit(prompts, service.context)
    ticket = service.engine.submit(prompts, params)  # each prompt gets its own sampler
    meta = {
        "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
        "created": int(time.time()),
        "model": service.model_id,
    }
    if stream:
        return sse.response(_stream(service, ticket, meta, chat, usage), service.config.keepalive_s)
    return JSONResponse(await _whole(service, request, ticket, meta, chat))


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


async def _whole(service, request, ticket, meta: dict, chat: bool) -> dict:
    done = await collect(service, request, ticket)
    choices = []
    for index in sorted(done):
        c = done[index]
        reason = FINISH.get(c.finish_reason, c.finish_reason)
        if chat:
            message = {"role": "assistant", "content": c.text}
            choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": reason})
        else:
            choices.append({"index": index, "text": c.text, "logprobs": None, "finish_reason": reason})
    return {
        **meta,
        "object": "chat.completion" if chat else "text_completion",
        "choices": choices,
        "usage": _usage(done.values()),
        "system_fingerprint": None,
    }


def _usage(completions) -> dict:
    prompt = sum(c.prompt_tokens for c in completions)
    made = sum(c.completion_tokens for c in completions)
    cached = sum(c.cached_tokens for c in completions)  # prompt tokens the prompt cache spared prefilling
    return {"prompt_tokens": prompt, "completion_tokens": made, "total_tokens": prompt + made,
            "prompt_tokens_details": {"cached_tokens": cached}}  # fmt: skip


async def _stream(service, ticket, meta: dict, chat: bool, usage: bool):
    kind_name = "chat.completion.chunk" if chat else "text_completion"
    extra = {"usage": None} if usage else {}

    def chunk(index: int, text: str | None = None, reason: str | None = None, role: bool = False) -> str:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text is not None else {})
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": reason}
        return _event({**meta, "object": kind_name, "choices": [choice], **extra})

    finished = []
    try:
        if chat:
            yield chunk(0, role=True)
        while len(finished) < len(ticket.sequences):
            index, kind, value = await ticket.events.get()
            if kind == "text":
                yield chunk(index, value)
            elif kind == "done":
                finished.append(value)
                yield chunk(index, reason=FINISH.get(value.finish_reason, value.finish_reason))
            else:  # the status line is sent already: a failure mid-stream is an event carrying the error
                yield _event(ApiError(500, value, code="generation_failed").body())
                return
        if usage:
            yield _event({**meta, "object": kind_name, "choices": [], "usage": _usage(finished)})
        yield "data: [DONE]\n\n"
    finally:
        if len(finished) < len(ticket.sequences):
            service.engine.cancel(ticket)  # the client went away (or the stream failed): free its slots


def _event(data: dict) -> str:
    return sse.event(data)


# -- embeddings and models ----------------------------------------------------------------------------------------


async def embeddings(service, request, body: dict):
    asked = parse(EmbeddingRequest, body)
    check_model(service, asked.model)
    texts = _embedding_texts(asked.input, service)
    encoding = asked.encoding_format
    size = service.suite.backbone.hidden_size
    if asked.dimensions is not None and asked.dimensions != size:
        raise bad(f"dimensions must be {size}, this model's embedding size", "dimensions")

    def embed():
        embedder = service.suite.head("embedding")
        tokens = sum(len(embedder.encode(t)) for t in texts)
        return embedder(texts), tokens

    vectors, tokens = await service.engine.job(embed)
    data = []
    for i, vector in enumerate(np.asarray(vectors, np.float32)):
        if encoding == "base64":
            value = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            value = vector.tolist()
        data.append({"object": "embedding", "index": i, "embedding": value})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JSONResponse({"object": "list", "data": data, "model": service.model_id, "usage": usage})


def _embedding_texts(value, service) -> list[str]:
    vocab = service.vocab
    value = _one_or_many(value, vocab)
    if not isinstance(value, list) or not value or len(value) > MAX_EMBEDDING_INPUTS:
        raise bad(f"input must be a string, a list of up to {MAX_EMBEDDING_INPUTS} strings, or token ids", "input")
    texts = []
    for item in value:
        if _ids(item, vocab):
            item = service.suite.tokenizer.decode(item)  # the same vectors as for the text they spell
        if not isinstance(item, str):
            raise bad(f"input items must be strings or lists of token ids below {vocab}", "input")
        if blank(item):
            raise bad("input must not be empty or blank", "input")
        texts.append(item)
    return texts


async def models(service, request, body):
    # sampling_defaults (not OpenAI's): what decoding settings left unset become, the model's generation
    # defaults else greedy, as in the CLI; the web page starts its chat settings from them.
    unset = SamplingParams().resolved(service.suite.head("generation").defaults)
    defaults = {k: getattr(unset, k) for k in BUILT_IN}
    entry = {"id": service.model_id, "object": "model", "created": service.created, "owned_by": "nlpsuite",
             "sampling_defaults": defaults}  # fmt: skip
    return JSONResponse({"object": "list", "data": [entry]})
