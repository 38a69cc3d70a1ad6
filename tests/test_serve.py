"""`nlpsuite serve` on the tiny random model: the official `openai` client against a server started here on a
free loopback port, the task endpoints against the CLI's --json, continuous batching against one-at-a-time
decoding, disconnects, SIGTERM draining and the web page in a headless browser."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nlpsuite.runtime.sampling import SamplingParams

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.shared_cache

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key"
PICK = {"type": "object", "properties": {"colour": {"enum": ["red", "blue"]}}, "required": ["colour"],
        "additionalProperties": False}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haiku_registry():
    """The built-in plugins plus the example third-party package's module, registered through the public hook."""
    import importlib.util

    from nlpsuite import plugins

    spec = importlib.util.spec_from_file_location("nlpsuite_haiku", ROOT / "examples/nlpsuite-haiku/nlpsuite_haiku.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loader = plugins.PluginLoader()
    loader.load(include_entry_points=False)
    assert loader.add_module("nlpsuite-haiku", module).error is None
    return loader.registry


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_tiny_llama):
    """Room for the tasks' prompts (few-shot examples) in the context window."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-serve"), context=4096)


@pytest.fixture(scope="module")
def server(tiny, tiny_cache):
    """A server in this process (one model load for the module), with an API key and small limits."""
    import uvicorn

    from nlpsuite.api import Suite
    from nlpsuite.serve.app import ServeConfig, Service, create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NLPSUITE_HOME", str(tiny_cache))
        registry = haiku_registry()
        config = ServeConfig(api_key=KEY, max_batch=8, max_queue=32, max_body=256 * 1024)
        service = Service(
            config, lambda decoder: Suite(model=str(tiny), device="cpu", plugins=registry, decoder=decoder)
        )
        port = free_port()
        uv = uvicorn.Server(uvicorn.Config(create_app(service), "127.0.0.1", port, log_level="warning"))
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        wait_healthy(port, 60)
        yield types.SimpleNamespace(port=port, service=service, suite=service.suite, url=f"http://127.0.0.1:{port}")
        uv.should_exit = True
        thread.join(timeout=15)


def wait_healthy(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, _ = request(port, "GET", "/health")
            if status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the server on port {port} did not become ready in {seconds} s")


def request(port: int, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """(status, parsed JSON or text) of one plain HTTP request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, data, sent)
        response = conn.getresponse()
        text = response.read().decode()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text
    finally:
        conn.close()


def authed(**extra) -> dict:
    return {"Authorization": f"Bearer {KEY}", **extra}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)


def alone(suite, prompt_ids: list[int], **sampling):
    """What the CLI's decoding loop gives for one prompt on its own (the server's tasks decode in its batch)."""
    from nlpsuite.runtime.generation import Generator

    return Generator(suite.backbone, suite.tokenizer).generate([prompt_ids], SamplingParams(**sampling))[0]


def model_id(server) -> str:
    return server.service.model_id


# -- continuous batching in the runtime ------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 7}])
def test_rows_joining_and_leaving_a_batch_decode_what_they_decode_alone(server, sampling):
    from nlpsuite.runtime.batching import DecodeBatch

    suite = server.suite
    texts = ["hello world", "the quick brown fox jumps over the lazy dog and", "a", "numbers like 1 2", "café 東京"]
    prompts = [suite.tokenizer.encode(t) for t in texts]
    lengths = [40, 12, 25, 40, 9]
    expected = [alone(suite, p, max_tokens=n, **sampling) for p, n in zip(prompts, lengths, strict=True)]
    batch = DecodeBatch(suite.backbone, suite.tokenizer, serving=True)  # as the engine steps it
    rows = [batch.sequence(p, SamplingParams(max_tokens=n, **sampling)) for p, n in zip(prompts, lengths, strict=True)]
    most = 0
    batch.add(rows[:2])  # prefilled together, left-padded
    for i, row in enumerate(rows[2:], start=2):  # each joins a batch already decoding, longer and shorter
        batch.add([row])
        for _ in range(i + 2):
            batch.step()
            most = max(most, len(batch.rows))
    while batch.size:
        batch.step()
    assert most >= 3
    for want, row in zip(expected, rows, strict=True):
        got = row.completion()
        assert (got.token_ids, got.text, got.finish_reason) == (want.token_ids, want.text, want.finish_reason)


def test_a_removed_row_leaves_the_others_untouched(server):
    from nlpsuite.runtime.batching import DecodeBatch

    suite = server.suite
    prompts = [suite.tokenizer.encode(t) for t in ["a small model speaks", "hello", "the lazy dog"]]
    expected = [alone(suite, p, max_tokens=20, temperature=1.0, seed=3) for p in prompts]
    batch = DecodeBatch(suite.backbone, suite.tokenizer, serving=True)  # as the engine steps it
    rows = [batch.sequence(p, SamplingParams(max_tokens=20, temperature=1.0, seed=3)) for p in prompts]
    batch.add(rows)
    batch.step()
    batch.remove(rows[0])  # the longest prompt leaves: its padding columns go too
    assert batch.mask.shape[1] == max(len(p) for p in prompts[1:]) + 1
    while batch.size:
        batch.step()
    assert [r.completion().token_ids for r in rows[1:]] == [e.token_ids for e in expected[1:]]


# -- the OpenAI API, through the official client ------------------------------------------------------------------


def test_models_lists_the_loaded_model(client, server):
    assert [m.id for m in client.models.list().data] == [model_id(server)]


def test_chat_completion_is_what_the_decoding_loop_gives(client, server):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]
    reply = client.chat.completions.create(model=model_id(server), messages=messages, max_tokens=12, temperature=0)
    ids = server.suite.head("generation").encode_chat(messages)
    want = alone(server.suite, ids, max_tokens=12)
    assert reply.choices[0].message.content == want.text and reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == ("length" if want.finish_reason == "length" else "stop")
    assert reply.usage.prompt_tokens == len(ids) and reply.usage.completion_tokens == len(want.token_ids)
    assert reply.object == "chat.completion" and reply.model == model_id(server)


