"""``POST /tokenize`` and ``POST /detokenize`` in llama.cpp's and vLLM's shapes.

``content`` (llama.cpp: ``add_special`` defaults to false) or ``prompt`` (vLLM: ``add_special_tokens`` defaults to
true) is tokenized as it stands; ``messages`` is rendered through the model's chat template first (as a chat
completion's prompt is, ``add_generation_prompt`` true unless said). ``with_pieces`` answers ``{id, piece}``
pairs (a piece that is not whole UTF-8 is its bytes), ``return_token_strs`` adds vLLM's ``token_strs``.
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.routing import Route

from .errors import bad
from .requests import chat_messages, check_fields

TOKENIZE_FIELDS = {"model", "content", "prompt", "messages", "add_special", "add_special_tokens", "with_pieces",
                   "return_token_strs", "add_generation_prompt", "parse_special"}  # fmt: skip


def _switch(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad(f"{name} must be true or false", name)
    return value


def _model(service, body: dict) -> None:
    model = body.get("model")
    if model is not None and model not in service.model_names:  # optional here, as in vLLM; wrong is still wrong
        raise bad(f"the model {model!r} does not exist here; this server runs {service.model_id!r}", "model")


def token_ids(service, body: dict) -> list[int]:
    """The ids a tokenize request asks for (checked: a 400 names the field at fault)."""
    given = [name for name in ("content", "prompt", "messages") if name in body]
    if len(given) != 1:
        raise bad("give one of content (text), prompt (text) or messages (a chat)", "content")
    if body.get("parse_special", True) is not True:
        raise bad("parse_special must be true: special tokens spelled in the text are always parsed", "parse_special")
    if "add_special" in body and "add_special_tokens" in body:
        raise bad("give add_special or add_special_tokens, not both", "add_special")
    tokenizer = service.suite.tokenizer
    if given == ["messages"]:
        if "add_special" in body or "add_special_tokens" in body:
            raise bad("a chat's special tokens come from its template: add_special is for text", "add_special")
        messages = chat_messages(body["messages"])
        text = service.suite.chat_template.render(messages, _switch(body, "add_generation_prompt", True))
        return tokenizer.encode(text, add_special_tokens=False)
    if "add_generation_prompt" in body:
        raise bad("add_generation_prompt applies to messages only", "add_generation_prompt")
    name = given[0]
    text = body[name]
    if not isinstance(text, str):
        raise bad(f"{name} must be a string", name)
    special = "add_special" if "add_special" in body else "add_special_tokens"
    return tokenizer.encode(text, add_special_tokens=_switch(body, special, name == "prompt"))


async def tokenize(service, request, body: dict):
    body = check_fields(body, TOKENIZE_FIELDS)
    _model(service, body)
    pieces, strs = _switch(body, "with_pieces", False), _switch(body, "return_token_strs", False)
    ids = await asyncio.to_thread(token_ids, service, body)
    tokenizer = service.suite.tokenizer
    answer: dict = {"tokens": ids, "count": len(ids), "max_model_len": service.context}
    if pieces:
        answer["tokens"] = [{"id": i, "piece": p} for i, p in zip(ids, tokenizer.pieces(ids), strict=True)]
    if strs:
        answer["token_strs"] = tokenizer.token_strings(ids)
    return JSONResponse(answer)


async def detokenize(service, request, body: dict):
    body = check_fields(body, {"model", "tokens"})
    _model(service, body)
    ids = body.get("tokens")
    vocab = service.vocab
    if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab
                                            for t in ids):  # fmt: skip
        raise bad(f"tokens must be a list of token ids from 0 to {vocab - 1}", "tokens")
    text = service.suite.tokenizer.decode(ids, skip_special=False)
    return JSONResponse({"content": text, "prompt": text})  # llama.cpp's name and vLLM's


def routes(service, endpoint) -> list[Route]:
    return [
        Route("/tokenize", endpoint(service, tokenize), methods=["POST"]),
        Route("/detokenize", endpoint(service, detokenize), methods=["POST"]),
    ]
