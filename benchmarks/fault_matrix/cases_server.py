"""The server (SV): one ``nlpsuite serve`` on loopback for the request cases, its own server for the cases that
start, stop or kill one. Raw HTTP (http.client, sockets): the bodies are ones no client library would send."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time

import psutil

from . import Case, Ctx, Verdict, kill_group

PORT, MODEL = 8571, "smollm2-135m-instruct"
SERVE = "tests/test_serve.py::"
_server: dict = {}


def request(
    port: int,
    method: str,
    path: str,
    body=None,
    headers=None,
    raw: bytes | None = None,
    host: str = "127.0.0.1",
    timeout: float = 300,
):
    """(status, parsed JSON or text, headers) of one request."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        try:
            return response.status, json.loads(text), dict(response.getheaders())
        except ValueError:
            return response.status, text, dict(response.getheaders())
    finally:
        conn.close()


def start(ctx: Ctx, args: str, port: int, wait: bool = True, host: str = "127.0.0.1"):
    proc = ctx.spawn(f"exec nlpsuite serve --port {port} {args}")
    end = time.monotonic() + 300
    while wait and time.monotonic() < end and proc.poll() is None:
        try:
            if request(port, "GET", "/health", host=host, timeout=5)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    return proc


def server(ctx: Ctx) -> int:
    """The shared server (started on first use, stopped at exit)."""
    if "proc" not in _server or _server["proc"].poll() is not None:
        _server["proc"] = start(ctx, "--max-queue 16 --max-batch 8", PORT)
        import atexit

        atexit.register(lambda: kill_group(_server["proc"], signal.SIGTERM))
    return PORT


def chat(content="hi", **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **extra}


def statuses(ctx: Ctx, bodies: list, path: str = "/v1/chat/completions", want: int = 400) -> Verdict:
    port, got = server(ctx), []
    for body in bodies:
        raw = body if isinstance(body, bytes) else None
        status, answer, _ = request(port, "POST", path, None if raw else body, raw=raw)
        got.append((status, answer.get("error", {}).get("param") if isinstance(answer, dict) else answer[:40]))
    healthy = request(port, "GET", "/health")[0] == 200
    ok = all(s == want for s, _ in got) and healthy
    return ok, f"{[s for s, _ in got]} (fields {[p for _, p in got]}); healthy after: {healthy}"


def sv04(ctx: Ctx) -> Verdict:
    port = server(ctx)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n" + b" " * 2**20
    )
    first = sock.recv(200).split(b"\r\n")[0].decode()
    sock.close()
    chunked = socket.create_connection(("127.0.0.1", port), timeout=30)
    chunked.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    second = ""
    try:
        for _ in range(50):
            chunked.sendall(b"100000\r\n" + b" " * 2**20 + b"\r\n")
    except OSError:
        pass
    try:
        second = chunked.recv(200).split(b"\r\n")[0].decode()
    except OSError as exc:
        second = f"closed ({exc.__class__.__name__})"
    chunked.close()
    rss = psutil.Process(_server["proc"].pid).memory_info().rss / 2**20
    ok = "413" in first and ("413" in second or "closed" in second)
    return ok, f"Content-Length 50 MB: {first!r}; chunked: {second!r}; server RSS {rss:.0f} MB"


def sv06(ctx: Ctx) -> Verdict:
    bad = statuses(ctx, [chat(max_tokens=0), chat(max_tokens=-1), chat(max_tokens=None, max_completion_tokens=0)])
    status, answer, _ = request(server(ctx), "POST", "/v1/chat/completions", chat("Say hi.", max_tokens=10**9))
    return bad[0] and status == 200, f"{bad[1]}; max_tokens 10**9: {status}"


def ok_or_refused(ctx: Ctx, bodies: list, honoured=lambda answer: True) -> Verdict:
    """A field the server does or does not support: a 200 that honours it (``honoured(answer)``) or a 400 naming
    it, never a 500 and never a field silently ignored."""
    port, got = server(ctx), []
    for body in bodies:
        status, answer, _ = request(port, "POST", "/v1/chat/completions", body)
        got.append((status, status == 400 or (status == 200 and honoured(answer))))
    return all(
        ok for _, ok in got
    ), f"statuses {[s for s, _ in got]}, each honoured or refused: {all(o for _, o in got)}"


def n_choices(answer: dict) -> bool:
    return len(answer["choices"]) == 2


def with_logprobs(answer: dict) -> bool:
    return answer["choices"][0].get("logprobs") is not None


def sv10(ctx: Ctx) -> Verdict:
    status, answer, _ = request(
        server(ctx),
        "POST",
        "/v1/chat/completions",
        chat("Give a JSON object with a key a.", max_tokens=30, response_format={"type": "json_object"}),
    )
    if status == 200:
        content = answer["choices"][0]["message"]["content"]
        finish_reason = answer["choices"][0]["finish_reason"]
        try:
            json.loads(content)
            honoured = True
        except ValueError:
            honoured = finish_reason == "length"  # cut by max_tokens: not silently ignored, just short
        return honoured, f"200, json_object honoured: {content[:60]!r} ({finish_reason})"
    return status == 400, f"{status}"