def test_chat_stream_with_usage_ends_with_a_usage_chunk_and_done(client, server):
    kwargs = {"model": model_id(server), "messages": [{"role": "user", "content": "the quick brown fox"}]}
    whole = client.chat.completions.create(**kwargs, max_completion_tokens=15, temperature=0, seed=1)
    chunks = list(
        client.chat.completions.create(
            **kwargs, max_completion_tokens=15, temperature=0, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_the_stream_ends_with_done_on_the_wire(server):
    body = {"model": model_id(server), "prompt": "hello", "max_tokens": 5, "stream": True}
    status, text = request(server.port, "POST", "/v1/completions", body, authed())
    events = [e for e in text.split("\n\n") if e]
    assert status == 200 and events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)


def test_completions_from_text_and_token_ids(client, server):
    suite = server.suite
    ids = suite.tokenizer.encode("numbers like 1 2 3", add_special_tokens=True)
    want = alone(suite, ids, max_tokens=10)
    by_text = client.completions.create(
        model=model_id(server), prompt="numbers like 1 2 3", max_tokens=10, temperature=0
    )
    by_ids = client.completions.create(model=model_id(server), prompt=ids, max_tokens=10, temperature=0)
    assert by_text.choices[0].text == by_ids.choices[0].text == want.text
    streamed = client.completions.create(
        model=model_id(server), prompt=["numbers like 1 2 3", "hello"], max_tokens=10, temperature=0, stream=True
    )
    parts = {0: "", 1: ""}
    for chunk in streamed:
        parts[chunk.choices[0].index] += chunk.choices[0].text
    assert parts[0] == want.text and parts[1] == alone(suite, suite.tokenizer.encode("hello"), max_tokens=10).text


def test_embeddings_float_and_base64_are_the_embedding_heads_vectors(client, server):
    texts = ["the quick brown fox", "hello world"]
    want = server.suite.head("embedding")(texts)
    as_floats = client.embeddings.create(model=model_id(server), input=texts, encoding_format="float")
    np.testing.assert_allclose([d.embedding for d in as_floats.data], want, atol=1e-5)
    default = client.embeddings.create(model=model_id(server), input=texts[0])  # the SDK asks for base64
    np.testing.assert_allclose(default.data[0].embedding, want[0], atol=1e-5)
    status, raw = request(
        server.port, "POST", "/v1/embeddings",
        {"model": model_id(server), "input": [texts[1]], "encoding_format": "base64"}, authed(),
    )  # fmt: skip
    assert status == 200
    np.testing.assert_allclose(np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), "<f4"), want[1], atol=1e-5)
    ids = server.suite.tokenizer.encode(texts[0], add_special_tokens=False)
    by_ids = client.embeddings.create(model=model_id(server), input=[ids], encoding_format="float")
    np.testing.assert_allclose(by_ids.data[0].embedding, want[0], atol=1e-5)
    assert as_floats.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 17}, "n"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"temperature": -1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
    ],
)
def test_bad_requests_are_400_with_the_field_named(client, server, extra, param):
    kwargs = {"model": model_id(server), "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**kwargs)
    assert caught.value.status_code == 400 and caught.value.body["param"] == param


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        ({"messages": "hi"}, "messages", "messages must be a list"),
        ({"messages": []}, "messages", "messages must hold at least 1 item(s)"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages",
         "messages[0].content must be a string or a list of text parts"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages",
         "messages[0].content[0].text must be a string"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages",
         "only text content parts are supported"),
        ({"max_tokens": "10"}, "max_tokens", "max_tokens must be a whole number"),
        ({"max_tokens": 2.5}, "max_tokens", "max_tokens must be a whole number"),
        ({"max_tokens": True}, "max_tokens", "max_tokens must be a whole number"),
        ({"max_tokens": 3, "max_completion_tokens": 4}, "max_tokens", "not both"),
        ({"temperature": "hot"}, "temperature", "temperature must be a number"),
        ({"temperature": 101}, "temperature", "temperature must be between 0 and 100"),
        ({"temperature": 0.00001}, "temperature", "temperature must be 0 (greedy) or between 0.0001 and 100"),
        ({"top_p": 0}, "top_p", "top_p must be in (0, 1]"),
        ({"top_k": -1}, "top_k", "top_k must be at least 0"),
        ({"stream": "yes"}, "stream", "stream must be true or false"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "only allowed with stream: true"),
        ({"stop": 5}, "stop", "stop must be a string or a list of strings"),
        ({"stop": ["x"] * 17}, "stop", "at most 16"),
        ({"seed": 1.5}, "seed", "seed must be a whole number"),
        ({"top_p": [1]}, "top_p", "top_p must be a number"),
        ({"model": 7}, "model", "model must be a string"),
        ({"model": ""}, "model", "'model' is required"),
        ({"foo": 1}, "foo", "'foo' is not supported by this server"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "'frequency_penalty' is not supported by this server"),
    ],
)  # fmt: skip
def test_malformed_fields_are_400s_naming_the_field(server, extra, param, message):
    body = {"model": model_id(server), "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}
    status, answer = request(server.port, "POST", "/v1/chat/completions", body, authed())
    assert status == 400, answer
    error = answer["error"]
    assert error["param"] == param and message in error["message"], error
    assert error["type"] == "invalid_request_error" and "\n" not in error["message"]
    if extra.keys() == {param} and param in ("foo", "frequency_penalty"):
        assert error["code"] == "unsupported_parameter"


def test_nulls_are_absent_and_neutral_values_pass_on_raw_http(server):
    parts = [{"type": "text", "text": "h"}, {"type": "text", "text": "i"}]
    messages = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": parts}]
    body = {"model": model_id(server), "messages": messages, "max_tokens": 2, "temperature": None, "stop": None,
            "frequency_penalty": 0, "n": 1, "user": "u"}  # fmt: skip
    status, answer = request(server.port, "POST", "/v1/chat/completions", body, authed())
    assert status == 200 and answer["choices"][0]["finish_reason"] in ("stop", "length")


def test_neutral_values_of_unsupported_fields_are_accepted(client, server):
    reply = client.chat.completions.create(
        model=model_id(server), messages=[{"role": "user", "content": "hi"}], max_tokens=3, temperature=0,
        n=1, presence_penalty=0, frequency_penalty=0.0, logprobs=False, user="someone",
    )  # fmt: skip
    assert reply.choices[0].message.content is not None
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=model_id(server), messages=[{"role": "user", "content": "hi"}], max_tokens=3, presence_penalty=0.5
        )
    assert caught.value.body["param"] == "presence_penalty"


