"""The server's own life (SV): servers each case starts, stops or kills itself, apart from the shared one."""

from __future__ import annotations

import http.client
import json
import signal
import time

from . import Case, Ctx, Verdict, finish, kill_group, refused
from .cases_server import PORT, SERVE, chat, request, server, start


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


CASES = [
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
