"""Cold start of one-off CLI calls: a whole fresh `nlpsuite` process, timed from outside, model already cached.

Each variant runs as its own `python -m nlpsuite` process; the variants alternate so that load changes on a shared
machine hit all of them alike. Seconds are what a user waits, and move with the machine's load (printed with the
table); the counts beside them do not: CPU seconds of the process, modules imported, bytes read with read() and
file pages mapped in (weights, libraries), page faults, peak RSS. Counts come from one extra run of each variant
inside a small wrapper that reads them at exit (/proc/self/io, /proc/self/smaps_rollup, sys.modules).

    python benchmarks/bench_coldstart.py                       # 7 rounds of the default variants
    python benchmarks/bench_coldstart.py --runs 9 --variants generate,generate-no-head-start,generate-int8
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_coldstart.py   # another checkout's code, same model

Variants: generate (`generate "Say hello." --max-tokens 16`, the cold-start target), generate-no-head-start (the
same with NLPSUITE_HEAD_START=0), generate-int8 (`--precision int8`, converted if missing), help (`generate
--help`: must load no model), sentiment (a one-off label task).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATE = ["generate", "Say hello.", "--max-tokens", "16"]
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "generate": (GENERATE, {}),
    "generate-no-head-start": (GENERATE, {"NLPSUITE_HEAD_START": "0"}),
    "generate-int8": ([*GENERATE, "--precision", "int8"], {}),
    "help": (["generate", "--help"], {}),
    "sentiment": (["sentiment", "I loved this film: the cast is wonderful."], {}),
}
DEFAULT = "generate,generate-no-head-start,help"

# Runs nlpsuite as `python -m nlpsuite` does, then writes what the process read and imported to $BENCH_COUNTS.
WRAPPER = r"""
import atexit, json, os, resource, runpy, sys

def counts():
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines() if line)
    rollup = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if parts[0].endswith(":") and len(parts) >= 2 and parts[1].isdigit():
            rollup[parts[0][:-1]] = int(parts[1]) * 1024
    usage = resource.getrusage(resource.RUSAGE_SELF)
    import nlpsuite
    data = {
        "modules": len(sys.modules),
        "rchar": int(io["rchar"]),
        "read_bytes": int(io["read_bytes"]),
        "file_mapped_bytes": rollup.get("Rss", 0) - rollup.get("Anonymous", 0),
        "anonymous_bytes": rollup.get("Anonymous", 0),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "minflt": usage.ru_minflt,
        "majflt": usage.ru_majflt,
        "nlpsuite": os.path.dirname(nlpsuite.__file__),
        "onnxruntime_loaded": "onnxruntime" in sys.modules,
    }
    with open(os.environ["BENCH_COUNTS"], "w") as out:
        json.dump(data, out)

atexit.register(counts)
sys.argv = ["nlpsuite", *sys.argv[1:]]
runpy.run_module("nlpsuite", run_name="__main__", alter_sys=True)
"""


def timed(args: list[str], env: dict[str, str]) -> dict:
    """Wall seconds, CPU seconds and page faults of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nlpsuite", *args], capture_output=True, env={**os.environ, **env})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"nlpsuite {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "minflt": after.ru_minflt - before.ru_minflt,
    }


def counted(args: list[str], env: dict[str, str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-c", WRAPPER, *args]
        done = subprocess.run(cmd, capture_output=True, env={**os.environ, **env, "BENCH_COUNTS": out.name})
        if done.returncode != 0:
            sys.exit(f"nlpsuite {' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
        return json.loads(Path(out.name).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--variants", default=DEFAULT, help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "coldstart.json"))
    args = parser.parse_args()
    names = args.variants.split(",")
    if unknown := [n for n in names if n not in VARIANTS]:
        sys.exit(f"unknown variant(s): {', '.join(unknown)}")

    load_before = os.getloadavg()
    for name in names:  # warm-up: the model converted and in the page cache, derived values cached
        timed(*VARIANTS[name])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.runs):
        for name in names:
            runs[name].append(timed(*VARIANTS[name]))
    counts = {name: counted(*VARIANTS[name]) for name in names}
    load_after = os.getloadavg()

    rows = {}
    for name in names:
        wall = [r["wall_s"] for r in runs[name]]
        rows[name] = {
            "command": "nlpsuite " + " ".join(VARIANTS[name][0]),
            "env": VARIANTS[name][1],
            "wall_s_median": statistics.median(wall),
            "wall_s_min": min(wall),
            "wall_s_max": max(wall),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in runs[name]),
            "runs": runs[name],
            **counts[name],
        }
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "runs": args.runs,
        "python": sys.executable,
        "variants": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    code = {r["nlpsuite"] for r in rows.values()}
    print(
        f"cold start, median (min-max) of {args.runs} fresh processes; load average {load_before[0]:.1f} -> "
        f"{load_after[0]:.1f} on {report['cpus']} CPUs; code: {', '.join(sorted(code))}"
    )
    print("| variant | wall s | CPU s | modules | read() MB | file pages MB | peak RSS MB | page faults |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['wall_s_median']:.2f} ({r['wall_s_min']:.2f}-{r['wall_s_max']:.2f}) "
            f"| {r['cpu_s_median']:.2f} | {r['modules']} | {r['rchar'] / 1e6:.1f} | {r['file_mapped_bytes'] / 1e6:.0f} "
            f"| {r['peak_rss_bytes'] / 1e6:.0f} | {r['minflt'] + r['majflt']} |"
        )
    print(f"\nJSON written to {out}")


if __name__ == "__main__":
    main()