def test_every_route_takes_the_request_then_the_models_generation_defaults_then_greedy(client, server, monkeypatch):
    """One precedence on /v1/chat/completions, /v1/completions and the tasks (as the CLI): what the request
    sets, else the model's generation_config, else the suite's built-in greedy decoding."""
    service, head = server.service, server.suite.head("generation")
    submitted = []
    submit = service.engine.submit
    monkeypatch.setattr(
        service.engine,
        "submit",
        lambda prompts, params, *rest: (  # a list: one per choice
            submitted.append(params[0] if isinstance(params, list) else params),
            submit(prompts, params, *rest),
        )[1],
    )
    monkeypatch.setattr(head, "defaults", {"temperature": 0.7, "top_k": 5, "top_p": 0.9})
    messages = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model=model_id(server), messages=messages, max_tokens=2, seed=1)
    client.completions.create(model=model_id(server), prompt="hi", max_tokens=2, seed=1, extra_body={"top_k": 3})
    request(server.port, "POST", "/v1/tasks/chat", {"messages": "hi", "max_tokens": 2, "seed": 1}, authed())
    chat, completion, task = ((p.temperature, p.top_k, p.top_p, p.repetition_penalty) for p in submitted)
    assert chat == task == (0.7, 5, 0.9, 1.0)
    assert completion == (0.7, 3, 0.9, 1.0)
    monkeypatch.setattr(head, "defaults", {})
    client.chat.completions.create(model=model_id(server), messages=messages, max_tokens=2)
    assert submitted[-1].temperature == 0.0  # greedy, as `nlpsuite chat` (no more OpenAI's temperature 1)


def test_error_statuses(client, server):
    port = server.port
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert request(port, "GET", "/v1/models")[0] == 401
    status, body = request(port, "POST", "/v1/embeddings", headers=authed(), raw=b"x" * (300 * 1024))
    assert status == 413 and body["error"]["code"] == "request_too_large"
    status, body = request(port, "POST", "/v1/embeddings", headers=authed(), raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    form = authed(**{"Content-Type": "application/x-www-form-urlencoded"})
    assert request(port, "POST", "/v1/embeddings", {"input": "x", "model": model_id(server)}, form)[0] == 400
    assert request(port, "GET", "/v1/nothing", headers=authed())[1]["error"]["message"] == "no route /v1/nothing"
    with pytest.raises(openai.BadRequestError, match="at most 32 prompts"):
        client.completions.create(model=model_id(server), prompt=["hi"] * 33, max_tokens=1)
    long_prompt = " ".join(f"w{i}" for i in range(3000))
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=model_id(server), prompt=long_prompt, max_tokens=4)
    assert caught.value.code == "context_length_exceeded"


def test_without_a_key_only_requests_that_name_loopback_get_in(server):
    server.service.config.api_key = None
    try:
        assert request(server.port, "GET", "/v1/models")[0] == 200
        assert request(server.port, "GET", "/v1/models", headers={"Host": f"localhost:{server.port}"})[0] == 200
        status, body = request(server.port, "GET", "/v1/models", headers={"Host": "attacker.example"})
        assert status == 403 and body["error"]["code"] == "host_not_allowed"
    finally:
        server.service.config.api_key = KEY


def test_a_full_queue_is_429_with_retry_after_and_loading_or_draining_is_503(server):
    service, body = server.service, {"model": model_id(server), "prompt": "hi", "max_tokens": 2}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    service.engine.max_queue = 0
    try:
        conn.request("POST", "/v1/completions", json.dumps(body), authed(**{"Content-Type": "application/json"}))
        response = conn.getresponse()
        assert response.status == 429 and response.getheader("Retry-After") == "1"
        assert json.loads(response.read())["error"]["code"] == "queue_full"
    finally:
        service.engine.max_queue = 32
        conn.close()
    for state in ("loading", "draining"):
        service.state = state
        try:
            status, answer = request(server.port, "POST", "/v1/completions", body, authed())
        finally:
            service.state = "ready"
        assert status == 503 and answer["error"]["code"] == state


def test_a_failure_mid_stream_is_an_error_event_and_the_server_goes_on(client, server, monkeypatch):
    from nlpsuite.errors import NlpsuiteError

    backbone, calls = server.suite.backbone, []
    forward = backbone.forward

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # the prefill and three decode steps go through, then the model breaks
            raise NlpsuiteError("the model gave non-finite numbers")
        return forward(*args, **kwargs)

    monkeypatch.setattr(backbone, "forward", failing)
    body = {"model": model_id(server), "prompt": "hello", "max_tokens": 50, "ignore_eos": True, "temperature": 0}
    status, text = request(server.port, "POST", "/v1/completions", {**body, "stream": True}, authed())
    events = [json.loads(e[6:]) for e in text.split("\n\n") if e.startswith("data: {")]
    assert status == 200 and events[-1]["error"]["message"] == "the model gave non-finite numbers"
    assert "[DONE]" not in text and len(events) >= 2  # text before the failure was sent (greedy: always the same)
    calls.clear()
    with pytest.raises(openai.APIError, match="non-finite"):
        kwargs = {"model": model_id(server), "prompt": "hi", "max_tokens": 50, "stream": True}
        list(client.completions.create(**kwargs, extra_body={"ignore_eos": True}))
    monkeypatch.undo()
    assert client.completions.create(model=model_id(server), prompt="hello", max_tokens=3).choices[0].text is not None
    assert server.service.engine.active == 0


