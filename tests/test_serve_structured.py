"""`response_format`, `logprobs`, `n` and tools on `/v1/chat/completions` and `/v1/completions`, driven by the official
`openai` client against a server on the tiny random model (test_serve's fixtures: started and stopped here, on a
free loopback port). The random model writes nonsense, so what is checked is the shape the grammar holds it to,
and that streamed and whole answers agree."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pytest
import test_serve
from pydantic import BaseModel, Field
from test_serve import alone, authed, model_id, request

from nlpsuite.runtime.grammar import Grammar

server, client, tiny = test_serve.server, test_serve.client, test_serve.tiny  # the module's fixtures, here too

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")
pytestmark = pytest.mark.shared_cache

HI = [{"role": "user", "content": "hello world"}]
PICK = {"type": "object", "properties": {"colour": {"enum": ["red", "blue"]}, "ok": {"type": "boolean"}},
        "required": ["colour", "ok"], "additionalProperties": False}  # fmt: skip
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}},
                          "required": ["city"], "additionalProperties": False}}}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {
        "zone": {"enum": ["UTC", "CET"]}, "digits": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["zone", "digits"], "additionalProperties": False}}}  # fmt: skip
TOOLS = [WEATHER, TIME]


class Choice(BaseModel):
    colour: Literal["red", "green", "blue"]
    sure: bool
    score: int = Field(ge=0, le=9)


def chat(client, server, **kwargs):
    return client.chat.completions.create(model=model_id(server), **{"messages": HI, "max_tokens": 60, **kwargs})


# -- response_format ----------------------------------------------------------------------------------------------


def test_a_json_schema_response_validates_and_streams_the_same(client, server):
    form = {"type": "json_schema", "json_schema": {"name": "pick", "schema": PICK, "strict": True}}
    whole = chat(client, server, response_format=form, temperature=0)
    assert whole.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(whole.choices[0].message.content), PICK)
    chunks = chat(client, server, response_format=form, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    sampled = chat(client, server, response_format=form, temperature=1.0, seed=3)
    jsonschema.validate(json.loads(sampled.choices[0].message.content), PICK)


def test_the_sdks_parse_returns_the_pydantic_object(client, server):
    done = client.chat.completions.parse(model=model_id(server), messages=HI, max_tokens=60, response_format=Choice)
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Choice) and done.choices[0].finish_reason == "stop"
    assert Choice.model_validate_json(done.choices[0].message.content) == parsed


def test_json_object_and_text_formats(client, server):
    obj = chat(client, server, response_format={"type": "json_object"}, max_tokens=120, temperature=0)
    content = obj.choices[0].message.content
    assert content.startswith("{")
    if obj.choices[0].finish_reason == "stop":  # an object the model closed within 120 tokens
        assert isinstance(json.loads(content), dict)
    text = chat(client, server, response_format={"type": "text"}, max_tokens=12, temperature=0)
    assert (
        text.choices[0].message.content == chat(client, server, max_tokens=12, temperature=0).choices[0].message.content
    )


def test_response_format_on_completions(client, server):
    form = {"type": "json_schema", "json_schema": {"name": "pick", "schema": PICK}}
    done = client.completions.create(
        model=model_id(server), prompt="a colour:", max_tokens=60, temperature=0, extra_body={"response_format": form}
    )
    jsonschema.validate(json.loads(done.choices[0].text), PICK)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}}},
         "keywords this server does not support: uniqueItems"),
        ({"type": "json_schema"}, "json_schema is given with type json_schema"),
        ({"type": "xml"}, "response_format.type must be"),
    ],
)  # fmt: skip
def test_a_response_format_that_cannot_be_used_is_a_400_naming_it(server, form, message):
    body = {"model": model_id(server), "messages": HI, "max_tokens": 4, "response_format": form}
    status, answer = request(server.port, "POST", "/v1/chat/completions", body, authed())
    assert status == 400 and answer["error"]["param"] == "response_format", answer
    assert message in answer["error"]["message"]


# -- logprobs -----------------------------------------------------------------------------------------------------


def log_softmax(suite, prompt: list[int], tokens: list[int]) -> np.ndarray:
    """One forward over the prompt and the tokens chosen: each chosen token's row of log-probabilities [n, vocab]."""
    from nlpsuite.runtime.backbone import left_pad

    backbone = suite.backbone
    ids, mask, positions = left_pad([prompt + tokens], 0)
    step = backbone.forward(ids, mask, positions, backbone.empty_state(1), num_logits=len(tokens) + 1)
    rows = step.logits[0, :-1].astype(np.float64)  # the positions that chose each token
    shifted = rows - rows.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_chat_logprobs_are_a_direct_forwards_log_softmax_streamed_or_not(client, server):
    suite = server.suite
    prompt = suite.head("generation").encode_chat(HI)
    asked = {
        "max_tokens": 8,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
        "extra_body": {"repetition_penalty": 1.3},
    }
    done = chat(client, server, **asked)
    content = done.choices[0].logprobs.content
    tokens = alone(suite, prompt, max_tokens=8, repetition_penalty=1.3).token_ids
    assert len(content) == len(tokens) and "".join(t.token for t in content) == done.choices[0].message.content
    expected = log_softmax(suite, prompt, tokens)  # the model's own distribution: before the penalty
    pieces = suite.tokenizer.pieces(tokens)
    for entry, row, token, piece in zip(content, expected, tokens, pieces, strict=True):
        assert entry.logprob == pytest.approx(row[token], abs=1e-4) and bytes(entry.bytes) == piece.encode()
        best = np.argsort(-row)[:3]
        assert [t.logprob for t in entry.top_logprobs] == pytest.approx(row[best].tolist(), abs=1e-4)
        assert [t.token for t in entry.top_logprobs] == suite.tokenizer.pieces(best.tolist())
    streamed = chat(client, server, **asked, stream=True)
    entries = [e for c in streamed if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in entries] == [(e.token, e.logprob) for e in content]


