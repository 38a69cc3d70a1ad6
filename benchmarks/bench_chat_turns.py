"""Time to first token of each turn of a 10-turn chat, with the prompt cache and without it, side by side.

One conversation (a system prompt, ten scripted user messages, the model's own greedy replies) runs through two
Suites in one process: one with the prompt cache (emptied before each round), one without (cache_mb=0). Turn n's
prompt holds the earlier exchanges and the new message: ~1,500 tokens by turn 10 with the default model. Rounds
alternate which Suite goes first. Per turn: prompt tokens, tokens prefilled (counted, so load-independent), and
time to first token median (min-max) with and without the cache, with their ratio. Prints a table and writes JSON.

    python benchmarks/bench_chat_turns.py                      # the default model, 3 rounds
    python benchmarks/bench_chat_turns.py --model PATH --rounds 5 --max-tokens 96
"""

from __future__ import annotations

import argparse
import time

from harness import out_option, save, show, spread, stats

from nlpsuite import Suite
from nlpsuite.runtime.sampling import SamplingParams

SYSTEM = (
    "You are a travel planner for a small agency. You know European cities, trains, food and weather well. "
    "Answer in plain sentences, concretely, with names of places, times and prices where they help. Keep track "
    "of what the traveller told you earlier in the conversation and build on it; do not repeat earlier answers. "
    "If something depends on the season or on the traveller's taste, say so and give one clear recommendation."
)
MESSAGES = [
    "I am planning a week-long trip to Portugal in October with my partner. We like walking, old towns, good "
    "food and a bit of the sea, but we do not like crowds much. Which cities would you suggest, and why?",
    "That sounds good. How should we split the seven days between Lisbon and Porto if we also want one full day "
    "by the sea? We arrive in Lisbon on a Saturday morning and fly home from Porto the next Saturday evening.",
    "What are three dishes we should try in Lisbon, and what is in each of them? My partner does not eat pork, "
    "so please tell us which ones are safe for her and what she could order instead.",
    "Is it easy to get from Lisbon to Porto by train? How long does it take, how much does it cost, and should "
    "we book in advance or can we just buy tickets at the station on the day we travel?",
    "Which neighbourhoods in Porto are nice to stay in for people who like walking? We would like to be able to "
    "walk to the river and to a few restaurants in the evening without taking a taxi.",
    "What should we pack for the weather there in October? We will carry only small backpacks on the train, so "
    "please keep the list short and tell us what we can safely leave at home.",
    "Can you suggest a day trip from Porto into the Douro valley? We do not drive, so it has to work with trains "
    "or a small tour, and we would like to visit one vineyard without spending the whole day in a bus.",
    "How much Portuguese should we learn before going? Give us five useful phrases with a rough pronunciation, "
    "and tell us whether people in shops and restaurants usually speak English.",
    "What is a polite way to tip in restaurants and cafes there? And is it normal to ask for the bill, or do "
    "they bring it by themselves when we have finished eating?",
    "Please summarize the plan we made, day by day, in a short list, with the city for each night and the one "
    "thing we should not miss on each day.",
]


def one_round(suite: Suite, turns: int, max_tokens: int) -> list[dict]:
    """The conversation through ``suite``: per turn, its time to first token and its token counts."""
    head, messages, rows = suite.head("generation"), [{"role": "system", "content": SYSTEM}], []
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    for text in MESSAGES[:turns]:
        messages.append({"role": "user", "content": text})
        first: list[float] = []
        started = time.perf_counter()
        done = head.chat(messages, params, lambda _row, _delta, seen=first: seen or seen.append(time.perf_counter()))
        ended = time.perf_counter()
        rows.append(
            {
                "ttft_ms": ((first[0] if first else ended) - started) * 1000,
                "prompt_tokens": done.prompt_tokens,
                "cached_tokens": done.cached_tokens,
                "prefilled_tokens": done.prompt_tokens - done.cached_tokens,
                "reply": done.token_ids,
            }
        )
        messages.append({"role": "assistant", "content": done.text})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=len(MESSAGES))
    parser.add_argument("--max-tokens", type=int, default=100)  # turn 10: ~1,500 tokens with the default model
    out_option(parser, "chat_turns")
    args = parser.parse_args()
    suites = {
        "cache": Suite(model=args.model, precision=args.precision, device="cpu"),
        "no cache": Suite(model=args.model, precision=args.precision, device="cpu", cache_mb=0),
    }
    for suite in suites.values():
        suite.complete("Say hello.", max_tokens=4)  # load and warm up
    runs: dict[str, list[list[dict]]] = {name: [] for name in suites}
    for r in range(args.rounds):
        for name in list(suites)[:: 1 if r % 2 == 0 else -1]:
            if suites[name].prompt_cache is not None:
                suites[name].prompt_cache.clear()
            runs[name].append(one_round(suites[name], args.turns, args.max_tokens))
    same = all(
        [t["reply"] for t in run] == [t["reply"] for t in runs["no cache"][0]] for rs in runs.values() for run in rs
    )
    turns = []
    for i in range(args.turns):
        on, off = ([run[i] for run in runs[name]] for name in ("cache", "no cache"))
        row = {
            "turn": i + 1,
            "prompt_tokens": on[0]["prompt_tokens"],
            "prefilled_cache": on[0]["prefilled_tokens"],
            "prefilled_no_cache": off[0]["prefilled_tokens"],
            "ttft_ms_cache": stats(t["ttft_ms"] for t in on),
            "ttft_ms_no_cache": stats(t["ttft_ms"] for t in off),
        }
        row["ratio"] = row["ttft_ms_cache"]["median"] / row["ttft_ms_no_cache"]["median"]
        turns.append(row)
    columns = ["turn", "prompt tokens", "prefilled (cache)", "TTFT cache ms", "TTFT no cache ms", "ratio"]
    table = [
        (
            t["turn"],
            t["prompt_tokens"],
            t["prefilled_cache"],
            spread(t["ttft_ms_cache"], ".0f"),
            spread(t["ttft_ms_no_cache"], ".0f"),
            f"{t['ratio']:.2f}",
        )  # fmt: skip
        for t in turns
    ]
    show("time to first token per turn of a chat, prompt cache on and off", columns, table)
    print(f"replies identical with and without the cache: {same}")
    meta = {"model": suites["cache"].source.key, "precision": args.precision, "max_tokens": args.max_tokens}
    save({**meta, "replies_identical": same, "turns": turns}, args.out)


if __name__ == "__main__":
    main()
