"""The loads bench_serve.py puts on an OpenAI-compatible server: streaming chat clients, a shared system prompt, a
burst of long prompts beside running streams, and task calls. Plain HTTP, so that any server takes them."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time

PROMPT = (
    "You are helping a student prepare for an exam. Explain, in a few clear paragraphs, how the water "
    "cycle works: evaporation, condensation, precipitation and collection, with one everyday example of each."
)
RULES = [
    "Always greet the customer by name when the name is known, and keep the greeting to one short sentence.",
    "Answer questions about orders by first restating the order number, then the status, then the next step.",
    "Never promise a delivery date that the tracking system does not show; say what the system shows instead.",
    "When a customer is upset, acknowledge the problem in plain words before offering any solution at all.",
    "Refunds under fifty euros may be approved directly; larger refunds must be passed to a human supervisor.",
    "Do not share internal notes, staff names or supplier details, even when the customer asks for them.",
    "If a question is about a product you do not know, say so, and offer to find out rather than guessing.",
    "Keep answers under one hundred and fifty words unless the customer explicitly asks for more detail.",
    "Use the metric system for sizes and weights, and give prices in euros with two decimal places.",
    "For questions about returns, explain the thirty-day window and that items must be unused and complete.",
    "End every conversation by asking whether there is anything else you can help with today.",
    "If the customer writes in another language, answer in that language when you can do so reliably.",
    "Never ask for a full card number or a password; payment questions go to the secure payment page.",
    "When you are unsure whether a policy applies, say which policy you think applies and why, briefly.",
]
SYSTEM = "You are the support assistant of a small online shop. Follow these rules.\n" + "\n".join(
    f"{i}. {rule}" for i, rule in enumerate(RULES + RULES[:7], start=1)
)  # ~500 tokens with the default model's tokenizer
QUESTIONS = [
    "Where is my order 1182?", "Can I return shoes I wore once?", "Do you ship to Norway?",
    "My parcel arrived damaged, what now?", "How do I change my address?", "Is the blue jacket waterproof?",
    "Can I pay by bank transfer?", "Why was I charged twice?", "What sizes does the rain coat come in?",
    "Can I cancel an order I placed an hour ago?", "Do you have gift cards?", "How long do refunds take?",
    "Is there a discount for students?", "Can I pick up my order in person?", "What is your phone number?",
    "The zip on my bag broke after a week.",
]  # fmt: skip


def post(port: int, path: str, body: dict, timeout: float = 900) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status} from {path}: {response.read()[:300]!r}")
    return response


def stream_chat(port: int, model: str, messages: list[dict], tokens: int, out: list, greedy_len: bool = True) -> None:
    """One streaming chat completion: when it started, when each text chunk came, and its usage."""
    body = {"model": model, "messages": messages, "max_tokens": tokens, "temperature": 0, "stream": True,
            "ignore_eos": greedy_len, "stream_options": {"include_usage": True}}  # fmt: skip
    start, times, usage = time.perf_counter(), [], None
    response = post(port, "/v1/chat/completions", body)
    while line := response.readline():
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        usage = event.get("usage") or usage
        choices = event.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            times.append(time.perf_counter())
    out.append({"start": start, "times": times, "end": time.perf_counter(), "usage": usage})


def together(jobs: list[tuple]) -> tuple[list[dict], float]:
    """Run ``stream_chat`` argument tuples at once; (results, wall seconds)."""
    results: list[dict] = []
    threads = [threading.Thread(target=stream_chat, args=(*job, results)) for job in jobs]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def ttft_ms(results: list[dict]) -> list[float]:
    return [((r["times"][0] if r["times"] else r["end"]) - r["start"]) * 1000 for r in results]


def prefill_counts(results: list[dict]) -> dict:
    """Prompt tokens sent and prefilled (those not served from a prompt cache), from the usage the server gave."""
    prompt = sum((r["usage"] or {}).get("prompt_tokens", 0) for r in results)
    cached = sum(((r["usage"] or {}).get("prompt_tokens_details") or {}).get("cached_tokens", 0) for r in results)
    return {"prompt_tokens": prompt, "cached_tokens": cached, "prefilled_tokens": prompt - cached}


def clients(port: int, model: str, n: int, tokens: int, tag: str = "") -> dict:
    """``n`` clients each streaming ``tokens`` tokens of its own chat: aggregate decode tok/s, TTFT."""
    jobs = [(port, model, [{"role": "user", "content": f"({tag}{i}) {PROMPT}"}], tokens) for i in range(n)]
    results, wall = together(jobs)
    ttft = ttft_ms(results)
    return {"load": f"{n} clients", "wall_s": round(wall, 2), "aggregate_tokens_per_s": round(n * tokens / wall, 1),
            "ttft_p50_ms": round(statistics.median(ttft)), "ttft_p95_ms": round(percentile(ttft, 0.95))}  # fmt: skip


def shared_prompt(port: int, model: str, n: int, tokens: int) -> dict:
    """``n`` requests at once, sharing one ~500-token system prompt: TTFT and the prompt tokens prefilled."""
    jobs = [(port, model, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTIONS[i % 16]}],
             tokens) for i in range(n)]  # fmt: skip
    results, wall = together(jobs)
    ttft = ttft_ms(results)
    return {"load": f"{n} sharing a system prompt", "wall_s": round(wall, 2), **prefill_counts(results),
            "ttft_p50_ms": round(statistics.median(ttft)), "ttft_p95_ms": round(percentile(ttft, 0.95))}  # fmt: skip


def long_prompt(i: int, words: int) -> list[dict]:
    """A distinct long prompt (its distinct part first, so that no cache shares more than the template)."""
    body = " ".join(f"{RULES[(i + k) % len(RULES)]}" for k in range(words // 18 + 1))
    return [{"role": "user", "content": f"Case {i}: summarize the rules below in one line.\n{body}"}]


def burst(port: int, model: str, n: int, running: int, words: int) -> dict:
    """Time to first token of ``n`` long prompts sent at once beside ``running`` streams already decoding,
    against one long prompt's on an idle server; and the longest gap the running streams saw meanwhile, in ms
    and in their usual decode steps."""
    idle = [ttft_ms(together([(port, model, long_prompt(1000 + k, words), 4)])[0])[0] for k in range(2)]
    streams: list[dict] = []
    threads = [threading.Thread(target=stream_chat, args=(port, model, [{"role": "user", "content": f"({i}) {PROMPT}"}],
               600, streams)) for i in range(running)]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(3.0)  # the running streams are decoding
    arrived, wall = together([(port, model, long_prompt(i, words), 8) for i in range(n)])
    burst_end = time.perf_counter()
    for t in threads:
        t.join()
    burst_start = burst_end - wall
    stalls, steps = [], []
    for s in streams:  # a decode step: the mean gap between chunks before the burst (a chunk may hold no token)
        before = [t for t in s["times"] if t < burst_start]
        steps += [(before[-1] - before[0]) / (len(before) - 1)] if len(before) > 1 else []
        stalls += [b - a for a, b in zip(s["times"], s["times"][1:], strict=False) if burst_start <= b <= burst_end]
    step = statistics.median(steps) if steps else float("nan")
    ttft, longest = ttft_ms(arrived), max(stalls) if stalls else float("nan")
    p95 = percentile(ttft, 0.95)
    return {
        "load": f"burst of {n} long prompts beside {running} streams",
        "prompt_tokens": prefill_counts(arrived)["prompt_tokens"] // n,
        "idle_ttft_ms": round(min(idle)),
        "ttft_p50_ms": round(statistics.median(ttft)),
        "ttft_p95_ms": round(p95),
        "ttft_p95_over_idle": round(p95 / min(idle), 2),
        "decode_step_ms": round(step * 1000, 1),
        "longest_stall_ms": round(longest * 1000),
        "longest_stall_steps": round(longest / step, 1),
    }


def ask_generate(port: int, calls: int, articles: list[str], questions: list[str]) -> dict:
    """``POST /v1/tasks/ask`` with ``generate: true``, one call at a time: seconds per call."""
    walls = []
    for i in range(calls):
        body = {"question": questions[i % len(questions)], "context": articles[i % len(articles)], "generate": True}
        started = time.perf_counter()
        post(port, "/v1/tasks/ask", body).read()
        walls.append(time.perf_counter() - started)
    return {"load": f"ask --generate x{calls}", "s_per_call_median": round(statistics.median(walls), 3),
            "s_per_call_min": round(min(walls), 3), "s_total": round(sum(walls), 2)}  # fmt: skip


def health(port: int, path: str = "/health") -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    try:
        return json.loads(conn.getresponse().read())
    except ValueError:
        return {}
