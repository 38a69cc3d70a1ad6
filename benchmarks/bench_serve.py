"""`nlpsuite serve` under load, side by side with today's server (main's, in another Python) and llama.cpp's
`llama-server`, where their paths are given.

Loads (benchmarks/serve_loads.py), each client a streaming chat completion (greedy):
- clients: 1, 8 and 16 clients streaming --tokens tokens each (ignore_eos): aggregate decode tok/s, TTFT;
- shared: 16 requests at once sharing a ~500-token system prompt: prompt tokens prefilled (counted from the
  usage each server gives: prompt_tokens - cached_tokens) and TTFT, also on a server run with --cache-mb 0;
- burst: 16 long prompts sent at once while 4 streams decode: TTFT p95 against an idle server's, and the
  longest gap the running streams saw, in ms and in their own decode steps;
- ask: `POST /v1/tasks/ask` with `generate: true`, one call at a time (nlpsuite servers only): seconds a call.
nlpsuite servers also report work counted, not timed (GET /health: prompt tokens prefilled, model passes),
per load. Prints a table per load and writes JSON.

    python benchmarks/bench_serve.py                                  # the default model, every load
    python benchmarks/bench_serve.py --loads clients,shared --clients 8,16 --tokens 64
    python benchmarks/bench_serve.py --baseline /venv-of-main/bin/python  # today's server beside it
    python benchmarks/bench_serve.py --llama-server ~/llama.cpp/build/bin/llama-server --gguf model.gguf
    python benchmarks/bench_serve.py --soak 60                        # 16 clients, random cancellations

--soak checks, rather than times: every stream not cancelled ends in [DONE] with as many tokens as it asked
for, and afterwards nothing is left decoding or waiting (GET /health).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import serve_loads as loads
from harness import ARTICLES, QUESTIONS, out_option, save, show

LOADS = ("clients", "shared", "burst", "ask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server on port {port} was not ready in {seconds} s")


def soak(port: int, model: str, clients: int, seconds: float) -> dict:
    """Clients asking again and again, some of them hanging up mid-stream; counts what came back wrong."""
    counts = {"finished": 0, "cancelled": 0, "wrong": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < deadline:
            tokens, hang_up = rng.randint(4, 64), rng.random() < 0.3
            body = {"model": model, "prompt": f"({i}) {loads.PROMPT}", "max_tokens": tokens, "temperature": 0,
                    "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            lines, usage, done = 0, None, False
            while line := response.readline():
                lines += line.startswith(b"data: {")
                if hang_up and lines >= 2:
                    break
                if line.startswith(b"data: {") and b'"usage": {' in line:
                    usage = json.loads(line[6:])["usage"]
                done = done or line.strip() == b"data: [DONE]"
            conn.close()
            with lock:
                if hang_up and not done:
                    counts["cancelled"] += 1
                elif done and usage and usage["completion_tokens"] == tokens:
                    counts["finished"] += 1
                else:
                    counts["wrong"] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    settle = time.monotonic() + 30
    while time.monotonic() < settle:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
        if health["decoding"] == 0 and health["waiting"] == 0:
            break
        time.sleep(0.2)
    return {**counts, "left_decoding": health["decoding"], "left_waiting": health["waiting"]}


def run_loads(engine: dict, args) -> list[dict]:
    """Start one server, run its loads, stop it; a row per load (with the work counted, where it reports it)."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in engine["command"]]
    # Run from elsewhere: `python -m nlpsuite` in a checkout imports that checkout, whatever Python runs it.
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path.home())
    model, rows = engine["model"], []
    try:
        wait_ready(port, engine["health"], 900, proc)
        loads.clients(port, model, 1, 8, tag="warm-up ")  # a prompt of its own: nothing cached for the loads
        for name in engine["loads"]:
            before = loads.health(port)
            for row in run_load(name, port, model, args):
                after = loads.health(port)
                if "passes" in after:  # counted by the server: load-independent
                    row["passes"] = after["passes"] - before["passes"]
                    row["prefilled_counted"] = after["prefilled_tokens"] - before["prefilled_tokens"]
                    before = after
                rows.append({"engine": engine["name"], **row})
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return rows


