"""What ``POST /v1/responses`` takes: its body as a pydantic model, ``input`` items as chat messages and
``text.format`` as a Grammar (runtime/grammar.py, the engine behind ``--schema`` and ``--json-object``).

The server keeps no responses: ``store`` true, ``previous_response_id``, ``conversation`` and item references
are refused, saying so, and so are items other than text messages (images, files, tool calls: not supported).
Fields that only steer OpenAI's own service are accepted at the values that change nothing here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from ..errors import NlpsuiteError
from ..runtime.grammar import Grammar
from .errors import bad
from .requests import ROLES, Body

NO_STATE = "this server keeps no responses (it is not stateful): send the whole conversation in 'input'"
# Accepted only at the value that changes nothing (``...``: any), as the chat routes take their neutral fields.
NEUTRAL = {"parallel_tool_calls": True, "tool_choice": "auto", "truncation": "disabled", "include": [],
           "service_tier": "auto", "background": False, "top_logprobs": 0, "metadata": ..., "user": ...,
           "safety_identifier": ..., "prompt_cache_key": ...}  # fmt: skip


class InputText(Body):
    type: Literal["input_text"]
    text: str
    prompt_cache_breakpoint: Any = None


class OutputText(Body):
    """A reply's text as an earlier response gave it (a client sends its output back as input)."""

    type: Literal["output_text"]
    text: str
    annotations: list = []
    logprobs: Any = None


Part = Annotated[InputText | OutputText, Field(discriminator="type")]


class InputMessage(Body):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]
    id: str | None = None
    status: str | None = None
    phase: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value):
        if isinstance(value, list):
            for part in value:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in ("input_text", "output_text"):
                    raise ValueError(f"a {kind!r} content part is not supported: this server takes text only")
        return value

    def plain(self) -> dict:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": ROLES[self.role], "content": text}


class FormatText(Body):
    type: Literal["text"]


class FormatJsonObject(Body):
    type: Literal["json_object"]


class FormatJsonSchema(Body):
    type: Literal["json_schema"]
    name: str
    schema_: dict = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(Body):
    format: Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")] = FormatText(
        type="text"
    )
    verbosity: Literal["medium"] | None = None  # a hint this server cannot follow: only the default is taken


class StreamOptions(Body):
    include_obfuscation: bool = False  # padding against length side channels; this server adds none


class ResponsesRequest(Body):
    model: str | None = None  # openai_api.check_model says what is missing or unknown
    input: str | list[InputMessage]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextConfig = TextConfig()
    stream: bool = False
    stream_options: StreamOptions | None = None
    store: bool = False
    previous_response_id: str | None = None
    conversation: Any = None
    tools: list = []
    parallel_tool_calls: Any = None  # the fields of NEUTRAL: requests.parse refuses any other value
    tool_choice: Any = None
    truncation: Any = None
    include: Any = None
    service_tier: Any = None
    background: Any = None
    top_logprobs: Any = None
    metadata: Any = None
    user: Any = None
    safety_identifier: Any = None
    prompt_cache_key: Any = None

    @field_validator("input", mode="before")
    @classmethod
    def _messages_only(cls, value):
        if isinstance(value, list):
            for i, item in enumerate(value):
                kind = item.get("type", "message") if isinstance(item, dict) else "message"
                if kind == "item_reference":
                    raise ValueError(f"item {i} is an item reference: {NO_STATE}")
                if kind != "message":
                    raise ValueError(f"item {i} is a {kind!r} item: this server takes text messages only")
        return value

    def stateless(self) -> None:
        """Refuse what would need responses kept here, saying so."""
        for name in ("previous_response_id", "conversation"):
            if getattr(self, name) is not None:
                raise bad(f"{name} is not supported: {NO_STATE}", name, "unsupported_parameter")
        if self.store:
            raise bad(f"store must be false: {NO_STATE}", "store", "unsupported_value")
        if self.tools:
            raise bad("tools are not supported on /v1/responses yet: call it without tools", "tools",
                      "unsupported_parameter")  # fmt: skip

    def messages(self) -> list[dict]:
        """``instructions`` as the system message, then ``input``'s messages, as the chat template takes them."""
        given = [{"role": "user", "content": self.input}] if isinstance(self.input, str) else []
        given += [m.plain() for m in self.input] if isinstance(self.input, list) else []
        if not given:
            raise bad("input must hold at least one message", "input")
        system = [{"role": "system", "content": self.instructions}] if self.instructions else []
        return system + given

    def grammar(self) -> Grammar | None:
        """``text.format`` as the Grammar its output must match (None for plain text); a 400 for a bad schema."""
        fmt = self.text.format
        try:
            if isinstance(fmt, FormatJsonObject):
                return Grammar.json_object()
            if isinstance(fmt, FormatJsonSchema):
                grammar = Grammar.json_schema(fmt.schema_, strict=fmt.strict)
                grammar.check()  # compiled (bounded in time) before the request joins the batch
                return grammar
        except NlpsuiteError as exc:
            raise bad(f"text.format: {exc}", "text") from None
        return None