def sv13(ctx: Ctx) -> Verdict:
    bad = b'"a\\ud800b"'
    bodies = {
        "/v1/chat/completions": b'{"model":"%s","max_tokens":4,"messages":[{"role":"user","content":%s}]}',
        "/v1/completions": b'{"model":"%s","max_tokens":4,"prompt":%s}',
        "/v1/embeddings": b'{"model":"%s","input":%s}',
        "/v1/tasks/sentiment": b'{"model":"%s","text":%s}',
    }
    port, got = server(ctx), []
    for path, body in bodies.items():
        status, answer, _ = request(port, "POST", path, raw=body % (MODEL.encode(), bad))
        got.append((path.removeprefix("/v1/"), status))
    stream = b'{"model":"%s","max_tokens":4,"stream":true,"messages":[{"role":"user","content":%s}]}'
    got.append(("stream", request(port, "POST", "/v1/chat/completions", raw=stream % (MODEL.encode(), bad))[0]))
    return all(s == 400 for _, s in got), f"{got}"


BAD_FIELDS = [
    chat(messages="hi"),
    {**chat(), "messages": [{"role": "user", "content": 5}]},
    {**chat(), "messages": [{"role": "robot", "content": "hi"}]},
    chat(max_tokens="10"),
    chat(max_tokens=2.5),
    chat(max_tokens=True),
    chat(temperature="hot"),
    chat(stream="yes"),
    chat(stop=5),
    chat(seed=1.5),
    chat(top_p=[1]),
    {**chat(), "model": 7},
]
CASES = [
    Case(
        "SV01",
        "POST /v1/chat/completions with '[' * 100000 + ']' * 100000",
        lambda ctx: statuses(ctx, [b"[" * 100_000 + b"]" * 100_000, b'{"model": "x"', b"not json", b"[]", b""]),
        SERVE + "test_json_nested_deeper_than_python_recurses_is_400_invalid_json",
        slow=True,
    ),
    Case(
        "SV02",
        "chat bodies with messages 'hi', content 5, role robot, max_tokens '10'/2.5/true, temperature "
        "'hot', stream 'yes', stop 5, seed 1.5, top_p [1], model 7",
        lambda ctx: statuses(ctx, BAD_FIELDS),
        SERVE + "test_malformed_fields_are_400s_naming_the_field",
        slow=True,
    ),
    Case(
        "SV03",
        "unknown field 'foo', frequency_penalty 0.5 (400); frequency_penalty 0 (200)",
        lambda ctx: (
            statuses(ctx, [chat(foo=1), chat(frequency_penalty=0.5)])[0]
            and statuses(ctx, [chat(frequency_penalty=0)], want=200)[0],
            "400, 400; neutral value 200",
        ),
        SERVE + "test_neutral_values_of_unsupported_fields_are_accepted",
        slow=True,
    ),
    Case("SV04", "a 50 MB body (Content-Length, then chunked)", sv04, SERVE + "test_error_statuses", slow=True),
    Case(
        "SV05",
        "10,000 messages",
        lambda ctx: statuses(
            ctx, [{**chat(), "messages": [{"role": "user", "content": "tell me more about rivers"}] * 10_000}]
        ),
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV06",
        "max_tokens 0 / -1 / max_completion_tokens 0 (400); max_tokens 10**9 (200)",
        sv06,
        SERVE + "test_bad_requests_are_400_with_the_field_named",
        slow=True,
    ),
    Case(
        "SV07",
        "n=2, best_of 2: two choices or a 400 naming the field",
        lambda ctx: ok_or_refused(ctx, [chat(n=2), chat(best_of=2)], n_choices),
        SERVE + "test_bad_requests_are_400_with_the_field_named",
        slow=True,
    ),
    Case(
        "SV08",
        "logprobs true / top_logprobs 2",
        lambda ctx: ok_or_refused(ctx, [chat(logprobs=True), chat(logprobs=True, top_logprobs=2)], with_logprobs),
        SERVE + "test_neutral_values_of_unsupported_fields_are_accepted",
        slow=True,
    ),
    Case(
        "SV09",
        "model 'gpt-4o' (404)",
        lambda ctx: statuses(ctx, [{**chat(), "model": "gpt-4o"}, {**chat(), "model": "smollm2"}], want=404),
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV10",
        "response_format json_object",
        sv10,
        "tests/test_structured.py::test_generate_schema_json_carries_the_parsed_value",
        slow=True,
    ),
    Case(
        "SV11",
        "tools / tool_choice / role 'tool'",
        lambda ctx: ok_or_refused(
            ctx,
            [
                chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]),
                chat(tool_choice="none"),
                {**chat(), "messages": [{"role": "tool", "content": "x"}]},
            ],
        ),
        SERVE + "test_bad_requests_are_400_with_the_field_named",
        slow=True,
    ),
    Case(
        "SV12",
        "invalid UTF-8 bytes in the body",
        lambda ctx: statuses(
            ctx, [b'{"model": "x", "messages": [{"role": "user", "content": "\xff\xfe"}]}', b'{"a": "\xc0\x80"}']
        ),
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV13",
        "a lone surrogate (\\ud800) in chat, streamed chat, completions, embeddings, /v1/tasks/sentiment",
        sv13,
        SERVE + "test_a_lone_surrogate_is_400_naming_the_field_on_every_route",
        slow=True,
    ),
    Case(
        "SV14",
        "NUL in content, NUL-only content",
        lambda ctx: statuses(ctx, [chat("a\0b"), chat("\0")], want=200),
        SERVE + "test_malformed_fields_are_400s_naming_the_field",
        slow=True,
    ),
]
