"""Tool calls through the OpenAI API of a running `nlpsuite serve`, with the official client: which tool the model
picks for each prompt of data/tool_choice.jsonl (36 prompts; 30 meant for one of five tools, 6 for none).

    nlpsuite serve --port 8765 &
    python benchmarks/bench_tools.py --url http://127.0.0.1:8765/v1

The tools are five of the suite's own tasks (translate, summarize, sentiment, search, classify), each offered as a
function whose parameters are its declared schema (``Task.parameters_schema``, what MCP clients see too). Each
prompt is asked greedily three ways: ``tool_choice: auto``; ``required`` with one call only
(``parallel_tool_calls: false``); and ``required`` as OpenAI's default allows (several calls). Counted: replies that
call a tool, the right tool first, arguments that validate against the tool's schema (the grammar's promise), and
whether the call's main text argument is a piece of the prompt (a sensible call, by a rough rule). A reply cut by
``max_tokens`` in the middle of a call is not a call, but the function it named counts as the model's pick.
Prints a table and writes JSON under benchmarks/results/; nothing here depends on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jsonschema  # the reference validator: a test-extra dependency
from harness import out_option, save, show
from openai import OpenAI

from nlpsuite import plugins

DATA = Path(__file__).resolve().parent / "data" / "tool_choice.jsonl"
TASKS = ("translate", "summarize", "sentiment", "search", "classify")
MODES = {"auto": {"tool_choice": "auto"},
         "required, one call": {"tool_choice": "required", "parallel_tool_calls": False},
         "required": {"tool_choice": "required"}}  # fmt: skip


def tools() -> list[dict]:
    registry = plugins.registry()
    return [
        {"type": "function", "function": {"name": name, "description": registry.tasks[name].description,
                                          "parameters": registry.tasks[name].parameters_schema()}}
        for name in TASKS
    ]  # fmt: skip


def sensible(call, prompt: str) -> bool:
    """The call's first argument that is text (its main input: text, query) is a non-empty piece of the prompt."""
    arguments = json.loads(call.function.arguments)
    text = next((v for v in arguments.values() if isinstance(v, str)), "")
    return bool(text.strip()) and text.strip().lower() in prompt.lower()


def ask(client: OpenAI, model: str, offered: list[dict], case: dict, mode: dict, max_tokens: int) -> dict:
    done = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": case["prompt"]}], tools=offered, temperature=0,
        max_tokens=max_tokens, **mode,
    )  # fmt: skip
    choice = done.choices[0]
    calls = choice.message.tool_calls or []
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in offered}
    valid = all(not list(jsonschema.Draft202012Validator(schemas[c.function.name]).iter_errors(
        json.loads(c.function.arguments))) for c in calls)  # fmt: skip
    named = calls[0].function.name if calls else _named(choice.message.content or "")
    return {
        "prompt": case["prompt"], "expected": case["tool"], "finish_reason": choice.finish_reason,
        "calls": [{"name": c.function.name, "arguments": c.function.arguments} for c in calls],
        "text": choice.message.content, "valid": valid, "named": named, "right": named == case["tool"],
        "sensible": bool(calls) and calls[0].function.name == case["tool"] and sensible(calls[0], case["prompt"]),
    }  # fmt: skip


def _named(text: str) -> str | None:
    """The function a reply cut by max_tokens was calling (its name comes first: the grammar wrote it whole)."""
    found = re.match(r'<tool_call>\n\{"name": "([\w-]+)"', text)
    return found.group(1) if found else None


def summary(name: str, rows: list[dict]) -> list:
    meant = [r for r in rows if r["expected"]]
    none = [r for r in rows if not r["expected"]]
    called = [r for r in rows if r["calls"]]
    return [
        name,
        f"{len(called)}/{len(rows)}",
        f"{sum(r['named'] is not None and not r['calls'] for r in rows)}",
        f"{sum(r['right'] for r in meant)}/{len(meant)}",
        f"{sum(r['sensible'] for r in meant)}/{len(meant)}",
        f"{sum(r['named'] is None for r in none)}/{len(none)}" if name == "auto" else "-",
        f"{sum(r['valid'] for r in called)}/{len(called)}",
        f"{sum(len(r['calls']) for r in called) / max(1, len(called)):.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/v1")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=200)
    out_option(parser, "tools")
    args = parser.parse_args()
    client = OpenAI(base_url=args.url, api_key="none", timeout=900, max_retries=0)
    model = client.models.list().data[0].id
    cases = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()][: args.limit]
    offered = tools()
    report = {"model": model, "max_tokens": args.max_tokens, "modes": {}}
    for name, mode in MODES.items():
        report["modes"][name] = [ask(client, model, offered, case, mode, args.max_tokens) for case in cases]
    columns = ["tool_choice", "replies that are calls", "calls cut by max_tokens", "right tool named first",
               "right, first argument from the prompt", "text where no tool fits", "calls that validate",
               "calls per reply"]  # fmt: skip
    show(f"Tool calls, {model}, greedy", columns, [summary(n, rows) for n, rows in report["modes"].items()], True)
    save(report, args.out)


if __name__ == "__main__":
    main()
