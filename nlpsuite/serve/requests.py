"""The OpenAI routes' request bodies as pydantic models, and pydantic's errors in OpenAI's shape.

Types and shapes are checked here (strictly: "10" is not a number, 2.5 not a whole one); an unknown field is a
400 naming it, and a field the server does not implement is accepted only at the value that changes nothing
(clients that spell out every default keep working). Ranges are not written here: the sampling options'
declaration checks them (``tasks.sampling_options``, ``SamplingParams.check``; see openai_api.sampling).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from ..runtime.grammar import Grammar
from ..tasks import sampling_options
from .errors import ApiError, bad

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
MAX_STOPS = 16
# Accepted only at the value that changes nothing (``...``: any value), compared as JSON: 0.0 is 0, false is not 0.
NEUTRAL = {"frequency_penalty": 0, "presence_penalty": 0, "echo": False, "best_of": 1, "store": False, "suffix": "",
           "user": ..., "metadata": ...}  # fmt: skip
MAX_CHOICES = 16  # n, per prompt
JSON_TYPES = {int: int, float: float, bool: bool, str: str}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _sampling_fields() -> dict:
    """The decoding options of the one declaration, typed as JSON; ``stop`` as OpenAI takes it (one or a list)."""
    fields: dict[str, Any] = {}
    for option in sampling_options():
        kind = str | list[str] if option.type is list else JSON_TYPES[option.type]
        fields[option.name] = (kind | None, None)
    fields["max_completion_tokens"] = (int | None, None)  # OpenAI's newer name for max_tokens
    fields["n"] = (int, Field(1, ge=1, le=MAX_CHOICES))
    fields["response_format"] = (ResponseFormat | None, None)
    fields.update({name: (Any, None) for name in NEUTRAL})
    return fields


class JsonSchemaSpec(Body):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict = Field(default_factory=dict, alias="schema")  # pydantic's own BaseModel.schema is in the way
    strict: bool | None = None


class ResponseFormat(Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self):
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is given with type json_schema, and only then")
        return self

    def grammar(self) -> Grammar | None:
        """What the output must match (None: free text); NlpsuiteError for a schema that cannot be used."""
        if self.type == "json_object":
            return Grammar.json_object()
        if self.type == "json_schema":
            return Grammar.json_schema(self.json_schema.schema_, strict=self.json_schema.strict)
        return None


Generating = create_model("Generating", __base__=Body, **_sampling_fields())


class StreamOptions(Body):
    include_usage: bool = False


class TextPart(Body):
    type: Literal["text"]
    text: str


class FunctionCall(Body):
    name: str
    arguments: str  # JSON text, as OpenAI gives it


class ToolCall(Body):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @field_validator("function")
    @classmethod
    def _arguments_are_json(cls, value: FunctionCall) -> FunctionCall:
        try:
            json.loads(value.arguments)
        except ValueError:
            raise ValueError("function.arguments must be JSON text") from None
        return value

    def template(self) -> dict:
        """As chat templates take a call: its arguments parsed."""
        function = {"name": self.function.name, "arguments": json.loads(self.function.arguments)}
        return {"id": self.id, "type": "function", "function": function}


class Message(Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None  # None only for an assistant's tool calls
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's
    tool_call_id: str | None = None  # a tool result's
    refusal: None = None  # in the assistant messages the SDK sends back

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value):
        if isinstance(value, list) and not all(isinstance(p, dict) and p.get("type") == "text" for p in value):
            raise ValueError("only text content parts are supported")
        return value

    @model_validator(mode="after")
    def _roles_fields(self):
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (it may be null only in an assistant's tool calls)")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages carry tool_call_id, and only they")
        return self

    def plain(self) -> dict:
        """The message as the chat template takes it: developer is system, parts are joined, tool calls' arguments
        parsed (templates write them with tojson)."""
        content = self.content or ""
        text = content if isinstance(content, str) else "".join(p.text for p in content)
        out = {"role": ROLES[self.role], "content": text}
        if self.tool_calls:
            out["tool_calls"] = [c.template() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class Streamed(Generating):
    stream: bool = False
    stream_options: StreamOptions | None = None


class FunctionSpec(Body):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict | None = None  # a JSON schema of the arguments (an object)
    strict: bool | None = None


class Tool(Body):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(Body):
    name: str


class NamedTool(Body):
    type: Literal["function"]
    function: NamedFunction


class ChatRequest(Streamed):
    model: str | None = None  # openai_api.check_model says what is missing or unknown
    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = None  # the range is SamplingParams.check's
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    parallel_tool_calls: bool = True


class CompletionRequest(Streamed):
    model: str | None = None
    prompt: str | list  # strings or token ids: checked against the vocabulary by openai_api.completion_prompts
    logprobs: int | None = None  # the legacy form: how many alternatives per token (the range: SamplingParams')


class EmbeddingRequest(Body):
    model: str | None = None
    input: str | list
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: Any = None


def parse(model: type[Body], body: dict, neutral: dict | None = None) -> Any:
    """``body`` as ``model`` (nulls are absent, as OpenAI treats them); ApiError 400 naming the first bad field.
    ``neutral``: the route's own table of fields taken only at the value that changes nothing (else NEUTRAL)."""
    body = {k: v for k, v in body.items() if v is not None}
    try:
        request = model.model_validate(body)
    except ValidationError as exc:
        raise _api_error(exc.errors()) from None
    _neutral(body, set(neutral or NEUTRAL), neutral)
    return request


