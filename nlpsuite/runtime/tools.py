"""Tool calling, model side: tools offered through the chat template, a grammar that holds the output to calls
of them, and the calls read back from the text.

A call is written as Qwen2.5 and Hermes-style templates ask for it, one per block:
``<tool_call>\\n{"name": "NAME", "arguments": {...}}\\n</tool_call>``, blocks separated by a newline. A
template that takes a ``tools`` variable (Qwen2.5's does) renders the tools itself; a template without one
(SmolLM2's) gets ``FALLBACK_PROMPT`` in its system message, assistant calls written back as call blocks and
tool results as ``<tool_response>`` blocks in a user turn (as Qwen2.5's template renders them).

Tools here are OpenAI's ``{"type": "function", "function": {"name", "description", "parameters"}}``;
a conversation's messages are the template's dicts (``tool_calls`` with ``arguments`` as a dict).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from .grammar import JSON_OPTIONS, Grammar, closed

OPEN, CLOSE = "<tool_call>\n", "\n</tool_call>"
PREFIX, SEPARATOR = OPEN + '{"name": "', '", "arguments": '  # a block up to its name, and after it
EMPTY_PARAMETERS = {"type": "object", "properties": {}}
FALLBACK_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)


@dataclass(frozen=True)
class Call:
    """One tool call read from the model's text: ``arguments`` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str


def header(name: str) -> str:
    """What a call block holds before its arguments (the grammar writes exactly this; names need no escapes)."""
    return PREFIX + name + SEPARATOR


def conversation(messages: list[dict], tools: list[dict] | None, takes_tools: bool) -> list[dict]:
    """``messages`` as a template renders them: as they are where it ``takes_tools``; else calls and results
    written as text, and the tools offered (``tools``, none when None) in the system message."""
    if takes_tools:
        return messages
    out = [_as_text(m, _names(messages)) for m in messages]
    if tools:
        listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        prompt = FALLBACK_PROMPT.format(tools=listed)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return _merge_results(out)


def _names(messages: list[dict]) -> dict[str, str]:
    """The function each tool call id called."""
    return {c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or [] if c.get("id")}


def _as_text(message: dict, names: dict[str, str]) -> dict:
    role = message["role"]
    if role == "assistant" and message.get("tool_calls"):
        blocks = [block(c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]]
        text = "\n".join(([message["content"]] if message.get("content") else []) + blocks)
        return {"role": "assistant", "content": text}
    if role == "tool":
        return {"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"}
    return {"role": role, "content": message.get("content") or ""}


def _merge_results(messages: list[dict]) -> list[dict]:
    """Consecutive tool results as one user turn (each its own block)."""
    out: list[dict] = []
    for m in messages:
        both = out and m["content"].startswith("<tool_response>") and out[-1]["role"] == "user"
        if both and out[-1]["content"].startswith("<tool_response>"):
            out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + m["content"]}
        else:
            out.append(m)
    return out


def block(name: str, arguments) -> str:
    """One call as the model writes it (``arguments``: a dict, or its JSON text)."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return header(name) + text + "}" + CLOSE


def grammar(tools: list[dict], only: str | None = None, parallel: bool = True, text: bool = False) -> Grammar:
    """A Lark grammar for calls of ``tools`` (of ``only``, the one named): one call, or several when
    ``parallel``; with ``text``, plain text that does not start with a call is allowed instead."""
    functions = [t["function"] for t in tools if only is None or t["function"]["name"] == only]
    rules = [f"f{i}: %json {json.dumps(_call_schema(f), ensure_ascii=False)}" for i, f in enumerate(functions)]
    body = " | ".join(f"f{i}" for i in range(len(functions)))
    calls = 'call ("\\n" call)*' if parallel else "call"
    lines = [
        "start: TEXT | calls" if text else "start: calls",
        f"calls: {calls}",
        f"call: {json.dumps(OPEN)} ({body}) {json.dumps(CLOSE)}",
        *rules,
        f"TEXT: /(?s:.+)/ & ~/{re.escape(OPEN[:-1])}(?s:.*)/",  # text that does not start a call
    ]
    return Grammar("lark", "\n".join(lines))


def _call_schema(function: dict) -> dict:
    """``{"name": NAME, "arguments": ...}`` held to the function's parameters; its ``$defs`` moved to the
    root, where its ``$ref``s point."""
    parameters = dict(function.get("parameters") or EMPTY_PARAMETERS)
    if function.get("strict"):
        parameters = closed(parameters)
    defs = {key: parameters.pop(key) for key in ("$defs", "definitions") if key in parameters}
    properties = {"name": {"const": function["name"]}, "arguments": parameters}
    schema = {"type": "object", "properties": properties, "required": ["name", "arguments"]}
    return {**schema, "additionalProperties": False, **defs, "x-guidance": JSON_OPTIONS}


def read_calls(text: str) -> list[Call] | None:
    """The calls ``text`` holds when it is nothing but call blocks (as the grammar writes them), else None."""
    calls = []
    for part in text.split(CLOSE):
        part = part.removeprefix("\n")
        if not part and calls:
            continue
        if not part.startswith(OPEN):
            return None
        try:
            value = json.loads(part[len(OPEN) :])
        except ValueError:
            return None
        if not (isinstance(value, dict) and isinstance(value.get("name"), str) and "arguments" in value):
            return None
        start, written = header(value["name"]), part.endswith("}")
        arguments = part[len(start) : -1] if part.startswith(start) and written else json.dumps(value["arguments"])
        calls.append(Call(new_id(), value["name"], arguments))
    return calls or None


def new_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]
