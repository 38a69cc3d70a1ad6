"""`nlpsuite serve` under 1, 4, 8 and 16 concurrent streaming clients (and llama.cpp's server, where it installs).

Each client streams one chat completion of --tokens tokens (greedy, ignore_eos) and records when its first
token and its last arrive. Per load: aggregate decode tok/s (all clients' tokens over the round's wall time),
time to first token p50/p95. Prints a table and writes JSON.

    python benchmarks/bench_serve.py                                  # the default model, 1/4/8/16 clients
    python benchmarks/bench_serve.py --model PATH --clients 1,8 --tokens 64
    python benchmarks/bench_serve.py --gguf model.gguf                # also llama.cpp's server, same GGUF
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
import statistics
import subprocess
import sys
import threading
import time

from harness import out_option, save, show

PROMPT = (
    "You are helping a student prepare for an exam. Explain, in a few clear paragraphs, how the water "
    "cycle works: evaporation, condensation, precipitation and collection, with one everyday example of each."
)


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


def one_stream(port: int, model: str, tokens: int, client: int, out: list) -> None:
    """One streaming chat completion: (start, first token, end, tokens received)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"({client}) {PROMPT}"}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    start = time.perf_counter()
    first, chunks = None, 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {response.read()[:300]!r}")
    while line := response.readline():
        if not line.startswith(b"data: {"):
            continue
        delta = json.loads(line[6:])["choices"]
        if delta and delta[0].get("delta", {}).get("content"):
            chunks += 1
            first = first or time.perf_counter()
    out.append({"start": start, "first": first or time.perf_counter(), "end": time.perf_counter(), "chunks": chunks})


def load(port: int, model: str, clients: int, tokens: int) -> dict:
    results: list[dict] = []
    threads = [threading.Thread(target=one_stream, args=(port, model, tokens, i, results)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ttft = sorted((r["first"] - r["start"]) * 1000 for r in results)
    return {
        "clients": clients,
        "wall_s": round(wall, 2),
        "aggregate_tokens_per_s": round(clients * tokens / wall, 1),
        "ttft_p50_ms": round(statistics.median(ttft)),
        "ttft_p95_ms": round(ttft[min(len(ttft) - 1, int(0.95 * len(ttft)))]),
        "text_chunks": sum(r["chunks"] for r in results),
    }


def soak(port: int, model: str, clients: int, seconds: float) -> dict:
    """Clients asking again and again, some of them hanging up mid-stream; counts what came back wrong."""
    counts = {"finished": 0, "cancelled": 0, "wrong": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < deadline:
            tokens, hang_up = rng.randint(4, 64), rng.random() < 0.3
            body = {"model": model, "prompt": f"({i}) {PROMPT}", "max_tokens": tokens, "temperature": 0,
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


def run_engine(name: str, command: list[str], port: int, health: str, model: str, args) -> list[dict]:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, health, 900, proc)
        load(port, model, 1, 8)  # warm-up
        rows = []
        for clients in args.clients:
            row = {"engine": name, **load(port, model, clients, args.tokens)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--clients", default="1,4,8,16", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--gguf", help="Also run llama.cpp's server (llama-cpp-python[server]) on this GGUF file.")
    out_option(parser, "serve")
    parser.add_argument("--soak", type=float, help="Instead: this many seconds of 16 clients hanging up at random.")
    args = parser.parse_args()
    slots = max(args.clients)
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

    port = free_port()
    command = [sys.executable, "-m", "nlpsuite", "serve", "--model", args.model, "--precision", args.precision,
               "--device", "cpu", "--port", str(port), "--max-batch", str(slots)]  # fmt: skip
    rows = run_engine("nlpsuite", command, port, "/health", args.model, args)
    if args.gguf:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            print("llama.cpp: skipped (pip install 'llama-cpp-python[server]')", file=sys.stderr)
        else:
            port = free_port()
            command = [sys.executable, "-m", "llama_cpp.server", "--model", args.gguf, "--port", str(port),
                       "--n_ctx", str(2048 * slots), "--n_threads", str(os.cpu_count())]  # fmt: skip
            rows += run_engine("llama.cpp", command, port, "/v1/models", args.gguf, args)

    single = {r["engine"]: r["aggregate_tokens_per_s"] for r in rows if r["clients"] == 1}
    table = []
    for r in rows:
        ratio = r["aggregate_tokens_per_s"] / single[r["engine"]] if single.get(r["engine"]) else float("nan")
        table.append((r["engine"], r["clients"], f"{r['aggregate_tokens_per_s']:.1f}", f"{ratio:.2f}",
                      r["ttft_p50_ms"], r["ttft_p95_ms"]))  # fmt: skip
    columns = ["engine", "clients", "agg tok/s", "x one", "TTFT p50 ms", "TTFT p95 ms"]
    show(f"{args.model}: concurrent streaming clients, {args.tokens} tokens each", columns, table)
    save({"tokens": args.tokens, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
