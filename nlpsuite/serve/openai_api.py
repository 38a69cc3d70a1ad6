"""OpenAI-compatible endpoints: models, chat completions, completions (both streamed as SSE) and embeddings.

A field the server does not implement is refused with a 400 naming it, unless it holds OpenAI's default
(clients that spell defaults out keep working); nothing is ignored silently.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import numpy as np
from starlette.responses import JSONResponse, StreamingResponse

from ..errors import NlpsuiteError
from ..runtime.sampling import SamplingParams
from ..text import blank
from .errors import ApiError, ClientGone, api_words, bad

SAMPLING = {"max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "top_k",
            "repetition_penalty", "ignore_eos"}  # fmt: skip
STREAMING = {"stream", "stream_options"}
# Fields accepted only at the value that changes nothing: sent by clients that spell out every default.
NEUTRAL = {"n": 1, "frequency_penalty": 0, "presence_penalty": 0, "logprobs": False, "echo": False, "best_of": 1,
           "parallel_tool_calls": True, "store": False, "suffix": "", "user": ..., "metadata": ...}  # fmt: skip
CHAT_FIELDS = {"model", "messages"} | SAMPLING | STREAMING
COMPLETION_FIELDS = {"model", "prompt"} | SAMPLING | STREAMING
EMBEDDING_FIELDS = {"model", "input", "encoding_format", "dimensions"}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
FINISH = {"repetition": "stop"}  # a reply ended because it only repeated itself ended like at EOS
MAX_EMBEDDING_INPUTS = 2048


def check_fields(body: dict, allowed: set[str]) -> dict:
    """``body`` without nulls (OpenAI treats null as absent); an unsupported field is a 400."""
    body = {k: v for k, v in body.items() if v is not None}
    for name, value in body.items():
        if name in allowed:
            continue
        neutral = NEUTRAL.get(name)
        if name in NEUTRAL and (neutral is ... or _same(value, neutral)):
            continue
        if name == "n":
            raise bad("n must be 1: this server returns one choice per prompt", "n", "unsupported_value")
        raise bad(f"{name!r} is not supported by this server", name, "unsupported_parameter")
    return body


def _same(value, default) -> bool:
    """Equal as JSON means it: 0.0 is 0, but false is not 0."""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(value, int | float) and isinstance(default, int | float):
        return value == default
    return type(value) is type(default) and value == default


def check_model(service, body: dict) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required: GET /v1/models lists the one this server runs", "model")
    if model not in service.model_names:
        raise ApiError(404, f"the model {model!r} does not exist here; this server runs {service.model_id!r}",
                       "model", "model_not_found")  # fmt: skip


def _number(body: dict, name: str, kind: type, low=None, high=None, low_open: bool = False):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
        raise bad(f"{name} must be {'a whole number' if kind is int else 'a number'}", name)
    value = kind(value)
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        raise bad(f"{name} must be {_range_words(low, high, low_open)}", name)
    return value


def _range_words(low, high, low_open: bool) -> str:
    if high is None:
        return f"at least {low}"
    return f"{'above' if low_open else 'from'} {low} to {high}"


def sampling(body: dict, context: int) -> SamplingParams:
    """Sampling parameters from a request (OpenAI's defaults: temperature 1, top_p 1, no token limit but the
    context window)."""
    limit = _number(body, "max_completion_tokens", int, 1)
    old = _number(body, "max_tokens", int, 1)
    if limit is not None and old is not None and limit != old:
        raise bad("give max_tokens or max_completion_tokens, not both", "max_tokens")
    stop = body.get("stop", [])
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 16:
        raise bad("stop must be a non-empty string or a list of up to 16 of them", "stop")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise bad("ignore_eos must be true or false", "ignore_eos")
    temperature = _number(body, "temperature", float, 0, 100)
    if temperature is not None and 0 < temperature < 1e-4:
        raise bad("temperature must be 0 (greedy) or from 0.0001 to 100", "temperature")
    params = SamplingParams(
        max_tokens=limit or old or context,  # the context window caps it per prompt
        temperature=1.0 if temperature is None else temperature,
        top_k=_number(body, "top_k", int, 0) or 0,
        top_p=_number(body, "top_p", float, 0, 1, low_open=True) or 1.0,
        repetition_penalty=_number(body, "repetition_penalty", float, 0.01, 100) or 1.0,
        seed=_number(body, "seed", int),
        stop=stop,
        ignore_eos=ignore_eos,
    )
    try:
        params.check()
    except NlpsuiteError as exc:
        raise bad(api_words(str(exc))) from None
    return params


def stream_options(body: dict) -> tuple[bool, bool]:
    """(stream, include_usage)."""
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("stream must be true or false", "stream")
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise bad("stream_options is only allowed with stream: true", "stream_options")
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise bad("stream_options takes only include_usage", "stream_options")
    usage = options.get("include_usage", False)
    if not isinstance(usage, bool):
        raise bad("stream_options.include_usage must be true or false", "stream_options")
    return stream, usage


def chat_messages(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise bad("messages must be a non-empty list of {role, content}", "messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad(f"messages[{i}] needs a role: one of {', '.join(ROLES)}", "messages")
        content = m.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):  # fmt: skip
                raise bad(f"messages[{i}]: only text content parts are supported", "messages")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise bad(f"messages[{i}] needs content: a string", "messages")
        out.append({"role": ROLES[m["role"]], "content": content})
    return out


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
    body = check_fields(body, CHAT_FIELDS)
    check_model(service, body)
    stream, usage = stream_options(body)
    messages = chat_messages(body.get("messages"))
    params = sampling(body, service.context)
    prompt = await asyncio.to_thread(service.suite.head("generation").encode_chat, messages)
    return await _generate(service, request, [prompt], params, stream, usage, chat=True)


async def completions(service, request, body: dict):
    body = check_fields(body, COMPLETION_FIELDS)
    check_model(service, body)
    stream, usage = stream_options(body)
    params = sampling(body, service.context)
    tokenizer = service.suite.tokenizer
    prompts = await asyncio.to_thread(completion_prompts, body.get("prompt"), tokenizer, service.vocab)
    if len(prompts) > service.config.max_queue:  # it could never be let in: not "busy, retry" but too big
        raise bad(f"at most {service.config.max_queue} prompts in one request (--max-queue)", "prompt")
    return await _generate(service, request, prompts, params, stream, usage, chat=False)


async def _generate(service, request, prompts, params, stream: bool, usage: bool, chat: bool):
    fit(prompts, service.context)
    copies = [SamplingParams(**vars(params)) for _ in prompts]  # each prompt its own sampler state
    ticket = service.engine.submit(prompts, copies)
    meta = {
        "id": ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24],
        "created": int(time.time()),
        "model": service.model_id,
    }
    if stream:
        return _sse(_stream(service, ticket, meta, chat, usage))
    return JSONResponse(await _whole(service, request, ticket, meta, chat))


async def _whole(service, request, ticket, meta: dict, chat: bool) -> dict:
    done: dict[int, object] = {}
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
    return {"prompt_tokens": prompt, "completion_tokens": made, "total_tokens": prompt + made}


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
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not hold tokens back


def _sse(events) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


# -- embeddings and models ----------------------------------------------------------------------------------------


async def embeddings(service, request, body: dict):
    body = check_fields(body, EMBEDDING_FIELDS)
    check_model(service, body)
    texts = _embedding_texts(body.get("input"), service)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad("encoding_format must be 'float' or 'base64'", "encoding_format")
    size = service.suite.backbone.hidden_size
    if "dimensions" in body and body["dimensions"] != size:
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
    entry = {"id": service.model_id, "object": "model", "created": service.created, "owned_by": "nlpsuite"}
    return JSONResponse({"object": "list", "data": [entry]})