def test_completion_logprobs_in_the_legacy_shape_streamed_or_not(client, server):
    suite = server.suite
    prompt = suite.tokenizer.encode("numbers like 1 2 3", add_special_tokens=True)
    done = client.completions.create(model=model_id(server), prompt=prompt, max_tokens=6, temperature=0, logprobs=2)
    shape = done.choices[0].logprobs
    tokens = alone(suite, prompt, max_tokens=6).token_ids
    expected = log_softmax(suite, prompt, tokens)
    assert shape.token_logprobs == pytest.approx([row[t] for row, t in zip(expected, tokens, strict=True)], abs=1e-4)
    assert "".join(shape.tokens) == done.choices[0].text
    assert shape.text_offset == [sum(len(t) for t in shape.tokens[:i]) for i in range(len(tokens))]
    assert all(
        len(top) == 2 and max(top.values()) >= lp - 1e-6
        for top, lp in zip(shape.top_logprobs, shape.token_logprobs, strict=True)
    )
    streamed = client.completions.create(
        model=model_id(server), prompt=prompt, max_tokens=6, temperature=0, logprobs=2, stream=True
    )
    parts = [c.choices[0].logprobs for c in streamed if c.choices[0].logprobs]
    assert [t for p in parts for t in p.tokens] == shape.tokens
    assert [o for p in parts for o in p.text_offset] == shape.text_offset


@pytest.mark.parametrize(
    ("route", "extra", "param"),
    [
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
        ("/v1/completions", {"logprobs": 21}, "logprobs"),
    ],
)
def test_logprobs_out_of_range_are_400s(server, route, extra, param):
    body = {"model": model_id(server), "max_tokens": 2, **extra}
    body.update({"messages": HI} if "chat" in route else {"prompt": "hi"})
    status, answer = request(server.port, "POST", route, body, authed())
    assert status == 400 and answer["error"]["param"] == param, answer


# -- n ------------------------------------------------------------------------------------------------------------


def test_n_choices_are_rows_each_reproducible_by_its_seed(client, server):
    sampled = chat(client, server, n=3, temperature=1.0, seed=11, max_tokens=10)
    assert [c.index for c in sampled.choices] == [0, 1, 2]
    texts = [c.message.content for c in sampled.choices]
    assert len(set(texts)) > 1  # each choice its own seed (11, 12, 13)
    again = [
        chat(client, server, temperature=1.0, seed=11 + i, max_tokens=10).choices[0].message.content for i in range(3)
    ]
    assert again == texts
    greedy = chat(client, server, n=2, temperature=0, max_tokens=10)
    prompt = server.suite.head("generation").encode_chat(HI)
    want = alone(server.suite, prompt, max_tokens=10)
    assert [c.message.content for c in greedy.choices] == [want.text] * 2  # greedy: the same choice twice
    assert (greedy.usage.prompt_tokens, greedy.usage.completion_tokens) == (len(prompt), 2 * len(want.token_ids))


def test_n_on_completions_streamed_with_each_choices_index(client, server):
    prompts = ["hello", "numbers like"]
    whole = client.completions.create(
        model=model_id(server), prompt=prompts, n=2, max_tokens=8, temperature=1.0, seed=5
    )
    assert [c.index for c in whole.choices] == [0, 1, 2, 3]
    streamed = client.completions.create(
        model=model_id(server), prompt=prompts, n=2, max_tokens=8, temperature=1.0, seed=5, stream=True
    )
    parts = {i: "" for i in range(4)}
    for chunk in streamed:
        parts[chunk.choices[0].index] += chunk.choices[0].text
    assert [parts[i] for i in range(4)] == [c.text for c in whole.choices]


