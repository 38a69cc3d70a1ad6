"""Records per second through Ray against local batch mode: a label task (sentiment) and `index add`.

Runs, in one process: local batch mode (one Suite, NLPSUITE_THREADS=1), then the same work on a local
Ray cluster (loopback, as many CPUs as this machine) with 1 and 2 actors of 1 thread each. The texts are
docstrings of the Python standard library that runs this script, so every machine has them. A Ray run's
time includes starting its actors (each loads the model); for the label task ``startup`` is the time
until the first batch came back and ``steady`` the rate after it.

    python benchmarks/bench_ray.py [--model M] [--records 2000] [--passages 300] [--out results/ray.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import stdlib_documents  # noqa: E402 - a sibling script, not a package


def sentences(count: int) -> list[str]:
    """``count`` short English texts (first sentences of stdlib docstrings), repeated if need be."""
    with tempfile.TemporaryDirectory() as folder:
        stdlib_documents(Path(folder), count, lambda text: len(text.split()), 100)
        texts = [p.read_text(encoding="utf-8") for p in sorted(Path(folder).glob("*.txt"))]
    found = []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            if 6 <= len(sentence.split()) <= 40:
                found.append(sentence)
    return [found[i % len(found)] for i in range(count)]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


class Clock:
    """A progress callback that notes when the first batch came back and how many items it held."""

    def __init__(self) -> None:
        self.start, self.first, self.first_items = time.perf_counter(), None, 0

    def __call__(self, n: int = 0, total: int | None = None) -> None:
        if self.first is None:
            self.first, self.first_items = time.perf_counter(), n

    def row(self, seconds: float, items: int) -> dict:
        """``startup``: until the first batch came back (actors started, model loaded, first batch run);
        ``steady_per_s``: the rate after it."""
        startup = self.first - self.start
        return {"startup": startup, "steady_per_s": (items - self.first_items) / max(seconds - startup, 1e-9)}


def bench_label(args, suite, folder: Path) -> list[dict]:
    from nlpsuite import distributed
    from nlpsuite.cli.batch import run_batch

    task = suite.task("sentiment")
    options = task.check_options({})
    source = folder / "records.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(sentences(args.records))))
    task.run(suite, [{"text": "warm up"}], **options)  # the content-free prior is computed once per Suite

    def process(records):
        return [task.batch_fields(r) for r in task.run(suite, task.batch_inputs(records, {}), **options)]

    seconds, _ = timed(run_batch, source, folder / "local.jsonl", process, task.batch_size, quiet=True)
    rows = [{"work": "sentiment", "runner": "local batch", "workers": 1, "items": args.records, "seconds": seconds}]
    for workers in (1, 2):
        pool = distributed.Pool(model=args.model, device="cpu", workers=workers, threads=1)
        out, clock = folder / f"ray-{workers}.jsonl", Clock()
        seconds, _ = timed(distributed.run_task, task, source, out, pool, options=options,
                           batch_size=task.batch_size, progress=clock)  # fmt: skip
        same = [json.loads(line)["label"] for line in out.read_text().splitlines()] == [
            json.loads(line)["label"] for line in (folder / "local.jsonl").read_text().splitlines()
        ]
        rows.append({"work": "sentiment", "runner": "ray", "workers": workers, "items": args.records,
                     "seconds": seconds, "same_labels": same, **clock.row(seconds, args.records)})  # fmt: skip
    return rows


def bench_index(args, suite, folder: Path) -> list[dict]:
    from nlpsuite import distributed, retrieval

    docs_dir = folder / "docs"
    docs_dir.mkdir()
    stdlib_documents(docs_dir, args.passages, suite.tokenizer.count, retrieval.MAX_TOKENS)
    docs = retrieval.read_documents([docs_dir])
    seconds, counts = timed(retrieval.add_documents, suite, "bench-ray-local", docs)
    passages = counts["passages"]
    rows = [{"work": "index add", "runner": "local", "workers": 1, "items": passages, "seconds": seconds}]
    for workers in (1, 2):
        pool = distributed.Pool(model=args.model, device="cpu", workers=workers, threads=1)
        embed = distributed.embedder(pool, retrieval.EMBED_SLICE)
        seconds, _ = timed(retrieval.add_documents, suite, f"bench-ray-{workers}", docs, embed=embed)
        # no startup/steady split: a few large blocks come back nearly together, so the first says little
        rows.append({"work": "index add", "runner": "ray", "workers": workers, "items": passages,
                     "seconds": seconds, "startup": None, "steady_per_s": None})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("results/ray.json"))
    args = parser.parse_args()
    os.environ["NLPSUITE_THREADS"] = "1"  # local batch mode gets what each actor gets

    import ray

    from nlpsuite import retrieval
    from nlpsuite.api import Suite

    suite = Suite(model=args.model, device="cpu")
    suite.backbone  # noqa: B018 - converted and loaded before any clock starts
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as temp:
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp, log_to_driver=False,
                 logging_level=logging.WARNING)  # fmt: skip
        try:
            with tempfile.TemporaryDirectory() as work:
                rows = bench_label(args, suite, Path(work)) + bench_index(args, suite, Path(work))
        finally:
            ray.shutdown()
            for name in ("bench-ray-local", "bench-ray-1", "bench-ray-2"):
                retrieval.store.remove(name)

    local = {r["work"]: r for r in rows if r["runner"] != "ray"}
    one = {r["work"]: r for r in rows if r["runner"] == "ray" and r["workers"] == 1}
    for r in rows:
        r["per_s"] = r["items"] / r["seconds"]
        if r["runner"] == "ray":
            r["vs_local"] = r["per_s"] / (local[r["work"]]["items"] / local[r["work"]]["seconds"])
            r["vs_one_worker"] = one[r["work"]]["seconds"] / r["seconds"]
    print(f"{'work':<10} {'runner':<12} {'workers':>7} {'items':>6} {'seconds':>8} {'per s':>7} {'steady/s':>8} "
          f"{'startup s':>9} {'vs local':>8} {'vs 1':>5}")  # fmt: skip
    for r in rows:
        steady, startup = (f"{r[k]:.1f}" if r.get(k) is not None else "" for k in ("steady_per_s", "startup"))
        ray_cols = (
            f"{steady:>8} {startup:>9} {r['vs_local']:>7.2f}x {r['vs_one_worker']:>4.2f}x"
            if r["runner"] == "ray"
            else f"{'':>8} {'':>9} {'':>8} {'':>5}"
        )
        print(f"{r['work']:<10} {r['runner']:<12} {r['workers']:>7} {r['items']:>6} {r['seconds']:>8.1f} "
              f"{r['per_s']:>7.1f} {ray_cols}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
