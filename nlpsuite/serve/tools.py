"""Tool calls on /v1/chat/completions in OpenAI's shapes: a request's ``tools``/``tool_choice`` as the tools the
template is given and the grammar the reply is held to (runtime.tools writes both), and the reply read back as
``tool_calls``, whole or as the deltas of a stream.

``tool_choice``: "none" offers no tools (the reply is plain text); "auto" (the default with tools) lets the
model write text or calls; "required" and a named function hold the reply to calls (of that function).
``parallel_tool_calls: false`` allows one call only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NlpsuiteError
from ..runtime import tools as model_tools
from ..runtime.grammar import Grammar
from .errors import bad
from .requests import NamedTool


@dataclass
class ToolPlan:
    tools: list[dict]  # offered to the template: OpenAI's {"type": "function", "function": {...}}
    grammar: Grammar


def plan(asked) -> ToolPlan | None:
    """The tools a chat request offers and how its reply is held to them (None: no tools offered); a 400 for
    a choice that names no offered tool or a parameter schema that cannot be used."""
    tools = [t.model_dump(exclude_none=True) for t in asked.tools or []]
    choice = asked.tool_choice or ("auto" if tools else "none")
    if choice != "none" and not tools:
        raise bad("tool_choice needs tools", "tool_choice")
    if choice == "none":
        return None
    if asked.response_format is not None and asked.response_format.type != "text":
        raise bad("response_format cannot be combined with tools (unless tool_choice is none)", "response_format")
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) < len(names):
        raise bad("tools must have different names", "tools")
    only = choice.function.name if isinstance(choice, NamedTool) else None
    if only is not None and only not in names:
        raise bad(f"tool_choice names {only!r}, which is not among the tools", "tool_choice")
    grammar = model_tools.grammar(tools, only, asked.parallel_tool_calls, text=choice == "auto")
    try:
        grammar.check()
    except NlpsuiteError as exc:
        raise bad(f"a tool's parameters cannot be used: {exc}", "tools") from None
    return ToolPlan(tools, grammar)


def _call(index: int | None, call: model_tools.Call) -> dict:
    out = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    return out if index is None else {"index": index, **out}


def message(text: str, reason: str, offered: ToolPlan | None) -> tuple[dict, str]:
    """A whole reply's message and finish_reason: calls when the reply is calls that ended ("tool_calls");
    anything else (text, or calls cut by max_tokens) is content."""
    calls = model_tools.read_calls(text) if offered is not None and reason == "stop" else None
    if calls:
        return {"role": "assistant", "content": None, "tool_calls": [_call(None, c) for c in calls]}, "tool_calls"
    return {"role": "assistant", "content": text}, reason


class CallStream:
    """A streamed reply as chat deltas: content, or (when it starts with a call) the ``tool_calls`` deltas that
    the SDK assembles: each call's id and name first, then its arguments as they come."""

    HELD = len(model_tools.CLOSE) + 1  # the end of a block ('}' and CLOSE) is not arguments

    def __init__(self, offered: ToolPlan | None) -> None:
        self.text = ""
        self.mode = None if offered is not None else "content"  # None: too early to say
        self.sent = 0  # characters of text turned into deltas
        self.calls = 0
        self.in_call = False

    def feed(self, delta: str) -> list[dict]:
        self.text += delta
        if self.mode is None:
            if model_tools.OPEN.startswith(self.text):
                return []
            self.mode = "calls" if self.text.startswith(model_tools.OPEN) else "content"
        if self.mode == "content":
            out, self.sent = self.text[self.sent :], len(self.text)
            return [{"content": out}] if out else []
        return self._calls()

    def _calls(self) -> list[dict]:
        deltas = []
        while True:
            if not self.in_call:
                start = self.text.find(model_tools.PREFIX, self.sent)
                marker = self.text.find(model_tools.SEPARATOR, start)
                if start < 0 or marker < 0:
                    return deltas
                name = self.text[start + len(model_tools.PREFIX) : marker]
                self.sent, self.in_call = marker + len(model_tools.SEPARATOR), True
                call = model_tools.Call(model_tools.new_id(), name, "")
                deltas.append({"tool_calls": [_call(self.calls, call)]})
            end = self.text.find(model_tools.CLOSE, self.sent)
            upto = end - 1 if end >= 0 else len(self.text) - self.HELD
            if upto > self.sent:
                piece, self.sent = self.text[self.sent : upto], upto
                deltas.append({"tool_calls": [{"index": self.calls, "function": {"arguments": piece}}]})
            if end < 0:
                return deltas
            self.sent, self.in_call, self.calls = end + len(model_tools.CLOSE), False, self.calls + 1

    def finish(self, reason: str) -> tuple[list[dict], str]:
        """The deltas still held back and the finish_reason."""
        if self.mode is None and self.text:  # ended on what might have begun a call: it is text
            self.mode = "content"
            return self.feed(""), reason
        if self.mode == "calls" and reason == "stop" and self.calls:
            return [], "tool_calls"
        return [], reason