def check_fields(body: dict, allowed: set[str]) -> dict:
    """A flat body (the routes without a model here): ``body`` without nulls, where a field not in ``allowed`` is
    a 400 unless it holds its neutral value."""
    body = {k: v for k, v in body.items() if v is not None}
    _neutral(body, set(body) - allowed)
    return body


def _neutral(body: dict, names: set[str], table: dict | None = None) -> None:
    """Refuse ``names`` of ``body`` that are not at a value that changes nothing (by ``table``, else NEUTRAL)."""
    for name in sorted(names & set(body), key=list(body).index):
        neutral = (table or NEUTRAL).get(name, _UNKNOWN)
        if neutral is ... or (neutral is not _UNKNOWN and _same(body[name], neutral)):
            continue
        raise bad(f"{name!r} is not supported by this server", name, "unsupported_parameter")


_UNKNOWN = object()
_MESSAGES = TypeAdapter(Annotated[list[Message], Field(min_length=1)])


def chat_messages(value) -> list[dict]:
    """``messages`` as the chat template takes them ({role, content}); a 400 names what is wrong."""
    try:
        messages = _MESSAGES.validate_python(value, strict=True)
    except ValidationError as exc:
        raise _api_error([{**e, "loc": ("messages", *e["loc"])} for e in exc.errors()]) from None
    return [m.plain() for m in messages]


def _same(value, default) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(value, int | float) and isinstance(default, int | float):
        return value == default
    return type(value) is type(default) and value == default


WORDS = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
         "string_type": "a string", "list_type": "a list", "model_type": "an object", "dict_type": "an object",
         "literal_error": "{expected}"}  # fmt: skip
# Labels pydantic puts in an error's location for the member of a union it tried (not a field of the request),
# and how the message names each.
BRANCH = re.compile(r"^(str|int|float|bool|none|[\w-]+\[.*\])$|[A-Z]")
MEMBERS = {"str": "a string", "list[str]": "a list of strings", "list[TextPart]": "a list of text parts",
           "list[any]": "a list", "int": "a whole number", "float": "a number", "bool": "true or false"}  # fmt: skip


def _api_error(errors: list[dict]) -> ApiError:
    """pydantic's first error as OpenAI's: the request's top-level field is ``param``, the message names the path;
    a value that is none of a union's members says which members there are."""
    error, members = _first(errors)
    loc = [part for part in error["loc"] if not (isinstance(part, str) and BRANCH.search(part))]
    param = str(loc[0]) if loc else None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "the body"
    kind, ctx = error["type"], error.get("ctx", {})
    if members and all(m in MEMBERS for m in members):
        return bad(f"{where} must be " + " or ".join(dict.fromkeys(MEMBERS[m] for m in members)), param)
    if kind == "extra_forbidden" and len(loc) == 1:
        return bad(f"{param!r} is not supported by this server", param, "unsupported_parameter")
    if kind == "extra_forbidden":
        return bad(f"{where} is not a field this server knows", param)
    if kind == "missing":
        return bad(f"{where} is required", param)
    if kind == "value_error":
        return bad(f"{where}: {error['msg'].removeprefix('Value error, ')}", param)
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length", ctx.get("max_length"))
        return bad(f"{where} must hold {'at least' if kind == 'too_short' else 'at most'} {n} item(s)", param)
    if kind in WORDS:
        return bad(f"{where} must be " + WORDS[kind].format(**ctx), param)
    return bad(f"{where}: {error['msg']}", param)


def _first(errors: list[dict]) -> tuple[dict, list[str]]:
    """The error to report and, when it is a union's, its members' labels: a member that took the value's
    outer shape (an error deeper inside it) is reported instead of the union."""
    first = errors[0]
    at = next((i for i, p in enumerate(first["loc"]) if isinstance(p, str) and BRANCH.search(p)), None)
    if at is None:
        return first, []
    same = [e for e in errors if e["loc"][:at] == first["loc"][:at] and len(e["loc"]) > at]
    deeper = [e for e in same if len(e["loc"]) > at + 1]
    if deeper:
        return deeper[0], []
    return first, [e["loc"][at] for e in same]
