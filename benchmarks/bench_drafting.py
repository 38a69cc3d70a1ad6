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

from harness import ARTICLES, CHATS, DRAFTING_TASKS, out_option, save, show

from nlpsuite import Suite
from nlpsuite.runtime import generation


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
    tasks = ", ".join(DRAFTING_TASKS)
    parser.add_argument("--tasks", default=",".join(DRAFTING_TASKS), help="comma-separated, from: " + tasks)
    out_option(parser, "drafting")
    parser.add_argument("--near-ties", type=int, default=0, metavar="TOKENS", help="only count near-tie flips")
    args = parser.parse_args()
    suite = Suite(model=args.model, precision=args.precision, device="cpu", cache_mb=0)  # drafting alone
    if args.near_ties:
        found = near_ties(suite, args.near_ties, 5)
        print(
            f"{found['flips']} of {found['positions']} positions choose differently in a 5-token pass; "
            f"smallest top-2 logit margins: {found['smallest_margins']}"
        )
        save(found, args.out)
        return
    results = {}
    for name in args.tasks.split(","):
        call = DRAFTING_TASKS[name]
        run_task(suite, call, True)  # warm-up: loads, and builds what the task caches
        runs = {"off": [], "on": []}
        for _ in range(args.runs):  # alternate, so that load changes hit both modes alike
            for mode in ("off", "on"):
                runs[mode].append(run_task(suite, call, mode == "on"))
        results[name] = runs
    summary, rows = {}, []
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
        rows.append((
            name, row["tokens"], f"{med['off']['wall_s']:.2f}", f"{med['on']['wall_s']:.2f}",
            f"{row['wall_speedup']:.2f}",
            f"{med['off']['decode_tokens_per_s']:.1f}", f"{med['on']['decode_tokens_per_s']:.1f}",
            f"{row['decode_speedup']:.2f}", f"{on['accepted']}/{on['drafted']} ({rate:.0%})", "yes" if same else "NO",
        ))  # fmt: skip
    columns = ["task", "tokens", "wall s off", "wall s on", "× wall", "decode tok/s off", "on", "× decode", "accepted"]
    show(f"drafting off/on, median of {args.runs} runs", [*columns, "same"], rows, markdown=True)
    save(summary, args.out)


if __name__ == "__main__":
    main()
