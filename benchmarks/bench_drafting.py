"""Prompt-lookup drafting per task: the same calls with drafting on and off, side by side in one process.

Prints, per task, wall time and decode tokens/s (median, min-max) with and without drafting, the
speed-up, the acceptance rate and whether the outputs are identical, and writes JSON.

    python benchmarks/bench_drafting.py                      # default model, 3 runs per task and mode
    python benchmarks/bench_drafting.py --runs 5 --out drafting.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

from nlpsuite import Suite
from nlpsuite.runtime import generation

# Article-like texts (written for this benchmark, so they can ship with it): news-style reports with names,
# numbers and phrases that a summary or an answer copies.
ARTICLES = [
    "The city council of Riverton voted on Tuesday to build a new public library on the site of the old "
    "train station. The library will cost 14 million dollars and will open in the spring of 2028. Mayor "
    "Helen Carter said the building will have a children's reading room, a makerspace with 3D printers and "
    "a rooftop garden. The vote passed seven to two. Council member James Ortiz, who voted against the plan, "
    "said the city should first repair the roads on the east side. The old train station closed in 1994 and "
    "has been empty since then. Construction will begin in March and is expected to take two years.",
    "Researchers at the Northern Ocean Institute have found that the water temperature in the Gulf of Maren "
    "rose by 1.2 degrees Celsius over the last ten years. The team, led by Dr. Amira Said, measured the "
    "temperature at forty stations every month since 2015. The warmer water has pushed cod and haddock "
    "further north, and local fishing boats now travel twice as far to reach them. Dr. Said said the "
    "change is faster than the models predicted. The institute will publish the full data set in June and "
    "plans to add twenty new stations along the northern coast next year.",
    "The Lakeside Tigers won the national basketball championship on Sunday, beating the Granite City "
    "Bears 88 to 81 in the final game. Point guard Maya Lindqvist scored 31 points and was named the most "
    "valuable player of the tournament. It is the first title for the Tigers since 2009. Coach Daniel "
    "Brooks said the team had worked for this moment all season. More than 20,000 fans watched the game at "
    "the Central Arena, and the city will hold a parade for the team on Wednesday morning.",
]
QUESTIONS = [
    "What will the new library have?",
    "Who led the research team and what did they measure?",
    "Who was named the most valuable player?",
]
SENTENCES = [
    "The library will cost 14 million dollars and will open in the spring of 2028.",
    "Maya Lindqvist scored 31 points and was named the most valuable player of the tournament.",
    "The institute will publish the full data set in June.",
]
CHATS = [
    "Write a short poem about autumn leaves.",
    "Give me three tips for learning to cook.",
    "What is the difference between weather and climate?",
]
TASKS = {
    "summarize": lambda suite: [suite.run("summarize", a) for a in ARTICLES],
    "ask --generate": lambda suite: [
        suite.run("ask", q, context=a, generate=True) for q, a in zip(QUESTIONS, ARTICLES, strict=True)
    ],
    "translate (fr)": lambda suite: [suite.run("translate", s, to="fr") for s in SENTENCES],
    "chat": lambda suite: [suite.chat(m, max_tokens=128) for m in CHATS],
}


def run_task(suite, call, draft: bool) -> dict:
    """One pass over a task's inputs; the completions' counts are collected from the decoding loop."""
    completions = []
    plain_generate = generation.Generator.generate

    def generate(self, prompts, params, on_text=None, constraints=None):
        done = plain_generate(self, prompts, dataclasses.replace(params, draft=draft), on_text, constraints)
        completions.extend(done)
        return done

    generation.Generator.generate = generate
    try:
        started = time.perf_counter()
        outputs = call(suite)
        wall = time.perf_counter() - started
    finally:
        generation.Generator.generate = plain_generate
    tokens = sum(len(c.token_ids) for c in completions)
    return {
        "wall_s": wall,
        "tokens": tokens,
        "decode_tokens_per_s": statistics.mean(c.decode_tokens_per_s for c in completions),
        "drafted": sum(c.drafted_tokens for c in completions),
        "accepted": sum(c.accepted_tokens for c in completions),
        "outputs": json.dumps(outputs, sort_keys=True, default=str),
    }


def near_ties(suite, tokens: int, width: int) -> dict:
    """Teacher-forced: plain greedy's tokens fed ``width`` at a time (as a verification pass feeds them); counts
    the positions whose argmax differs from the single-step choice, and the closest top-2 margins seen."""
    import numpy as np

    from nlpsuite.runtime.backbone import left_pad
    from nlpsuite.runtime.sampling import SamplingParams

    head, backbone = suite.head("generation"), suite.backbone
    prompts = [head.encode(f"Summarize this article.\n\n{a}") for a in ARTICLES] + [head.encode(c) for c in CHATS]
    positions = flips = 0
    margins = []
    for prompt in prompts:
        plain = head.decoder.generate([prompt], SamplingParams(max_tokens=tokens, ignore_eos=True, draft=False))[0]
        ids, mask, pos = left_pad([prompt], 0)
        step = backbone.forward(ids, mask, pos, backbone.empty_state(1))
        single = [step.logits[0, -1]]
        state, fed = step.state, len(prompt)
        for _ in plain.token_ids[:-1]:  # single steps: what plain greedy computed
            nxt = np.array([[plain.token_ids[fed - len(prompt)]]])
            step = backbone.forward(nxt, np.ones((1, fed + 1), np.int64), np.array([[fed]]), state)
            state, fed = step.state, fed + 1
            single.append(step.logits[0, -1])
        step = backbone.forward(ids, mask, pos, backbone.empty_state(1))
        state, fed, multi = step.state, len(prompt), [step.logits[0, -1]]
        rest = plain.token_ids[:-1]
        for start in range(0, len(rest), width):  # verification passes over the same tokens
            chunk = rest[start : start + width]
            step = backbone.forward(
                np.array([chunk]),
                np.ones((1, fed + len(chunk)), np.int64),
                np.arange(fed, fed + len(chunk))[None],
                state,
                num_logits=len(chunk),
            )
            state, fed = step.state, fed + len(chunk)
            multi.extend(step.logits[0])
        for a, b in zip(single, multi, strict=True):
            top2 = np.sort(a)[-2:]
            margins.append(float(top2[1] - top2[0]))
            flips += int(a.argmax() != b.argmax())
            positions += 1
    return {"positions": positions, "flips": flips, "smallest_margins": sorted(margins)[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, from: " + ", ".join(TASKS))
    parser.add_argument("--out", default="bench_drafting.json")
    parser.add_argument("--near-ties", type=int, default=0, metavar="TOKENS", help="only count near-tie flips")
    args = parser.parse_args()
    suite = Suite(model=args.model, precision=args.precision, device="cpu", cache_mb=0)  # drafting alone
    if args.near_ties:
        found = near_ties(suite, args.near_ties, 5)
        print(
            f"{found['flips']} of {found['positions']} positions choose differently in a 5-token pass; "
            f"smallest top-2 logit margins: {found['smallest_margins']}"
        )
        with open(args.out, "w") as out:
            json.dump(found, out, indent=2)
        return
    results = {}
    for name in args.tasks.split(","):
        call = TASKS[name]
        run_task(suite, call, True)  # warm-up: loads, and builds what the task caches
        runs = {"off": [], "on": []}
        for _ in range(args.runs):  # alternate, so that load changes hit both modes alike
            for mode in ("off", "on"):
                runs[mode].append(run_task(suite, call, mode == "on"))
        results[name] = runs
    print("| task | tokens | wall s off | wall s on | × wall | decode tok/s off | on | × decode | accepted | same |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for name, runs in results.items():
        med = {
            m: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "decode_tokens_per_s")}
            for m, rs in runs.items()
        }
        on = runs["on"][0]
        same = all(r["outputs"] == runs["off"][0]["outputs"] for r in runs["on"] + runs["off"])
        rate = on["accepted"] / on["drafted"] if on["drafted"] else 0.0
        row = {
            "tokens": on["tokens"],
            "wall_s": med,
            "wall_speedup": med["off"]["wall_s"] / med["on"]["wall_s"],
            "decode_speedup": med["on"]["decode_tokens_per_s"] / med["off"]["decode_tokens_per_s"],
            "drafted": on["drafted"],
            "accepted": on["accepted"],
            "acceptance_rate": rate,
            "identical_output": same,
            "wall_range_s": {m: [min(r["wall_s"] for r in rs), max(r["wall_s"] for r in rs)] for m, rs in runs.items()},
        }
        summary[name] = row
        print(
            f"| {name} | {row['tokens']} | {med['off']['wall_s']:.2f} | {med['on']['wall_s']:.2f} | "
            f"{row['wall_speedup']:.2f} | {med['off']['decode_tokens_per_s']:.1f} | "
            f"{med['on']['decode_tokens_per_s']:.1f} | "
            f"{row['decode_speedup']:.2f} | {on['accepted']}/{on['drafted']} ({rate:.0%}) | {'yes' if same else 'NO'} |"
        )
    with open(args.out, "w") as out:
        json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