# -- continuous batching through the server ---------------------------------------------------------------------


def test_concurrent_greedy_requests_get_what_they_get_one_at_a_time(client, server):
    suite = server.suite
    topics = ["hello world", "the lazy dog", "a small model", "numbers like 1 2 3", "café", "tiny test", "cat", "b"]
    lengths = [30, 7, 19, 25, 3, 30, 11, 16]
    messages = [[{"role": "user", "content": t}] for t in topics]
    gen = suite.head("generation")
    want = [alone(suite, gen.encode_chat(m), max_tokens=n).text for m, n in zip(messages, lengths, strict=True)]

    def ask(i: int) -> str:
        kwargs = {"model": model_id(server), "messages": messages[i], "max_tokens": lengths[i], "temperature": 0}
        if i % 2:
            return client.chat.completions.create(**kwargs).choices[0].message.content
        stream = client.chat.completions.create(**kwargs, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(len(topics)) as pool:
        got = list(pool.map(ask, range(len(topics))))
    assert got == want


def test_a_repeated_prefix_is_served_from_the_prompt_cache_and_the_usage_says_so(client, server):
    system = "a small model speaks in short sentences; numbers like 1 2 3 and words like cat dog bird. " * 2
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "the quick brown fox"}]
    kwargs = {"model": model_id(server), "messages": messages, "max_tokens": 12, "temperature": 0}
    ids = server.suite.head("generation").encode_chat(messages)
    reusable = (len(ids) - 1) // 16 * 16  # whole blocks, and the last prompt token is always fed
    first = client.chat.completions.create(**kwargs)
    again = client.chat.completions.create(**kwargs)
    assert first.usage.prompt_tokens_details.cached_tokens <= reusable
    assert again.usage.prompt_tokens_details.cached_tokens == reusable > 0
    want = alone(server.suite, ids, max_tokens=12).text  # no cache there
    assert first.choices[0].message.content == again.choices[0].message.content == want
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == reusable
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want
    text = "the lazy dog and the quick brown fox " * 4
    client.completions.create(model=model_id(server), prompt=text, max_tokens=2)
    done = client.completions.create(model=model_id(server), prompt=text, max_tokens=2)
    assert done.usage.prompt_tokens_details.cached_tokens == (done.usage.prompt_tokens - 1) // 16 * 16 > 0


def test_task_calls_in_the_server_draft_from_their_prompts(server):
    """The server's decoder (its engine) drafts as the CLI's does, and greedy output stays what it is alone."""
    suite = server.suite
    prompt = suite.tokenizer.encode("the quick brown fox jumps over the lazy dog the quick brown fox")
    params = SamplingParams(max_tokens=30, ignore_eos=True)
    done = suite.decoder.generate([prompt], params)[0]
    assert done.accepted_tokens > 0
    assert done.token_ids == alone(suite, prompt, max_tokens=30, ignore_eos=True, draft=False).token_ids


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_frees_its_slot(server, stream):
    engine = server.service.engine
    before = engine.cancelled_rows
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = {"model": model_id(server), "prompt": "hello", "max_tokens": 4000, "ignore_eos": True, "stream": stream}
    conn.request("POST", "/v1/completions", json.dumps(body), authed(**{"Content-Type": "application/json"}))
    if stream:
        response = conn.getresponse()
        assert response.status == 200 and response.readline().startswith(b"data: ")
    else:
        deadline = time.monotonic() + 20
        while engine.active == 0 and time.monotonic() < deadline:  # decoding, not just sent
            time.sleep(0.01)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.monotonic() + 20
    while engine.cancelled_rows == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.cancelled_rows == before + 1 and engine.active == 0


def test_no_request_is_lost_or_duplicated_when_clients_come_and_go(client, server):
    """16 clients, 3 requests each, a third of them abandoned after their first chunk: every finished one is
    exactly what it decodes alone, and nothing is left decoding."""
    suite, gen = server.suite, server.suite.head("generation")
    topics = [f"tiny test {i} cat dog" for i in range(16)]
    want = {t: alone(suite, gen.encode_chat([{"role": "user", "content": t}]), max_tokens=24).text for t in topics}

    def clientele(i: int) -> list[str]:
        got = []
        for round_ in range(3):
            kwargs = {"model": model_id(server), "max_tokens": 24, "temperature": 0, "stream": True}
            stream = client.chat.completions.create(messages=[{"role": "user", "content": topics[i]}], **kwargs)
            if (i + round_) % 3 == 0:
                next(iter(stream))
                stream.close()  # abandoned mid-stream
                continue
            got.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        return got

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(clientele, range(16)))
    assert all(texts == [want[topics[i]]] * len(texts) for i, texts in enumerate(results))
    assert sum(map(len, results)) == 32
    deadline = time.monotonic() + 20
    while (server.service.engine.active or server.service.engine.waiting) and time.monotonic() < deadline:
        time.sleep(0.05)
    status, health = request(server.port, "GET", "/health")
    assert status == 200 and {**health, "status": "ready", "decoding": 0, "waiting": 0} == health
    assert health["prefilled_tokens"] > 0 and health["passes"] > 0


# -- task endpoints, generated from the declarations --------------------------------------------------------------


