"""OpenAI-compatible endpoints: models, chat completions, completions (both streamed as SSE: replies.py) and
embeddings. Chat and completions take response_format, logprobs and n; chat takes tools (tools.py).

A field the server does not implement is refused with a 400 naming it, unless it holds OpenAI's default
(clients that spell defaults out keep working); nothing is ignored silently.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re

import numpy as np
from starlette.responses import JSONResponse

from ..errors import NlpsuiteError
from ..runtime.grammar import Grammar, compile_for
from ..runtime.sampling import BUILT_IN, SamplingParams
from ..tasks import sampling_options
from ..text import blank
from . import replies, sse, tools
from .errors import ApiError, api_words, bad
from .requests import MAX_STOPS, ChatRequest, CompletionRequest, EmbeddingRequest, parse

MAX_EMBEDDING_INPUTS = 2048


def check_model(service, model: str | None) -> None:
    if not model:
        raise bad("'model' is required: GET /v1/models lists the one this server runs", "model")
    if model not in service.model_names:
        raise ApiError(404, f"the model {model!r} does not exist here; this server runs {service.model_id!r}",
                       "model", "model_not_found")  # fmt: skip


def sampling(service, request, grammar=None, logprobs: int | None = None, logprobs_name: str = "logprobs"):
    """The request's decoding settings, ranges checked by the one declaration (the CLI's and the tasks'), unset
    ones from the model's generation defaults, else the suite's built-in ones (as every other route); the
    output's ``grammar`` and the ``logprobs`` count (the request's field ``logprobs_name``) ride along."""
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
    given["max_tokens"] = given.get("max_tokens", service.context)  # the context window caps it per prompt
    params = SamplingParams(**given, stop=stop, grammar=grammar, logprobs=logprobs)
    try:
        params.check()
    except NlpsuiteError as exc:
        flags = {"--logprobs": logprobs_name}
        named = re.search(r"--([a-z-]+)", str(exc))
        param = named and flags.get(named.group(0), named.group(1).replace("-", "_"))
        raise bad(api_words(str(exc), flags), param) from None
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
    if asked.top_logprobs is not None and not asked.logprobs:
        raise bad("top_logprobs needs logprobs: true", "top_logprobs")
    offered = tools.plan(asked)
    if offered is not None:
        await compiled(service, offered.grammar, "tools")
    grammar = offered.grammar if offered else await output_grammar(service, asked.response_format)
    logprobs = (asked.top_logprobs or 0) if asked.logprobs else None
    params = sampling(service, asked, grammar, logprobs, "top_logprobs")
    messages = [m.plain() for m in asked.messages]
    encode = service.suite.head("generation").encode_chat
    prompt = await asyncio.to_thread(encode, messages, offered.tools if offered else None)
    reply = replies.Reply(service, stream, usage, True, logprobs is not None, grammar is not None, offered)
    return await _generate(service, request, [prompt], choices(params, asked.n), reply)


async def completions(service, request, body: dict):
    asked = parse(CompletionRequest, body)
    check_model(service, asked.model)
    stream, usage = stream_options(asked)
    grammar = await output_grammar(service, asked.response_format)
    params = sampling(service, asked, grammar, asked.logprobs, "logprobs")
    tokenizer = service.suite.tokenizer
    prompts = await asyncio.to_thread(completion_prompts, asked.prompt, tokenizer, service.vocab)
    if len(prompts) * asked.n > service.config.max_queue:  # it could never be let in: not "busy, retry" but too big
        raise bad(f"at most {service.config.max_queue} prompts times n in one request (--max-queue)", "prompt")
    reply = replies.Reply(service, stream, usage, False, asked.logprobs is not None, grammar is not None)
    return await _generate(service, request, prompts, choices(params, asked.n), reply)


def choices(params: SamplingParams, n: int) -> list[SamplingParams]:
    """One row's settings per choice: a seed, when given, is the first choice's, and each next choice's is one
    more (each choice reproducible, and different from the others when sampling)."""
    if params.seed is None:
        return [params] * n  # each row's sampler draws its own entropy
    return [dataclasses.replace(params, seed=params.seed + i) for i in range(n)]


async def output_grammar(service, response_format) -> Grammar | None:
    """The grammar ``response_format`` holds the output to, compiled for the model now (off the event loop): a
    400 naming response_format for a schema that cannot be used."""
    try:
        grammar = response_format.grammar() if response_format is not None else None
    except NlpsuiteError as exc:
        raise bad(str(exc), "response_format") from None
    if grammar is not None:
        await compiled(service, grammar, "response_format")
    return grammar


async def compiled(service, grammar: Grammar, param: str) -> None:
    """Compile ``grammar`` for the model off the event loop (kept for the rows that use it); a 400 naming
    ``param`` when it cannot be used."""
    try:
        grammar.check()
        await asyncio.to_thread(compile_for, grammar, service.suite.tokenizer)
    except NlpsuiteError as exc:
        raise bad(str(exc), param) from None


async def _generate(service, request, prompts, settings: list[SamplingParams], reply):
    fit(prompts, service.context)
    n = len(settings)
    rows = [p for p in prompts for _ in range(n)]  # choice index = prompt index * n + choice
    ticket = service.engine.submit(rows, settings * len(prompts))  # each row gets its own sampler
    if reply.stream:
        return sse.response(reply.stream_events(ticket, n), service.config.keepalive_s)
    return JSONResponse(await reply.whole(request, ticket, n))


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
