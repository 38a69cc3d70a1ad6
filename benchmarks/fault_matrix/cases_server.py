"""The server (SV): one ``nlpsuite serve`` on loopback for the request cases, its own server for the cases that
start, stop or kill one. Raw HTTP (http.client, sockets): the bodies are ones no client library would send."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path

import psutil

from . import Case, Ctx, Verdict, finish, kill_group, refused

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


def ok_or_refused(ctx: Ctx, bodies: list) -> Verdict:
    """A field the server does or does not support: a 200 that honours it or a 400 naming it, never a 500."""
    port, got = server(ctx), []
    for body in bodies:
        status, answer, _ = request(port, "POST", "/v1/chat/completions", body)
        got.append(status)
    return all(s in (200, 400) for s in got), f"statuses {got}"


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


def sv15(ctx: Ctx) -> Verdict:
    port = server(ctx)
    body = json.dumps(chat("Tell me a long story.", max_tokens=400, stream=True)).encode()
    for _ in range(6):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        sock.recv(100)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
    time.sleep(3)
    health = request(port, "GET", "/health")[1]
    status = request(port, "POST", "/v1/chat/completions", chat())[0]
    busy = health.get("decoding", health.get("running", 0)) if isinstance(health, dict) else "?"
    return status == 200 and not busy, f"3 s after 6 hang-ups: decoding {busy}; next request {status}"


def sv16(ctx: Ctx) -> Verdict:
    port, got = server(ctx), []

    def one():
        try:
            status, _, headers = request(port, "POST", "/v1/chat/completions", chat("Count to ten.", max_tokens=16))
            got.append((status, headers.get("retry-after") or headers.get("Retry-After")))
        except OSError as exc:
            got.append((str(exc), None))

    threads = [threading.Thread(target=one) for _ in range(64)]
    [t.start() for t in threads]
    [t.join(600) for t in threads]
    served = sum(s == 200 for s, _ in got)
    queued = sum(s == 429 and r is not None for s, r in got)
    return served + queued == 64, f"{served} x 200, {queued} x 429 with Retry-After, others {64 - served - queued}"


def sv17(ctx: Ctx) -> Verdict:
    port = server(ctx)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=90) for _ in range(200)]
    for i, s in enumerate(socks):
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i % 2 else b"")
    start = time.monotonic()
    status = request(port, "POST", "/v1/chat/completions", chat())[0]
    served = time.monotonic() - start
    time.sleep(35)
    closed = 0
    for s in socks:
        s.settimeout(1)
        with contextlib.suppress(OSError):
            closed += s.recv(10) == b""
        s.close()
    return (
        status == 200 and closed == 200,
        f"request served in {served:.1f} s ({status}); {closed} of 200 "
        f"unfinished sockets closed by the server after 35 s",
    )


def sv18(ctx: Ctx) -> Verdict:
    port, got = server(ctx), {}
    for host in ("evil.example.com", "localhost.evil.com", "127.0.0.1.nip.io", "localhost", "127.0.0.1", "[::1]"):
        got[host] = request(port, "GET", "/v1/models", headers={"Host": f"{host}:{port}"})[0]
    ok = all(got[h] == 403 for h in list(got)[:3]) and all(got[h] == 200 for h in list(got)[3:])
    return ok, f"{got}"


def sv19(ctx: Ctx) -> Verdict:
    port = server(ctx)
    plain = request(
        port,
        "POST",
        "/v1/chat/completions",
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        raw=json.dumps(chat()).encode(),
    )[0]
    options = request(
        port,
        "OPTIONS",
        "/v1/chat/completions",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    page = request(port, "GET", "/")[2]
    ok = (
        plain == 400
        and "access-control-allow-origin" not in {k.lower() for k in options[2]}
        and any(k.lower() == "content-security-policy" for k in page)
    )
    return ok, f"text/plain POST {plain}; OPTIONS {options[0]}; GET / has a CSP: {ok}"


def own_server(ctx: Ctx, args: str, port: int, host: str = "127.0.0.1"):
    return start(ctx, args, port, host=host)


def sv20(ctx: Ctx) -> Verdict:
    proc = own_server(ctx, "--host 127.0.0.2", 8573, host="127.0.0.2")
    try:
        status = request(8573, "GET", "/v1/models", host="127.0.0.2")[0]
        return status == 200, f"GET http://127.0.0.2:8573/v1/models: {status}"
    finally:
        kill_group(proc, signal.SIGTERM)
        finish(proc, 30)


def sv21(ctx: Ctx) -> Verdict:
    proc = own_server(ctx, "--api-key s3cret", 8574)
    try:
        got = [
            request(8574, "GET", "/v1/models", headers=h)[0]
            for h in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Bearer s3cr"},
                {"Authorization": "Bearer s3cret"},
                {"Authorization": "bearer s3cret"},
                {"X-Api-Key": "s3cret"},
            )
        ]
        health = request(8574, "GET", "/health")[0]
        return got == [401, 401, 401, 200, 200, 200] and health == 200, f"{got}; /health {health}"
    finally:
        kill_group(proc, signal.SIGTERM)
        finish(proc, 30)


def sv22(ctx: Ctx) -> Verdict:
    serve = Path(__file__).resolve().parents[2] / "nlpsuite" / "serve"
    text = {p.name: p.read_text() for p in serve.glob("*.py")}
    digest = [n for n, t in text.items() if "compare_digest" in t]
    naive = [n for n, t in text.items() if "api_key ==" in t or "== self.api_key" in t or "key == " in t]
    return bool(digest) and not naive, f"compare_digest in {digest}; '==' on the key in {naive or 'none'}"


def stream_then(ctx: Ctx, port: int, sig: int) -> Verdict:
    # 400 tokens on a loaded 2-core machine outlast the default 30 s drain (--drain-seconds): give it 120
    proc = own_server(ctx, "--drain-seconds 120", port)
    body = json.dumps(chat("Tell me a long story about a dragon.", max_tokens=400, stream=True)).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    time.sleep(6)
    (proc.send_signal if sig == signal.SIGTERM else lambda s: kill_group(proc, s))(sig)
    try:
        data = response.read().decode(errors="replace")
    except (http.client.IncompleteRead, OSError) as exc:
        data = getattr(exc, "partial", b"").decode(errors="replace") if hasattr(exc, "partial") else ""
    run = finish(proc, 120)
    done = "[DONE]" in data
    if sig == signal.SIGTERM:
        return done and run.rc == 0, f"stream ended with [DONE]: {done}; server exit {run.rc}"
    again = own_server(ctx, "", port)
    try:
        status = request(port, "POST", "/v1/chat/completions", chat())[0]
    finally:
        kill_group(again, signal.SIGTERM)
        finish(again, 30)
    return not done and status == 200, f"stream cut without [DONE]: {not done}; restarted server answers {status}"


def sv26(ctx: Ctx) -> Verdict:
    port = server(ctx)
    over = " ".join(f"w{i}" for i in range(9000))
    start = time.monotonic()
    status = request(port, "POST", "/v1/chat/completions", chat(over))[0]
    took = time.monotonic() - start
    task = request(port, "POST", "/v1/tasks/sentiment", {"text": "word " * 3000})[0]
    return (
        status == 400 and task == 400,
        f"prompt over the window: {status} in {took:.2f} s; task text over 2048 tokens: {task}",
    )


def sv27(ctx: Ctx) -> Verdict:
    port = server(ctx)
    bad = [
        request(port, "POST", "/v1/embeddings", {"model": MODEL, "input": x})[0]
        for x in ([], "", ["x"] * 10_000, [[99999999]], [{"a": 1}])
    ]
    status, answer, _ = request(port, "POST", "/v1/embeddings", {"model": MODEL, "input": ["cat", "kitten"]})
    dims = len(answer["data"][0]["embedding"]) if status == 200 else 0
    return all(s == 400 for s in bad) and dims == 576, f"bad inputs {bad}; two inputs {status}, {dims} dims"


def sv28(ctx: Ctx) -> Verdict:
    port = server(ctx)
    ask = request(port, "POST", "/v1/tasks/ask", {"question": "What is in it?", "context": "/etc/passwd"})
    index = [request(port, "POST", "/v1/tasks/search", {"name": n, "query": "x"})[0] for n in ("../../etc", "/etc")]
    read = ask[0] == 200 and "root:" not in json.dumps(ask[1])
    return read and all(
        s == 400 for s in index
    ), f"ask with context '/etc/passwd': {ask[0]}, file not read: {read}; search index '../../etc', '/etc': {index}"


def sv29(ctx: Ctx) -> Verdict:
    port = server(ctx)
    got = [
        request(port, "POST", "/v1/completions", {"model": MODEL, "prompt": p, "max_tokens": 2})[0]
        for p in ([99999999], [-1], ["hi"] * 100)
    ]
    return got == [400, 400, 400], f"{got}"


def sv30(ctx: Ctx) -> Verdict:
    proc = start(ctx, "", 8575, wait=False)
    try:
        seen = None
        for _ in range(600):
            try:
                status, _, headers = request(8575, "POST", "/v1/chat/completions", chat(), timeout=30)
                seen = (status, headers.get("retry-after") or headers.get("Retry-After"))
                break
            except OSError:
                time.sleep(0.05)
        return seen is not None and seen[0] in (503, 200), f"first answer while loading: {seen}"
    finally:
        kill_group(proc, signal.SIGTERM)
        finish(proc, 30)


def sv31(ctx: Ctx) -> Verdict:
    server(ctx)
    return refused(ctx.sh(f"nlpsuite serve --port {PORT}", timeout=120), f"port {PORT} is in use")


def sv32(ctx: Ctx) -> Verdict:
    wide = [refused(ctx.sh(f"nlpsuite serve --host {h} --port 8576", timeout=60), "api-key") for h in ("0.0.0.0", "::")]
    port = refused(ctx.sh("nlpsuite serve --port 99999", timeout=60), "port")
    return all(ok for ok, _ in wide) and port[0], f"{wide[0][1]}; ::: {wide[1][0]}; port 99999: {port[1]}"


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
        "n=2 (400), best_of 2 (400)",
        lambda ctx: statuses(ctx, [chat(n=2), chat(best_of=2)]),
        SERVE + "test_bad_requests_are_400_with_the_field_named",
        slow=True,
    ),
    Case(
        "SV08",
        "logprobs true / top_logprobs 2",
        lambda ctx: ok_or_refused(ctx, [chat(logprobs=True), chat(logprobs=True, top_logprobs=2)]),
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
    Case(
        "SV15",
        "6 streams of 400 tokens hung up (RST) after the first bytes",
        sv15,
        SERVE + "test_a_client_that_disconnects_frees_its_slot",
        slow=True,
    ),
    Case(
        "SV16",
        "64 concurrent clients (16 tokens each) on --max-queue 16 --max-batch 8",
        sv16,
        SERVE + "test_a_full_queue_is_429_with_retry_after_and_loading_or_draining_is_503",
        slow=True,
    ),
    Case(
        "SV17",
        "200 sockets with unfinished headers",
        sv17,
        SERVE + "test_connections_that_never_finish_their_headers_are_closed",
        slow=True,
    ),
    Case(
        "SV18",
        "Host evil.example.com / localhost.evil.com / 127.0.0.1.nip.io / localhost / 127.0.0.1 / [::1]",
        sv18,
        SERVE + "test_without_a_key_only_requests_that_name_loopback_get_in",
        slow=True,
    ),
    Case(
        "SV19",
        "text/plain POST with Origin evil; OPTIONS preflight; GET /",
        sv19,
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV20",
        "nlpsuite serve --host 127.0.0.2 --port 8573 (no key); GET http://127.0.0.2:8573/v1/models",
        sv20,
        SERVE + "test_without_a_key_the_loopback_address_it_was_told_to_bind_gets_in",
        slow=True,
    ),
    Case(
        "SV21",
        "serve --api-key s3cret: no key, wrong, a prefix, Bearer, bearer, X-Api-Key",
        sv21,
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case("SV22", "the key compared with hmac.compare_digest, never ==", sv22, SERVE + "test_error_statuses"),
    Case(
        "SV23",
        "SIGTERM 6 s into a 400-token stream",
        lambda ctx: stream_then(ctx, 8577, signal.SIGTERM),
        SERVE + "test_sigterm_finishes_the_stream_in_flight_then_exits_0",
        slow=True,
    ),
    Case(
        "SV24",
        "SIGKILL mid-stream; restart on the same port",
        lambda ctx: stream_then(ctx, 8578, signal.SIGKILL),
        "tests/test_serve_batches.py::test_a_killed_server_finishes_the_batch_after_a_restart_answering_each_line_once",
        slow=True,
    ),
    Case(
        "SV25",
        "model '../../etc/passwd', '/etc/passwd'",
        lambda ctx: statuses(
            ctx, [{**chat(), "model": "../../etc/passwd"}, {**chat(), "model": "/etc/passwd"}], want=404
        ),
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV26", "a prompt over the window; a task text over 2048 tokens", sv26, SERVE + "test_error_statuses", slow=True
    ),
    Case(
        "SV27",
        "embeddings of [] / '' / 10,000 inputs / out-of-vocab ids / objects; two inputs",
        sv27,
        SERVE + "test_embeddings_float_and_base64_are_the_embedding_heads_vectors",
        slow=True,
    ),
    Case(
        "SV28",
        "ask with context '/etc/passwd'; search index '../../etc' and '/etc'",
        sv28,
        SERVE + "test_bad_task_requests_are_4xx_in_the_apis_words",
        slow=True,
    ),
    Case(
        "SV29",
        "completions with token ids out of vocab, negative; 100 prompts",
        sv29,
        SERVE + "test_error_statuses",
        slow=True,
    ),
    Case(
        "SV30",
        "a request while the model loads",
        sv30,
        SERVE + "test_a_full_queue_is_429_with_retry_after_and_loading_or_draining_is_503",
        slow=True,
    ),
    Case(
        "SV31",
        "a second nlpsuite serve on the busy port",
        sv31,
        SERVE + "test_a_busy_port_is_one_line_before_the_model_loads",
        slow=True,
    ),
    Case(
        "SV32",
        "serve --host 0.0.0.0 and :: without a key; --port 99999",
        sv32,
        SERVE + "test_a_keyless_server_off_loopback_is_refused",
        slow=True,
    ),
]