def test_tasks_are_listed_with_their_declarations(server):
    status, body = request(server.port, "GET", "/v1/tasks", headers=authed())
    tasks = {t["name"]: t for t in body["data"]}
    assert status == 200 and set(tasks) == set(server.suite.registry.tasks)
    built_in = {"translate", "summarize", "ask", "sentiment", "classify", "search", "chat", "generate"}
    assert built_in | {"haiku"} <= set(tasks)
    haiku = tasks["haiku"]
    assert [i["name"] for i in haiku["inputs"]] == ["topic"] and haiku["value"] == "haiku"
    temperature = next(o for o in haiku["options"] if o["name"] == "temperature")
    assert temperature == {**temperature, "type": "number", "default": None, "min": 0, "max": 100}


@pytest.fixture
def cli_with_haiku(cli, monkeypatch, server):
    from nlpsuite import plugins

    monkeypatch.setattr(plugins, "_REGISTRY", server.suite.registry)
    return cli


@pytest.mark.parametrize(
    ("task", "body", "args"),
    [
        ("haiku", {"topic": "autumn rain", "max_tokens": 6}, ["autumn rain", "-n", "6"]),
        ("sentiment", {"text": "a lovely day"}, ["a lovely day"]),
        ("classify", {"text": "the cat sat", "labels": ["animals", "sports"]}, ["the cat sat", "-l", "animals,sports"]),
        ("ask", {"question": "Who built it?", "context": "Gustave Eiffel built it."},
         ["Who built it?", "--context", "Gustave Eiffel built it."]),
        ("translate", {"text": "hello", "to": "de", "source": "en"}, ["hello", "--to", "de", "--from", "en"]),
        ("extract", {"text": "Ana is calm.", "schema": PICK}, ["Ana is calm.", "--schema", json.dumps(PICK)]),
        ("generate", {"prompt": "hi", "schema": PICK, "max_tokens": 60},
         ["hi", "--schema", json.dumps(PICK), "-n", "60"]),
    ],
)  # fmt: skip
def test_a_task_answers_what_its_cli_json_prints(server, cli_with_haiku, tiny, task, body, args):
    status, answer = request(server.port, "POST", f"/v1/tasks/{task}", body, authed())
    assert status == 200, answer
    printed = cli_with_haiku([task, *args, "--json", "--model", str(tiny), "--device", "cpu", "--quiet"])
    assert printed.code == 0, printed.err
    printed = json.loads(printed.out)
    if task == "generate":  # its timings differ from run to run
        answer, printed = ({k: r[k] for k in ("text", "parsed", "finish_reason")} for r in (answer, printed))
    assert answer == printed
    if "schema" in body:  # an object given over HTTP, JSON text on the command line: the same schema
        assert answer.get("data", answer.get("parsed")) in ({"colour": "red"}, {"colour": "blue"})