# -- tools --------------------------------------------------------------------------------------------------------


def check_calls(message, tools=TOOLS, only: str | None = None) -> None:
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert message.tool_calls and message.content is None
    for call in message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name in schemas and (only is None or call.function.name == only)
        jsonschema.validate(json.loads(call.function.arguments), schemas[call.function.name])


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_time"}}])
def test_required_and_named_tool_choices_return_calls_that_validate(client, server, choice):
    done = chat(client, server, tools=TOOLS, tool_choice=choice, temperature=0, max_tokens=200)
    assert done.choices[0].finish_reason == "tool_calls"
    check_calls(done.choices[0].message, only=None if choice == "required" else "get_time")
    single = chat(client, server, tools=TOOLS, tool_choice=choice, parallel_tool_calls=False, temperature=1.0, seed=2,
                  max_tokens=200)  # fmt: skip
    assert single.choices[0].finish_reason == "tool_calls" and len(single.choices[0].message.tool_calls) == 1
    check_calls(single.choices[0].message, only=None if choice == "required" else "get_time")


def test_streamed_tool_calls_are_the_whole_ones_as_the_sdk_assembles_them(client, server):
    kwargs = {"tools": TOOLS, "tool_choice": "required", "temperature": 0, "max_tokens": 200}
    whole = chat(client, server, **kwargs).choices[0]
    with client.chat.completions.stream(model=model_id(server), messages=HI, **kwargs) as stream:
        final = stream.get_final_completion().choices[0]
    assert final.finish_reason == "tool_calls"
    got = [(c.function.name, c.function.arguments) for c in final.message.tool_calls]
    assert got == [(c.function.name, c.function.arguments) for c in whole.message.tool_calls]


def test_auto_lets_the_model_write_text_or_calls(client, server):
    seen = set()
    for seed in range(6):
        done = chat(client, server, tools=TOOLS, temperature=1.0, seed=seed, max_tokens=200).choices[0]
        if done.message.tool_calls:
            assert done.finish_reason == "tool_calls"
            check_calls(done.message)
            seen.add("calls")
        else:
            assert not done.message.content.startswith("<tool_call>")
            seen.add("text")
    assert "text" in seen  # the random model rarely starts with the call marker, but it may


def test_a_tool_round_trip_and_the_fallback_prompt(client, server):
    first = chat(client, server, tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=200)
    call = first.choices[0].message.tool_calls[0]
    messages = [*HI, first.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
    again = chat(client, server, messages=messages, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=6)
    assert again.choices[0].finish_reason in ("stop", "length") and again.choices[0].message.tool_calls is None
    plain = [m if isinstance(m, dict) else m.model_dump(exclude_none=True) for m in messages]
    plain[1]["tool_calls"][0]["function"]["arguments"] = json.loads(call.function.arguments)
    encode, tokenizer = server.suite.head("generation").encode_chat, server.suite.tokenizer
    assert first.usage.prompt_tokens == len(encode(HI, [WEATHER]))  # tools offered
    assert again.usage.prompt_tokens == len(encode(plain))  # tool_choice none: not offered, the calls written back
    prompt = tokenizer.decode(encode(plain, [WEATHER]), skip_special=False)
    assert "<tools>\n" + json.dumps(WEATHER) + "\n</tools>" in prompt  # the tiny template has no tools variable
    written = json.dumps({"name": "get_weather", "arguments": json.loads(call.function.arguments)})
    assert "<|im_start|>assistant\n<tool_call>\n" + written + "\n</tool_call><|im_end|>" in prompt
    assert "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>" in prompt


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        ({"tool_choice": "required"}, "tool_choice", "tool_choice needs tools"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice", "'nope'"),
        ({"tools": [WEATHER, WEATHER]}, "tools", "different names"),
        ({"tools": TOOLS, "response_format": {"type": "json_object"}}, "response_format", "cannot be combined"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"not": {}}}}]}, "tools", "not"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages", "tool_call_id"),
    ],
)  # fmt: skip
def test_bad_tool_requests_are_400s_naming_the_field(server, extra, param, message):
    body = {"model": model_id(server), "messages": HI, "max_tokens": 4, **extra}
    status, answer = request(server.port, "POST", "/v1/chat/completions", body, authed())
    assert status == 400 and answer["error"]["param"] == param and message in answer["error"]["message"], answer


