"""One-off CLI calls in fresh processes, side by side: cold start of `generate`, `sentiment` against `classify`.

Each command runs as its own `python -m nlpsuite` process with the model cached; the commands alternate so
that load changes on a shared machine hit all of them alike. Prints median (min-max) seconds and writes JSON.

    python benchmarks/bench_oneoff.py                 # 5 rounds
    python benchmarks/bench_oneoff.py --runs 9 --out oneoff.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from harness import out_option, save, show, spread

TEXT = "I loved this film: the cast is wonderful and the story kept me guessing."
COMMANDS = {
    "generate --max-tokens 16": ["generate", "Say hello.", "--max-tokens", "16"],
    "sentiment": ["sentiment", TEXT],
    "classify --labels a,b": ["classify", TEXT, "--labels", "a,b"],
}


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nlpsuite", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    out_option(parser, "oneoff")
    args = parser.parse_args()
    for command in COMMANDS.values():  # warm-up: model in the page cache, derived values in the cache
        timed(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(timed(command))
    base = statistics.median(times["classify --labels a,b"])
    table = [(f"`nlpsuite {name}`", spread(v), f"{statistics.median(v) / base:.2f}") for name, v in times.items()]
    show(f"one-off calls, median (min–max) of {args.runs} fresh processes", ["command", "seconds", "× classify"],
         table, markdown=True)  # fmt: skip
    save(times, args.out)


if __name__ == "__main__":
    main()