def test_every_task_answers_and_a_list_in_gives_a_list_out(server, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("The Eiffel Tower is in Paris.\n\nThe quick brown fox jumps over the lazy dog.\n", encoding="utf-8")
    server.suite.index("serve-docs", [str(docs)])
    status, indexes = request(server.port, "GET", "/v1/indexes", headers=authed())
    listed = {i["name"]: i for i in indexes["data"]}
    assert status == 200 and listed["serve-docs"]["documents"] == 1 and listed["serve-docs"]["passages"] >= 1
    bodies = {
        "translate": {"text": ["hello", "good night"], "to": "fr"},
        "summarize": {"text": ["a small model speaks in short sentences"], "max_words": 5},
        "ask": {"question": ["Where is it?", "What jumps?"], "context": "The tower is in Paris."},
        "sentiment": {"text": ["good", "bad", "fine"]},
        "classify": {"text": ["x y"], "labels": "alpha,beta"},
        "search": {"query": ["Eiffel Tower", "fox"], "name": "serve-docs", "k": 1},
        "chat": {"messages": [[{"role": "user", "content": "hi"}]], "max_tokens": 3},
        "generate": {"prompt": ["hello", "world"], "max_tokens": 3},
        "extract": {"text": ["Ana is calm.", "Bo"], "schema": PICK},
        "haiku": {"topic": ["snow", "sea"], "max_tokens": 4},
        "rerank": {"query": ["cat", "dog"], "documents": [["a cat", "a dog"], ["the dog", "東京"]]},  # one list each
    }
    for task in server.suite.registry.tasks:
        body = bodies[task]
        status, answer = request(server.port, "POST", f"/v1/tasks/{task}", body, authed())
        first = next(iter(body.values()))
        assert status == 200 and isinstance(answer, list) and len(answer) == len(first), (task, answer)
    status, found = request(
        server.port, "POST", "/v1/tasks/search", {"query": "Eiffel", "name": "serve-docs"}, authed()
    )
    assert status == 200 and found["results"][0]["text"].startswith("The Eiffel Tower")


def test_a_streaming_task_sends_its_text_then_the_result(server):
    body = {"prompt": ["hello", "the lazy dog"], "max_tokens": 12, "ignore_eos": True}
    status, text = request(server.port, "POST", "/v1/tasks/generate?stream=true", body, authed())
    events = [e[6:] for e in text.split("\n\n") if e.startswith("data: ")]
    assert status == 200 and events[-1] == "[DONE]"
    result = json.loads(events[-2])["result"]
    deltas = [json.loads(e) for e in events[:-2]]
    for index, row in enumerate(result):
        assert "".join(d["delta"] for d in deltas if d["index"] == index) == row["text"]
        assert row["usage"]["completion_tokens"] == 12
    status, answer = request(server.port, "POST", "/v1/tasks/sentiment?stream=true", {"text": "x"}, authed())
    assert status == 400 and answer["error"]["param"] == "stream"


@pytest.mark.parametrize(
    ("task", "body", "status", "message"),
    [
        ("haiku", {"topic": "x", "temperature": -1}, 400, "temperature must be between 0 and 100"),
        ("haiku", {"topic": "  "}, 400, "empty topic"),
        ("haiku", {"topic": "x", "colour": "red"}, 400, "haiku has no option 'colour'"),
        ("haiku", {}, 400, "missing 'topic'"),
        ("search", {"query": "x", "name": "no-such-index"}, 400, "no-such-index"),
        ("search", {"query": "x", "k": 0, "name": "i"}, 400, "k must be at least 1"),
        ("nope", {"text": "x"}, 404, "no task named 'nope'"),
    ],
)
def test_bad_task_requests_are_4xx_in_the_apis_words(server, task, body, status, message):
    got, answer = request(server.port, "POST", f"/v1/tasks/{task}", body, authed())
    assert got == status and message in answer["error"]["message"], answer


@pytest.mark.parametrize("messages", [[], "  ", [{"role": "user"}], [{"role": "user", "content": 3}], 7])
def test_a_bad_conversation_means_the_same_in_python_and_over_http(server, messages):
    from nlpsuite.errors import NlpsuiteError

    status, answer = request(server.port, "POST", "/v1/tasks/chat", {"messages": messages}, authed())
    with pytest.raises(NlpsuiteError) as refused:
        server.suite.run("chat", messages, max_tokens=2)
    assert status == 400 and answer["error"]["message"] == str(refused.value)


def test_later_inputs_mean_the_same_in_python_and_over_http(server):
    body = {"question": ["Who?", "Where?"], "context": ["Ann met Bob.", "It was in Paris."]}
    status, answer = request(server.port, "POST", "/v1/tasks/ask", body, authed())
    assert status == 200
    same = server.suite.run("ask", body["question"], context=body["context"])
    assert [r["answer"] for r in answer] == [r["answer"] for r in same]


# -- the command: exposure, SIGTERM draining, JSON logs -------------------------------------------------------


def test_a_keyless_server_off_loopback_is_refused(cli, monkeypatch):
    monkeypatch.delenv("NLPSUITE_API_KEY", raising=False)
    got = cli(["serve", "--host", "0.0.0.0"])
    assert got.code == 1 and "give --api-key" in got.err and "--insecure" in got.err


@pytest.mark.parametrize("flag", [["--cache-mb", "-1"], ["--prefill-chunk", "0"]])
def test_a_bad_cache_budget_or_prefill_chunk_is_refused_in_one_line(cli, tiny, flag):
    for command in (["serve", *flag], ["chat", *flag, "--model", str(tiny), "--device", "cpu"]):
        got = cli(command, stdin=b"")
        assert got.code == 1 and got.err.count("\n") == 1 and flag[0] in got.err, (command, got.err)


def test_sigterm_finishes_the_stream_in_flight_then_exits_0(tiny, tiny_cache, server):
    port = free_port()
    env = {**os.environ, "NLPSUITE_HOME": str(tiny_cache), "PYTHONUNBUFFERED": "1"}
    env.pop("NLPSUITE_API_KEY", None)
    args = [sys.executable, "-m", "nlpsuite", "serve", "--model", str(tiny), "--device", "cpu", "--port", str(port)]
    proc = subprocess.Popen([*args, "--json", "--drain-seconds", "20"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(port, 90)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = {"model": str(tiny), "prompt": "hello", "max_tokens": 400, "ignore_eos": True, "stream": True}
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.readline().startswith(b"data: ")
        proc.send_signal(signal.SIGTERM)
        rest = response.read().decode()
        assert rest.rstrip().endswith("data: [DONE]")
        finishes = [json.loads(e[6:])["choices"][0]["finish_reason"] for e in rest.split("\n\n") if e[6:7] == "{"]
        assert finishes[-1] == "length"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    assert any(r["message"].startswith("draining") for r in logs)
    assert any(r.get("path") == "/v1/completions" and r.get("status") == 200 for r in logs)


# -- the web page in a real browser ---------------------------------------------------------------------------


def test_models_says_what_unset_sampling_settings_become(server, monkeypatch):
    """The page's chat starts from these (the CLI's defaults): the model's generation defaults, else greedy."""
    entry = request(server.port, "GET", "/v1/models", headers=authed())[1]["data"][0]
    assert entry["sampling_defaults"] == {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}
    monkeypatch.setattr(server.suite.head("generation"), "defaults", {"temperature": 0.6, "top_p": 0.9})
    entry = request(server.port, "GET", "/v1/models", headers=authed())[1]["data"][0]
    assert entry["sampling_defaults"] == {"temperature": 0.6, "top_k": 0, "top_p": 0.9, "repetition_penalty": 1.0}


def test_tasks_describe_what_the_page_shows_in_plain_words(server):
    """Labels (declared, else the name in words), display hints and how a list is given."""
    status, listed = request(server.port, "GET", "/v1/tasks", headers=authed())
    tasks = {t["name"]: t for t in listed["data"]}
    options = {t: {o["name"]: o for o in tasks[t]["options"]} for t in tasks}
    assert options["translate"]["source"]["label"] == "From language"
    assert options["generate"]["max_tokens"]["label"] == "Max tokens"
    assert tasks["ask"]["inputs"][1]["label"] == "Context"
    assert [tasks[t]["display"] for t in ("translate", "summarize", "ask", "sentiment", "haiku")] == [
        "beside", "beside", "span", None, None]  # fmt: skip
    assert options["generate"]["stop"]["separator"] is None and options["classify"]["labels"]["separator"] == ","
    words = json.dumps(listed)
    assert not re.search(r"--[a-z]|TEXT\|FILE|- for stdin", words), "CLI wording in what the page shows"


def test_the_web_page_draws_each_result_for_a_person_at_two_widths(server, tmp_path):
    """Chat (roles, greedy like the CLI, Stop) and every task's form in headless chromium at a laptop's and a
    phone's width; each drawn result is checked against the API's answer to the same request."""
    from browser import WIDTHS, page

    docs = tmp_path / "docs.txt"
    docs.write_text("The Eiffel Tower is in Paris.\n\nThe quick brown fox jumps over the lazy dog.\n", encoding="utf-8")
    server.suite.index("page-docs", [str(docs)])
    with page(server.url + "/", KEY) as p:
        for width in WIDTHS:
            p.load(width)
            _page_chats(p, server)
            p.screenshot(tmp_path / f"page-chat-{width}.png")
            _page_draws_labels_and_text(p, server, tmp_path, width)
            _page_draws_answers_and_lists(p, server, tmp_path, width)
            _page_draws_any_tasks_result_by_its_shape(p)
            words = p.text(p.one("main")) + p.one("#message").get_attribute("placeholder")
            assert not re.search(r"--[a-z]|TEXT\|FILE|- for stdin", words), "CLI wording on the page"
            assert not p.overflows(), f"the page is wider than {width} px"
            # No 404 (a favicon), no refused script or style; the 401 is the page's first call, made before its key
            assert [e for e in p.console_errors() if "401 (Unauthorized)" not in e] == []
            assert (tmp_path / f"page-ask-{width}.png").stat().st_size > 10_000


def _api(server, task: str, body: dict):
    status, answer = request(server.port, "POST", f"/v1/tasks/{task}", body, authed())
    assert status == 200, answer
    return answer


def _page_chats(p, server):
    reply = p.until_class(p.say("hello world"), "done")
    ids = server.suite.head("generation").encode_chat([{"role": "user", "content": "hello world"}])
    chat = next(t for t in server.suite.registry.tasks.values() if t.inputs[0].messages)
    greedy = alone(server.suite, ids, max_tokens=chat.option("max_tokens").default).text  # the CLI's defaults
    assert p.text(p.one(".text", reply)) == greedy
    assert [p.text(r) for r in p.all("#log .role")] == ["You", "Assistant"]
    assert p.one("#chat-temperature").get_attribute("value") == "0"  # shown as it is: greedy
    # Stop: a reply that would run for a minute ends at once, in the page and on the server. Sampled (the tiny
    # model's greedy text soon loops, which ends a reply) and slowed down (it writes thousands of tokens a second).
    p.fill(p.one("#chat-settings"), {"max_tokens": 3000, "ignore_eos": True, "temperature": 1, "seed": 1})
    cancelled, batch = server.service.engine.cancelled_rows, server.service.engine.batch
    step = batch.step
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "step", lambda *a, **k: time.sleep(0.02) or step(*a, **k))
        _stop(p, server, cancelled)


def _stop(p, server, cancelled: int) -> None:
    reply = p.say("tell me a very long story")
    p.wait.until(lambda d: p.text(p.one(".text", reply)))
    p.one("#stop").click()
    p.until_class(reply, "stopped")
    assert p.one("#send").is_displayed() and not p.one("#stop").is_displayed()
    assert p.text(p.one(".note", reply)) == "Stopped."
    p.wait.until(lambda d: server.service.engine.cancelled_rows > cancelled)  # the server stopped decoding it


def _bars(p, result) -> dict:
    """{label: (the width of its bar in %, whether it is the chosen one)} as drawn."""
    drawn = {}
    for row in p.all(".bar-row", result):
        width = float(p.one(".bar > span", row).value_of_css_property("width").removesuffix("px"))
        whole = float(p.one(".bar", row).value_of_css_property("width").removesuffix("px"))
        drawn[row.get_attribute("data-name")] = (100 * width / whole, "chosen" in row.get_attribute("class"))
    return drawn


def _page_draws_labels_and_text(p, server, tmp_path, width):
    labelled = {"sentiment": {"text": "a lovely day"}, "classify": {"text": "the cat sat", "labels": "animals, sports"}}
    for task, body in labelled.items():
        want = _api(server, task, body)
        drawn = _bars(p, p.run(task, body))
        assert set(drawn) == set(want["scores"])
        for label, (percent, chosen) in drawn.items():
            assert percent == pytest.approx(100 * want["scores"][label], abs=1.0) and chosen == (label == want["label"])
    p.screenshot(tmp_path / f"page-classify-{width}.png")
    body = {"text": "hello there", "to": "de"}
    want = _api(server, "translate", body)
    result = p.run("translate", body)
    source, translation = p.all(".beside .output-text", result)
    assert (p.text(source), p.text(translation)) == ("hello there", want["translation"])
    assert p.text(p.one("label[for='task-translate-source']")) == "From language"
    p.screenshot(tmp_path / f"page-translate-{width}.png")
    body = {"prompt": "hello world", "max_tokens": 6, "ignore_eos": True}
    want = _api(server, "generate", body)
    result = p.run("generate", body)
    assert p.text(p.one(".output-text", result)) == want["text"]
    assert "Completion tokens: 6" in p.text(p.one(".chips", result))
    body = {"topic": "autumn rain", "max_tokens": 5}  # a third party's task: drawn from its declaration alone
    want = _api(server, "haiku", body)
    result = p.run("haiku", body)
    assert p.text(p.one(".output-text", result)) == want["haiku"]
    assert json.loads(p.text(p.one("#task-haiku details.raw pre"))) == want  # for developers


def _page_draws_answers_and_lists(p, server, tmp_path, width):
    context = "Gustave Eiffel built the tower in 1889 for the World's Fair in Paris."
    body = {"question": "Who built the tower?", "context": context}
    want = _api(server, "ask", body)
    result = p.run("ask", body)
    if want["answer"] is None:
        assert p.text(p.one(".answer.none", result)).startswith("No answer")
    else:  # the answer, and the same words marked where they stand in the context
        assert p.text(p.one(".answer", result)) == want["answer"]
        assert p.text(p.one(".context mark", result)) == context[want["start"] : want["end"]]
        assert p.text(p.one(".context", result)) == context
    p.screenshot(tmp_path / f"page-ask-{width}.png")
    body = {"query": "Eiffel Tower", "name": "page-docs", "k": 2}
    want = _api(server, "search", body)
    hits = p.all(".rows > li", p.run("search", body))
    assert [p.text(p.one(".body", hit)) for hit in hits] == [r["text"] for r in want["results"]]
    assert [p.text(p.one(".title", hit)) for hit in hits] == [r["source"] for r in want["results"]]
    assert all(p.all(".bar-row", hit) for hit in hits)  # each hit's score as a bar
    body = {"query": "Where is the tower?", "documents": "Bananas are yellow.\nThe Eiffel Tower is in Paris."}
    want = _api(server, "rerank", body)
    hits = p.all(".rows > li", p.run("rerank", body))  # the documents as a person types them: one a line
    assert [p.text(p.one(".body", hit)) for hit in hits] == [r["document"]["text"] for r in want["results"]]
    assert [p.text(p.one(".bar-row .name", hit)) for hit in hits] == ["Relevance score"] * 2


def _page_draws_any_tasks_result_by_its_shape(p):
    """Shapes no task here gives: a task's object as a table of fields (extract), records with a nested text and a
    score as a ranked list with bars (rerank); drawn from a declaration alone, as for any third-party task."""
    draw = """const box = document.createElement("div");
        box.append(...render(...arguments[0].map((a) => JSON.parse(a))));
        const all = (css) => [...box.querySelectorAll(css)].map((e) => e.textContent);
        return {th: all("th"), td: all("td"), chips: all(".chips > span"), bodies: all(".rows .body"),
                bars: all(".bar-row .name")};"""

    def drawn(*args):  # as JSON text: the fields' order is kept
        return p.driver.execute_script(draw, [json.dumps(a) for a in args])

    task = {"name": "fields", "inputs": [{"name": "text"}], "output": ["data", "finish_reason"], "value": "data"}
    result = {"data": {"name": "Ada Lovelace", "born": 1815, "languages": ["en", "fr"]}, "finish_reason": "stop"}
    got = drawn(task, result, {"text": "Ada Lovelace, born 1815, wrote English and French."})
    assert got["th"] == ["Name", "Born", "Languages"] and got["td"] == ["Ada Lovelace", "1815", "en, fr"]
    assert got["chips"] == ["Finish reason: stop"]
    task = {"name": "ranked", "inputs": [{"name": "query"}], "output": ["results"], "value": "results"}
    ranked = [{"index": 1, "relevance_score": 0.91, "document": {"text": "Paris is in France."}},
              {"index": 0, "relevance_score": 0.12, "document": {"text": "Bananas are yellow."}}]  # fmt: skip
    got = drawn(task, {"query": "France", "results": ranked}, {"query": "France"})
    assert got["bodies"] == ["Paris is in France.", "Bananas are yellow."]
    assert got["bars"] == ["Relevance score", "Relevance score"] and got["chips"] == ["Index: 1", "Index: 0"]


# -- edge inputs and resources (fault matrix 2) ---------------------------------------------------------------


def test_json_nested_deeper_than_python_recurses_is_400_invalid_json(server):
    status, body = request(server.port, "POST", "/v1/chat/completions", headers=authed(),
                           raw=b"[" * 100_000 + b"]" * 100_000)  # fmt: skip
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert request(server.port, "GET", "/health")[0] == 200


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/chat/completions",
         '{"model": "M", "max_tokens": 4, "messages": [{"role": "user", "content": "a\\ud800"}]}',
         "messages[0].content"),
        ("/v1/chat/completions",
         '{"model": "M", "stream": true, "messages": [{"role": "user", "content": "\\udfff"}]}', "messages[0].content"),
        ("/v1/completions", '{"model": "M", "max_tokens": 2, "prompt": "x\\ud800"}', "prompt"),
        ("/v1/embeddings", '{"model": "M", "input": ["fine", "\\ud800"]}', "input[1]"),
        ("/v1/tasks/sentiment", '{"text": "good \\ud800"}', "text"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_400_naming_the_field_on_every_route(server, path, body, field):
    status, answer = request(
        server.port, "POST", path, headers=authed(), raw=body.replace("M", model_id(server)).encode()
    )
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_text" and answer["error"]["message"].startswith(f"{field} holds a lone")
    paired = '{"text": "\\ud83d\\ude00 great"}'  # a surrogate pair is an emoji: text
    assert request(server.port, "POST", "/v1/tasks/sentiment", headers=authed(), raw=paired.encode())[0] == 200


def test_without_a_key_the_loopback_address_it_was_told_to_bind_gets_in(server):
    config = server.service.config
    config.api_key, config.host = None, "127.0.0.2"
    try:
        assert request(server.port, "GET", "/v1/models", headers={"Host": f"127.0.0.2:{server.port}"})[0] == 200
        status, body = request(server.port, "GET", "/v1/models", headers={"Host": f"127.0.0.3:{server.port}"})
        assert status == 403 and body["error"]["code"] == "host_not_allowed"
    finally:
        config.api_key, config.host = KEY, "127.0.0.1"


def test_a_busy_port_is_one_line_before_the_model_loads(cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        got = cli(["serve", "--port", str(port), "--model", "no-such-model-is-ever-loaded"])
    assert got.code == 1
    assert got.err.strip() == f"error: port {port} is in use: stop what listens there, or give another --port"


def test_connections_that_never_finish_their_headers_are_closed(server):
    import uvicorn

    from nlpsuite.serve.app import ServeConfig, create_app
    from nlpsuite.serve.server import DrainingServer, listen, uvicorn_config

    port = free_port()
    uv = DrainingServer(uvicorn_config(create_app(server.service), ServeConfig(header_timeout_s=1.0)), server.service)
    assert isinstance(uv, uvicorn.Server)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [listen("127.0.0.1", port)]}, daemon=True)
    thread.start()
    try:
        wait_healthy(port, 30)
        slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        for i, conn in enumerate(slow):
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i % 2 else b"")  # half a head, or nothing
        assert request(port, "GET", "/health")[0] == 200  # others are still served meanwhile
        time.sleep(1.5)
        for conn in slow:
            assert conn.recv(1024) == b""  # closed by the server
            conn.close()
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