def run_load(name: str, port: int, model: str, args):
    """The rows of one load, each run when asked for (so that the work each did is counted apart)."""
    if name == "clients":
        for n in args.clients:
            yield loads.clients(port, model, n, args.tokens, tag=f"{n}/")  # prompts no other load sent
    elif name == "shared":
        yield loads.shared_prompt(port, model, 16, 32)
    elif name == "burst":
        yield loads.burst(port, model, 16, 4, args.burst_words)
    else:
        yield loads.ask_generate(port, args.ask_calls, ARTICLES, QUESTIONS)


def engines(args) -> list[dict]:
    serve = [sys.executable, "-m", "nlpsuite", "serve", "--model", args.model, "--precision", args.precision,
             "--device", "cpu", "--port", "{port}", "--max-batch", "16"]  # fmt: skip
    if args.prefill_chunk:
        serve += ["--prefill-chunk", str(args.prefill_chunk)]
    chosen = [name for name in args.loads if name in LOADS]
    out = [{"name": "nlpsuite", "command": serve, "health": "/health", "model": args.model, "loads": chosen}]
    if "shared" in chosen:
        out.append({"name": "nlpsuite --cache-mb 0", "command": [*serve, "--cache-mb", "0"], "health": "/health",
                    "model": args.model, "loads": ["shared"]})  # fmt: skip
    if args.baseline:
        plain = [args.baseline, *serve[1:]]
        if args.prefill_chunk:
            plain = plain[:-2]
        out.append({"name": "baseline", "command": plain, "health": "/health", "model": args.model, "loads": chosen})
    if args.llama_server and args.gguf:
        command = [args.llama_server, "-m", args.gguf, "--port", "{port}", "--parallel", "8", "--cont-batching",
                   "-c", str(8 * 2048), "-t", str(len(os.sched_getaffinity(0)))]  # fmt: skip
        out.append({"name": "llama-server --parallel 8", "command": command, "health": "/health",
                    "model": Path(args.gguf).name, "loads": [n for n in chosen if n != "ask"]})  # fmt: skip
    elif args.llama_server or args.gguf:
        print("llama.cpp: skipped (give both --llama-server and --gguf)", file=sys.stderr)
    return out


def table(rows: list[dict]) -> None:
    """One table per load: the columns its rows have."""

    def kind(row: dict) -> str:
        return row["load"].split(" ")[1] if row["load"][0].isdigit() else row["load"]

    for name in dict.fromkeys(map(kind, rows)):
        group = [r for r in rows if kind(r) == name]
        columns = list(dict.fromkeys(k for r in group for k in r))
        show(name, columns, [[r.get(c, "") for c in columns] for r in group], markdown=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--loads", default=",".join(LOADS), type=lambda s: s.split(","), help=", ".join(LOADS))
    parser.add_argument("--clients", default="1,8,16", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--burst-words", type=int, default=600, help="words in each prompt of the burst")
    parser.add_argument("--ask-calls", type=int, default=8)
    parser.add_argument("--prefill-chunk", type=int, help="passed to nlpsuite serve")
    parser.add_argument("--baseline", help="a Python whose nlpsuite is main's: its server runs the same loads")
    parser.add_argument("--llama-server", help="path to llama.cpp's llama-server binary (with --gguf)")
    parser.add_argument("--gguf", help="the GGUF file llama-server loads (the same weights)")
    out_option(parser, "serve")
    parser.add_argument("--soak", type=float, help="Instead: this many seconds of 16 clients hanging up at random.")
    args = parser.parse_args()
    if args.soak:
        port = free_port()
        command = [sys.executable, "-m", "nlpsuite", "serve", "--model", args.model, "--device", "cpu",
                   "--port", str(port), "--max-batch", "16"]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, "/health", 900, proc)
            result = soak(port, args.model, 16, args.soak)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        print(json.dumps(result))
        raise SystemExit(1 if result["wrong"] or result["left_decoding"] or result["left_waiting"] else 0)
    rows = [row for engine in engines(args) for row in run_loads(engine, args)]
    table(rows)
    cpus = len(os.sched_getaffinity(0))
    meta = {"model": args.model, "precision": args.precision, "tokens": args.tokens, "cpus": cpus}
    save({**meta, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