def test_a_template_with_a_tools_variable_renders_them_itself():
    from nlpsuite.runtime.tokenizer import PLAIN_TEMPLATE, ChatTemplate

    source = ("{% if tools %}Tools: {% for t in tools %}{{ t.function.name }} {% endfor %}\n{% endif %}"
              "{% for m in messages %}{{ m.role }}: {{ m.content }}{% for c in m.tool_calls or [] %}"
              "[{{ c.function.name }} {{ c.function.arguments | tojson }}]{% endfor %}\n{% endfor %}")  # fmt: skip
    template = ChatTemplate(source)
    assert template.takes_tools and not ChatTemplate(PLAIN_TEMPLATE).takes_tools
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [call]}]
    text = template.render(messages, tools=TOOLS)
    assert text == 'Tools: get_weather get_time user: hiassistant: [get_weather {"city": "Oslo"}]'  # trim_blocks


def allowed(grammar: Grammar, tokenizer, text: str) -> bool:
    """Whether the grammar's constraint takes ``text`` whole and may end there."""
    from nlpsuite.runtime.grammar import constraint

    row = constraint(grammar, tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=False)
    if row.valid_prefix(ids) < len(ids):
        return False
    for token in ids:
        row.consume(token)
    return row.accepting()


def test_the_calls_grammar_takes_text_or_calls_and_nothing_between(server):
    from nlpsuite.runtime import tools

    tokenizer = server.suite.tokenizer
    auto, required = tools.grammar(TOOLS, text=True), tools.grammar(TOOLS, only="get_weather", parallel=False)
    call, other = tools.block("get_weather", {"city": "Oslo"}), tools.block("get_time", {"zone": "UTC", "digits": 3})
    assert allowed(auto, tokenizer, "It is sunny. " + call)  # a marker inside text is text
    assert allowed(auto, tokenizer, call + "\n" + other) and allowed(auto, tokenizer, call)
    assert not allowed(auto, tokenizer, call + " and more text")
    assert not allowed(auto, tokenizer, tools.block("get_weather", {"city": "Rome"}))
    assert allowed(required, tokenizer, call) and not allowed(required, tokenizer, "It is sunny.")
    assert not allowed(required, tokenizer, other) and not allowed(required, tokenizer, call + "\n" + call)
    assert [(c.name, c.arguments) for c in tools.read_calls(call + "\n" + other)] == [
        ("get_weather", '{"city": "Oslo"}'), ("get_time", '{"zone": "UTC", "digits": 3}')]  # fmt: skip
    assert tools.read_calls("Oslo is nice. " + call) is None


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_a_streamed_reply_becomes_content_or_call_deltas_whatever_its_pieces(size):
    from nlpsuite.runtime import tools
    from nlpsuite.serve.tools import CallStream, ToolPlan

    offered = ToolPlan(TOOLS, tools.grammar(TOOLS, text=True))

    def deltas(text: str, reason: str = "stop") -> tuple[list[dict], str]:
        stream = CallStream(offered)
        out = [d for i in range(0, len(text), size) for d in stream.feed(text[i : i + size])]
        rest, reason = stream.finish(reason)
        return out + rest, reason

    calls = tools.block("get_weather", {"city": "Oslo"}) + "\n" + tools.block("get_time", {"zone": "UTC", "digits": 3})
    got, reason = deltas(calls)
    assembled: dict[int, list[str]] = {}
    for delta in got:
        (part,) = delta["tool_calls"]
        if "id" in part:
            assembled[part["index"]] = [part["function"]["name"], ""]
        assembled[part["index"]][1] += part["function"]["arguments"]
    assert reason == "tool_calls"
    assert [tuple(assembled[i]) for i in sorted(assembled)] == [(c.name, c.arguments) for c in tools.read_calls(calls)]
    for text in ("<tool is not a call", "<tool", "Sunny. " + calls):
        got, reason = deltas(text)
        assert "".join(d["content"] for d in got) == text and reason == "stop"


def test_n_choices_read_their_prompt_once_and_the_others_take_it_from_the_prompt_cache(client, server):
    words = " ".join(f"word{i}" for i in range(40))  # a prompt no other test sent: several whole blocks
    messages = [{"role": "user", "content": words}]
    prompt = len(server.suite.head("generation").encode_chat(messages))
    before = server.service.engine.batch.prefilled
    done = chat(client, server, messages=messages, n=3, temperature=1.0, seed=4, max_tokens=2)
    read = server.service.engine.batch.prefilled - before
    blocks = (prompt - 1) // 16 * 16  # what a row can take from the cache (its last token is always read again)
    assert blocks >= 32 and read == prompt + 2 * (prompt - blocks)
    assert done.usage.prompt_tokens == prompt
