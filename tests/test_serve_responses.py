"""`POST /v1/responses` of `nlpsuite serve` on the tiny random model, through the official `openai` client
(`responses.create`, streamed and not, `responses.stream`, `responses.parse`), against what chat completions give
for the same conversation; and the SSE keep-alive comments of every streaming route while a request waits."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from typing import Literal

import pytest
import test_serve
from test_serve import PICK, alone, authed, model_id, request
from test_serve_endpoints import scrape, value

server, client, tiny = test_serve.server, test_serve.client, test_serve.tiny  # the module's fixtures, here too

openai = pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")
pytestmark = pytest.mark.shared_cache

EVENTS = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
PICKS = ("red", "blue")
ENDING = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


class Pick(pydantic.BaseModel):
    colour: Literal["red", "blue"]


def test_a_response_is_what_the_decoding_loop_gives_for_its_messages(client, server):
    reply = client.responses.create(
        model=model_id(server), instructions="be brief", input="hello world", max_output_tokens=12, temperature=0
    )
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]
    ids = server.suite.head("generation").encode_chat(messages)
    want = alone(server.suite, ids, max_tokens=12)
    assert reply.object == "response" and reply.id.startswith("resp_") and reply.model == model_id(server)
    assert reply.output_text == want.text and len(reply.output) == 1
    message = reply.output[0]
    assert (message.type, message.role, [p.type for p in message.content]) == ("message", "assistant", ["output_text"])
    cut = want.finish_reason == "length"
    assert reply.status == message.status == ("incomplete" if cut else "completed")
    assert (reply.incomplete_details and reply.incomplete_details.reason) == ("max_output_tokens" if cut else None)
    assert reply.usage.input_tokens == len(ids) and reply.usage.output_tokens == len(want.token_ids)
    assert reply.usage.total_tokens == len(ids) + len(want.token_ids)
    assert reply.usage.input_tokens_details.cached_tokens >= 0
    assert (reply.instructions, reply.max_output_tokens, reply.temperature, reply.store) == ("be brief", 12, 0, False)


def test_input_items_decode_as_the_same_chat_completion(client, server):
    """Message items (text parts, an earlier response's output sent back) and the chat route's messages give one
    prompt and one reply: the two routes share the messages, the template and the sampling rule."""
    first = client.responses.create(model=model_id(server), input="name a colour", max_output_tokens=5)
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "answer in one word"}]},
        {"role": "user", "content": "name a colour"},
        *[item.model_dump(exclude_none=True) for item in first.output],  # the output, sent back as input
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t} for t in ("and ", "more")]},
    ]
    reply = client.responses.create(model=model_id(server), input=items, max_output_tokens=10)
    said = [("system", "answer in one word"), ("user", "name a colour"), ("assistant", first.output_text),
            ("user", "and more")]  # fmt: skip
    messages = [{"role": role, "content": text} for role, text in said]
    chat = client.chat.completions.create(model=model_id(server), messages=messages, max_tokens=10)
    assert reply.output_text == chat.choices[0].message.content
    assert reply.usage.input_tokens == chat.usage.prompt_tokens
    assert reply.usage.output_tokens == chat.usage.completion_tokens


def test_unset_sampling_follows_the_models_defaults_as_on_every_route(client, server, monkeypatch):
    """The response says the values it decoded with: the request's, else the model's generation defaults."""
    monkeypatch.setattr(server.suite.head("generation"), "defaults", {"temperature": 0.7, "top_p": 0.9})
    reply = client.responses.create(model=model_id(server), input="hi", max_output_tokens=2)
    assert (reply.temperature, reply.top_p) == (0.7, 0.9)
    reply = client.responses.create(model=model_id(server), input="hi", max_output_tokens=2, temperature=0.2)
    assert (reply.temperature, reply.top_p) == (0.2, 0.9)
    monkeypatch.setattr(server.suite.head("generation"), "defaults", {})
    reply = client.responses.create(model=model_id(server), input="hi", max_output_tokens=2)
    assert (reply.temperature, reply.top_p) == (0.0, 1.0)  # greedy, as the CLI


def stream_events(client, server, **asked) -> list:
    stream = client.responses.create(model=model_id(server), stream=True, **asked)
    return list(stream)


def test_a_streamed_response_sends_the_responses_events_in_order(client, server):
    asked = {"input": "the quick brown fox", "max_output_tokens": 16, "temperature": 0}
    whole = client.responses.create(model=model_id(server), **asked)
    events = stream_events(client, server, **asked)
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    final = "response.incomplete" if whole.status == "incomplete" else "response.completed"
    assert kinds == EVENTS + ["response.output_text.delta"] * deltas + ENDING + [final]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert 0 < deltas <= 16 and len({e.response.id for e in events if hasattr(e, "response")}) == 1
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-4].text == events[-3].part.text == events[-2].item.content[0].text == whole.output_text
    last = events[-1].response
    assert last.output_text == whole.output_text and last.status == whole.status
    assert last.usage.output_tokens == whole.usage.output_tokens and last.usage.input_tokens == whole.usage.input_tokens
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")} | {events[2].item.id, last.output[0].id}
    assert len(item_ids) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_parse_holds_the_reply_to_a_pydantic_class(client, server, stream):
    """text.format json_schema (what the SDK sends for text_format) decodes through the grammar engine: the
    reply parses as the class, and ends by itself (completed, not cut by the budget)."""
    asked = {"model": model_id(server), "input": "pick a colour", "text_format": Pick, "max_output_tokens": 40}
    if stream:
        with client.responses.stream(**asked) as events:
            reply = events.get_final_response()
    else:
        reply = client.responses.parse(**asked)
    assert reply.status == "completed" and isinstance(reply.output_parsed, Pick)
    assert Pick.model_validate_json(reply.output_text) == reply.output_parsed
    assert reply.text.format.type == "json_schema"
    said = [{"role": "user", "content": "pick a colour"}, {"role": "user", "content": "why?"}]
    again = client.responses.create(  # the parsed output sent back (as the SDK sends it) is the assistant's turn
        model=model_id(server), input=[said[0], *reply.output, said[1]], max_output_tokens=4
    )
    turns = [said[0], {"role": "assistant", "content": reply.output_text}, said[1]]
    assert again.usage.input_tokens == len(server.suite.head("generation").encode_chat(turns))


@pytest.mark.parametrize(
    ("fmt", "check"),
    [
        # any JSON object: the tiny random model may run out of budget inside it, but it starts as one
        ({"type": "json_object"}, lambda text: text.startswith("{")),
        ({"type": "json_schema", "name": "pick", "schema": PICK, "strict": True}, lambda text: json.loads(text) in
         [{"colour": c} for c in PICKS]),
    ],
)  # fmt: skip
def test_text_format_holds_the_output_to_json(client, server, fmt, check):
    reply = client.responses.create(
        model=model_id(server), input="say something", text={"format": fmt}, max_output_tokens=60, temperature=0
    )
    assert check(reply.output_text) and reply.text.format.type == fmt["type"]


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "keeps no responses"),
        ({"store": True}, "store", "keeps no responses"),
        ({"conversation": "conv_1"}, "conversation", "keeps no responses"),
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools", "tools are not supported"),
        ({"max_output_tokens": 0}, "max_output_tokens", "max_output_tokens must be"),
        ({"temperature": -1}, "temperature", "temperature must be"),
        ({"reasoning": {"effort": "high"}}, "reasoning", "not supported"),
        ({"tool_choice": "required"}, "tool_choice", "not supported"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "no"}}}}, "text", "text.format"),
        ({"text": {"verbosity": "low"}}, "text", "text.verbosity"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input", "text messages only"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input", "keeps no responses"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input", "text only"),
        ({"input": []}, "input", "at least one message"),
    ],
)  # fmt: skip
def test_what_the_server_cannot_do_is_a_400_that_says_so(server, extra, param, words):
    body = {"model": model_id(server), "input": "hello", "max_output_tokens": 4, **extra}
    status, answer = request(server.port, "POST", "/v1/responses", body, authed())
    assert status == 400, answer
    assert answer["error"]["param"] == param and words in answer["error"]["message"], answer


def test_a_failed_decode_step_fails_the_response(client, server, monkeypatch):
    """Whole: a 500; streamed (the status line sent already): an error event, then response.failed."""

    def broken():
        raise RuntimeError("the step broke")

    monkeypatch.setattr(server.service.engine.batch, "step", broken)
    with pytest.raises(openai.InternalServerError, match="the step broke"):
        client.responses.create(model=model_id(server), input="hi", max_output_tokens=4)
    events = stream_events(client, server, input="hi", max_output_tokens=4)
    assert [e.type for e in events] == EVENTS + ["error", "response.failed"]
    assert "the step broke" in events[-2].message and events[-1].response.status == "failed"
    assert "the step broke" in events[-1].response.error.message
    monkeypatch.undo()
    assert client.responses.create(model=model_id(server), input="hi", max_output_tokens=2).usage.output_tokens


def test_the_sdk_raises_a_bad_request_for_previous_response_id(client, server):
    with pytest.raises(openai.BadRequestError, match="keeps no responses"):
        client.responses.create(model=model_id(server), input="hi", previous_response_id="resp_123")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")


def test_metrics_count_the_responses_route(client, server):
    before = scrape(server, authed())
    client.responses.create(model=model_id(server), input="hello", max_output_tokens=3)
    stream_events(client, server, input="hello", max_output_tokens=3)
    request(server.port, "POST", "/v1/responses", {"model": model_id(server), "input": []}, authed())
    after = scrape(server, authed())
    grew = {key: after[key] - before.get(key, 0.0) for key in after}
    assert value(grew, "nlpsuite_requests_total", route="/v1/responses", status="200") == 2
    assert value(grew, "nlpsuite_requests_total", route="/v1/responses", status="400") == 1
    assert value(grew, "nlpsuite_completion_tokens_total") == 6


# -- SSE keep-alive -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def held_prefill(server, keepalive_s: float):
    """The server's next prefill waits for the gate (a long prompt's prefill, made to last), with keep-alives due
    every ``keepalive_s`` seconds."""
    gate, batch, config = threading.Event(), server.service.engine.batch, server.service.config
    real, was = batch.add, config.keepalive_s

    def add(rows):
        gate.wait(30)
        return real(rows)

    batch.add, config.keepalive_s = add, keepalive_s
    try:
        yield gate
    finally:
        gate.set()
        del batch.add
        config.keepalive_s = was


def open_stream(server, path: str, body: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", path, json.dumps(body), authed(**{"Content-Type": "application/json"}))
    response = conn.getresponse()
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    return conn, response


# Each streaming route: its path, a body, how its last event begins, and how many events it sends before the
# first token (chat: the role; responses: created, in_progress, the item and its part added).
HI = {"role": "user", "content": "hi"}
ROUTES = {
    "chat": ("/v1/chat/completions", {"messages": [HI], "max_tokens": 3}, "data: [DONE]", 1),
    "completions": ("/v1/completions", {"prompt": "hi", "max_tokens": 3}, "data: [DONE]", 0),
    "responses": ("/v1/responses", {"input": "hi", "max_output_tokens": 3}, "event: response.", 4),
    "task": ("/v1/tasks/generate?stream=true", {"prompt": "hi", "max_tokens": 3}, "data: [DONE]", 0),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_waiting_stream_sends_keep_alive_comments_then_its_events(server, route):
    path, body, last, before_tokens = ROUTES[route]
    with held_prefill(server, 0.05) as gate:
        openai_body = route != "task"  # a task's body is its inputs and options; it streams by ?stream=true
        conn, response = open_stream(
            server, path, {"model": model_id(server), "stream": True, **body} if openai_body else body
        )
        seen = []
        while seen.count(": keep-alive") < 3:  # while the prefill waits: comments, and no token yet
            seen.append(response.readline().decode().rstrip("\n"))
        assert len([line for line in seen if line.startswith("data: ")]) == before_tokens
        gate.set()
        rest = response.read().decode()
        conn.close()
    events = [e for e in rest.split("\n\n") if e.strip() and not e.startswith(":")]
    assert len(events) > 1 and events[-1].startswith(last)


def test_keep_alive_is_off_at_zero_and_the_sdk_reads_through_comments(client, server):
    with held_prefill(server, 0) as gate:
        body = {"model": model_id(server), "stream": True, **ROUTES["completions"][1]}
        conn, response = open_stream(server, "/v1/completions", body)
        threading.Timer(0.3, gate.set).start()
        assert ": keep-alive" not in response.read().decode()
        conn.close()
    asked = {"input": "the quick brown fox", "max_output_tokens": 8, "temperature": 0}
    quiet = stream_events(client, server, **asked)
    with held_prefill(server, 0.01) as gate:
        threading.Timer(0.3, gate.set).start()
        kept = stream_events(client, server, **asked)
    assert [e.type for e in kept] == [e.type for e in quiet]
    assert kept[-1].response.output_text == quiet[-1].response.output_text


def test_a_client_gone_during_keep_alives_frees_its_row(server):
    engine = server.service.engine
    before = engine.cancelled_rows
    with held_prefill(server, 0.02) as gate:
        body = {"model": model_id(server), "input": "hi", "max_output_tokens": 4000, "stream": True}
        conn, response = open_stream(server, "/v1/responses", body)
        while response.readline().decode().rstrip("\n") != ": keep-alive":
            pass
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        time.sleep(0.2)  # the server notices the disconnect while the prefill still waits
        gate.set()
    deadline = time.monotonic() + 20
    while (engine.cancelled_rows == before or engine.active) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.cancelled_rows == before + 1 and engine.active == 0


def test_serve_takes_a_keepalive_option(cli):
    result = cli(["serve", "--keepalive-s", "-1"])
    assert result.code != 0 and "--keepalive-s" in result.err
