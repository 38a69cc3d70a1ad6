"""Load-independent measures of prompt-lookup drafting: what a pass costs, and how many passes each task takes.

    NLPSUITE_THREADS=1 python benchmarks/bench_drafting_cost.py cost   # cost(P)/cost(1), P = 1..12, one pass
                         # over P new positions on a 300-position cache (results/drafting_cost_cost.json)
    python benchmarks/bench_drafting_cost.py passes [--table results/drafting_cost_cost.json]   # per task (the
                         # inputs bench_drafting.py times): passes with drafting on and off, and the speed-up implied

Wall-clock speed-ups need an idle machine (bench_drafting.py); these do not. `cost` takes the median process CPU
time of interleaved repetitions (with one thread, the work a pass does whatever else runs); `passes` only counts,
and prices each pass at cost(positions fed): by default 1 + 0.065 (P - 1), this machine's fit (2026-11-29: P=5
1.25-1.28, P=8 1.43-1.53, P=12 1.57-1.73, in single-thread CPU time and in two-thread minimum wall time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
from harness import DRAFTING_TASKS, RESULTS, save, show

from nlpsuite import Suite
from nlpsuite.runtime import generation


def measure_cost(suite, cache: int, rounds: int, widths: list[int]) -> dict[int, float]:
    """cost(P)/cost(1): one pass feeding P new positions onto the same ``cache``-position state, P order shuffled
    every round; the median CPU time per P."""
    backbone, rng = suite.backbone, np.random.default_rng(0)
    prompt = rng.integers(100, 30000, (1, cache))
    state = backbone.forward(prompt, np.ones((1, cache), np.int64), np.arange(cache)[None], backbone.empty_state(1))
    times: dict[int, list[float]] = {p: [] for p in widths}
    for r in range(rounds + 2):  # the first two rounds warm up
        for p in random.Random(r).sample(widths, len(widths)):
            ids, mask = rng.integers(100, 30000, (1, p)), np.ones((1, cache + p), np.int64)
            started = time.process_time()
            backbone.forward(ids, mask, np.arange(cache, cache + p)[None], state.state, num_logits=p)
            if r >= 2:
                times[p].append(time.process_time() - started)
    one = statistics.median(times[1])
    return {p: statistics.median(t) / one for p, t in times.items()}


def count_passes(suite, call, draft: bool) -> dict:
    """The positions fed by each decoding pass (prefill excluded) of one run over a task's inputs."""
    widths: list[int] | None = None
    passes: list[int] = []
    drafted = accepted = 0
    forward = suite.backbone.forward
    plain_generate = generation.Generator.generate

    def counting_forward(input_ids, *args, **kwargs):
        if widths is not None and kwargs.get("num_logits", 1) == input_ids.shape[1]:  # decode passes only
            widths.append(input_ids.shape[1])
        return forward(input_ids, *args, **kwargs)

    def generate(self, prompts, params, on_text=None, constraints=None):
        nonlocal widths, drafted, accepted
        widths = []
        try:
            done = plain_generate(self, prompts, dataclasses.replace(params, draft=draft), on_text, constraints)
        finally:
            passes.extend(widths)
            widths = None
        drafted, accepted = drafted + done[0].drafted_tokens, accepted + done[0].accepted_tokens
        return done

    suite.backbone.forward = counting_forward
    generation.Generator.generate = generate
    try:
        outputs = call(suite)
    finally:
        del suite.backbone.forward
        generation.Generator.generate = plain_generate
    return {"passes": passes, "drafted": drafted, "accepted": accepted, "outputs": json.dumps(outputs, default=str)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cost", "passes"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--cache", type=int, default=300, help="cost: positions already in the cache")
    parser.add_argument("--rounds", type=int, default=60, help="cost: repetitions of each width")
    parser.add_argument("--table", help="passes: a JSON {P: cost(P)/cost(1)} written by `cost --out`")
    tasks = ", ".join(DRAFTING_TASKS)
    parser.add_argument("--tasks", default=",".join(DRAFTING_TASKS), help="passes: comma-separated, from: " + tasks)
    parser.add_argument("--out", help="the JSON report (default: benchmarks/results/drafting_cost_MODE.json)")
    args = parser.parse_args()
    suite = Suite(model=args.model, device="cpu", cache_mb=0)  # drafting alone: every prompt prefilled
    if args.mode == "cost":
        table = measure_cost(suite, args.cache, args.rounds, list(range(1, 13)))
        rows = [(p, f"{c:.3f}") for p, c in table.items()]
        show("cost of a pass feeding P positions", ["P", "cost(P)/cost(1)"], rows, markdown=True)
        result = table
    else:
        table = {int(p): c for p, c in json.loads(Path(args.table).read_text()).items()} if args.table else {}

        def cost(p: int) -> float:
            return table.get(p, 1 + 0.065 * (p - 1))

        result, rows = {}, []
        for name in args.tasks.split(","):
            off, on = (count_passes(suite, DRAFTING_TASKS[name], draft) for draft in (False, True))
            tokens = len(off["passes"])  # without drafting, one decoded token per pass
            row = {
                "decode_tokens": tokens,
                "passes": len(on["passes"]),
                "positions": sum(on["passes"]),
                "drafted": on["drafted"],
                "accepted": on["accepted"],
                "estimated_speedup": sum(map(cost, off["passes"])) / sum(map(cost, on["passes"])),
                "identical_output": on["outputs"] == off["outputs"],
            }
            result[name] = row
            rows.append((
                name, tokens, row["passes"], row["positions"], f"{row['accepted']}/{row['drafted']}",
                f"{row['estimated_speedup']:.2f}", "yes" if row["identical_output"] else "NO",
            ))  # fmt: skip
        columns = ["task", "decode tokens", "passes on", "positions on", "accepted/drafted", "est. decode ×", "same"]
        show("drafting's passes per task", columns, rows, markdown=True)
    save(result, args.out or RESULTS / f"drafting_cost_{args.mode}.json")


if __name__ == "__main__":
    main()
