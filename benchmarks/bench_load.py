"""What building the ONNX Runtime session of a cached model costs, by the form the model is kept in on disk.

Each variant loads in a fresh process (model files in the page cache after a warm-up), then runs a 31-token
prefill and 15 greedy decode steps, so a form that loads faster but decodes slower shows it. Variants:

- packed copy: the CPU copy with ONNX Runtime's pre-packed weights (runtime/prepacked.py), no optimization
- portable: the converted model as it is; ONNX Runtime optimizes the graph and packs the weights at load
- saved graph: the graph optimized once and saved (weights written again), packed at load
- no prepacking: the portable model with session.disable_prepacking (loads fastest, decodes slower)

Session CPU seconds are the steadier measure on a shared machine; wall seconds are what a user waits.

    python benchmarks/bench_load.py                   # default model, 5 rounds
    python benchmarks/bench_load.py --runs 9 --out load.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import out_option, save, show, spread, stats

WORKER = """
import json, os, resource, sys, time
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
import numpy as np
import onnxruntime as ort
path, level, extra, manifest = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.load(open(sys.argv[4]))
options = ort.SessionOptions()
options.log_severity_level = 4
options.enable_mem_reuse = False  # as nlpsuite's sessions (runtime/backbone.py)
options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
for key, value in extra.items():
    options.add_session_config_entry(key, value)
wall, cpu = time.perf_counter(), time.process_time()
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
names = {i.name for i in session.get_inputs()}
spec = manifest["state"]
state = {s["input"]: np.zeros([1, *[0 if d is None else d for d in s["shape"][1:]]], np.float32) for s in spec}
outputs = ["logits"] + [s["output"] for s in spec]

def step(ids, past):
    feed = {"input_ids": ids, "attention_mask": np.ones((1, past + ids.shape[1]), np.int64),
            "position_ids": np.arange(past, past + ids.shape[1], dtype=np.int64)[None],
            "num_logits_to_keep": np.array(1, np.int64), **state}
    out = session.run(outputs, {k: v for k, v in feed.items() if k in names})
    state.update({s["input"]: v for s, v in zip(spec, out[1:])})
    return int(out[0][0, -1].argmax())

start = time.perf_counter()
tokens = [step(np.arange(100, 131, dtype=np.int64)[None], 0)]
prefill = time.perf_counter() - start
start = time.perf_counter()
for past in range(31, 46):
    tokens.append(step(np.array([[tokens[-1]]], np.int64), past))
decode = 15 / (time.perf_counter() - start)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"session_s": wall, "session_cpu_s": cpu, "prefill_s": prefill, "decode_tok_s": decode,
                  "peak_rss_mb": rss, "tokens": tokens}))
"""


def save_optimized(portable: Path, out: Path) -> None:
    """The graph optimized as a session would, saved with its weights (no pre-packed weights)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.enable_mem_reuse = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(out / "model.onnx")
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "model.onnx.data")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(portable), options, providers=["CPUExecutionProvider"])


def disk_mb(graph: Path) -> float:
    return sum(f.stat().st_size for f in graph.parent.glob("model.onnx*")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--runs", type=int, default=5)
    out_option(parser, "load")
    args = parser.parse_args()

    from nlpsuite import Suite

    suite = Suite(model=args.model, device="cpu")
    folder = suite.backbone.folder  # converts on a miss and writes the packed copy if the rule allows it
    if suite.precision != "fp32":
        sys.exit("the packed copy is fp32-only")
    packed = sorted(folder.glob("cpu-*/model.onnx"))
    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    save_optimized(folder / "model.onnx", scratch)
    variants = {
        "portable (optimize + pack at load)": (folder / "model.onnx", "ORT_ENABLE_ALL", {}),
        "saved optimized graph (pack at load)": (scratch / "model.onnx", "ORT_DISABLE_ALL", {}),
        "no prepacking": (folder / "model.onnx", "ORT_ENABLE_ALL", {"session.disable_prepacking": "1"}),
    }
    if packed:
        variants = {"packed copy": (packed[0], "ORT_DISABLE_ALL", {}), **variants}
    manifest = str(folder / "manifest.json")

    def run(name: str) -> dict:
        path, level, extra = variants[name]
        cmd = [sys.executable, "-c", WORKER, str(path), level, json.dumps(extra), manifest]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    for name in variants:  # warm-up: every file in the page cache
        run(name)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.runs):  # alternating, so load changes on a shared machine hit every variant alike
        for name in variants:
            results[name].append(run(name))

    first = results[next(iter(variants))][0]["tokens"]
    rows = {}
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "tokens"}
        rows[name] = {
            **med,
            "session": stats(r["session_s"] for r in runs),
            "extra_disk_mb": 0.0 if variants[name][0] == folder / "model.onnx" else disk_mb(variants[name][0]),
            "tokens_equal": runs[0]["tokens"] == first,
        }
    report = {"model": args.model, "runs": args.runs, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "load_average": os.getloadavg(), "variants": rows}  # fmt: skip
    title = (f"{args.model}: session load by form on disk, median of {args.runs} fresh processes "
             f"(load average {report['load_average'][0]:.1f} on {report['cpus']} CPUs)")  # fmt: skip
    columns = ["form on disk", "MB beside the portable model", "session CPU s", "session s (min-max)",
               "prefill 31 tok s", "decode tok/s", "same tokens"]  # fmt: skip
    table = [
        (name, f"{r['extra_disk_mb']:.0f}", f"{r['session_cpu_s']:.2f}", spread(r["session"]), f"{r['prefill_s']:.3f}",
         f"{r['decode_tok_s']:.1f}", "yes" if r["tokens_equal"] else "NO")
        for name, r in rows.items()
    ]  # fmt: skip
    show(title, columns, table, markdown=True)
    save(report, args.out)


if __name__ == "__main__":
    main()
