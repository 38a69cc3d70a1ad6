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
same with NLPSUITE_HEAD_START=0), generate-no-packed-copy (the same model in a scratch cache of hard links, with
NLPSUITE_PACKED_COPY=0: the weights packed at each load), generate-int8 (`--precision int8`, converted if missing),
help (`generate --help`: must load no model), sentiment (a one-off label task).
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

from harness import out_option, save, show, spread, stats

GENERATE = ["generate", "Say hello.", "--max-tokens", "16"]
SCRATCH = "<a scratch cache>"  # replaced by a cache of hard links to the default model's fp32 files, without its copy
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "generate": (GENERATE, {}),
    "generate-no-head-start": (GENERATE, {"NLPSUITE_HEAD_START": "0"}),
    "generate-no-packed-copy": (GENERATE, {"NLPSUITE_HOME": SCRATCH, "NLPSUITE_PACKED_COPY": "0"}),
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
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    import nlpsuite
    data = {
        "modules": len(sys.modules),
        "rchar": int(io["rchar"]),
        "read_bytes": int(io["read_bytes"]),
        "file_mapped_bytes": rollup.get("Rss", 0) - rollup.get("Anonymous", 0),
        "anonymous_bytes": rollup.get("Anonymous", 0),
        "peak_rss_bytes": int(status["VmHWM"].split()[0]) * 1024,  # ru_maxrss keeps the forking parent's peak
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


def scratch_cache(root: Path) -> Path:
    """A cache holding the default model's fp32 conversion as hard links (no disk used), without its packed copy."""
    from nlpsuite.modelstore.resolve import ensure_model, resolve

    folder = ensure_model(resolve(None))  # converts on a miss
    target = root / "models" / folder.parent.name / folder.name
    target.mkdir(parents=True)
    for path in folder.iterdir():
        if path.is_file():
            os.link(path, target / path.name)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--variants", default=DEFAULT, help=f"comma-separated, of: {', '.join(VARIANTS)}")
    out_option(parser, "coldstart")
    args = parser.parse_args()
    names = args.variants.split(",")
    if unknown := [n for n in names if n not in VARIANTS]:
        sys.exit(f"unknown variant(s): {', '.join(unknown)}")

    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as scratch:
        if any(SCRATCH in VARIANTS[n][1].values() for n in names):
            scratch_cache(Path(scratch))
        for name in names:
            args_, env = VARIANTS[name]
            VARIANTS[name] = (args_, {k: scratch if v == SCRATCH else v for k, v in env.items()})
        report = measure(names, args.runs)
    print_table(report)
    save(report, args.out)


def print_table(report: dict) -> None:
    rows = report["variants"]
    code = {r["nlpsuite"] for r in rows.values()}
    load_before, load_after = report["load_average_before"], report["load_average_after"]
    title = (
        f"cold start, median (min-max) of {report['runs']} fresh processes; load average {load_before[0]:.1f} -> "
        f"{load_after[0]:.1f} on {report['cpus']} CPUs; code: {', '.join(sorted(code))}"
    )
    columns = ["variant", "wall s", "CPU s", "modules", "read() MB", "file pages MB", "peak RSS MB", "page faults"]
    table = [
        (name, spread(r["wall_s"]), f"{r['cpu_s_median']:.2f}", r["modules"], f"{r['rchar'] / 1e6:.1f}",
         f"{r['file_mapped_bytes'] / 1e6:.0f}", f"{r['peak_rss_bytes'] / 1e6:.0f}", r["minflt"] + r["majflt"])
        for name, r in rows.items()
    ]  # fmt: skip
    show(title, columns, table, markdown=True)


def measure(names: list[str], runs_each: int) -> dict:
    load_before = os.getloadavg()
    for name in names:  # warm-up: the model converted and in the page cache, derived values cached
        timed(*VARIANTS[name])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(runs_each):
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
            "wall_s": stats(wall),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in runs[name]),
            "runs": runs[name],
            **counts[name],
        }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "runs": runs_each,
        "python": sys.executable,
        "variants": rows,
    }


if __name__ == "__main__":
    main()
