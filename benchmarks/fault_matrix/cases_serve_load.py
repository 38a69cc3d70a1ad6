"""The shared server under many clients, hung-up and unfinished connections, hosts, origins, keys and the edges of
its inputs (SV)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

from . import Case, Ctx, Verdict
from .cases_server import MODEL, SERVE, chat, request, server, statuses


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


def sv22(ctx: Ctx) -> Verdict:
    serve = Path(__file__).resolve().parents[2] / "nlpsuite" / "serve"
    text = {p.name: p.read_text() for p in serve.glob("*.py")}
    digest = [n for n, t in text.items() if "compare_digest" in t]
    naive = [n for n, t in text.items() if "api_key ==" in t or "== self.api_key" in t or "key == " in t]
    return bool(digest) and not naive, f"compare_digest in {digest}; '==' on the key in {naive or 'none'}"


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


CASES = [
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
    Case("SV22", "the key compared with hmac.compare_digest, never ==", sv22, SERVE + "test_error_statuses"),
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
]
