"""Records per second through Ray against local batch mode: a label task (sentiment) and `index add`.

Runs, in one process: local batch mode (one Suite, NLPSUITE_THREADS=1), then the same work on a local
Ray cluster (loopback, as many CPUs as this machine) with 1 and 2 actors of 1 thread each. The texts are
docstrings of the Python standard library that runs this script, so every machine has them. A Ray run's
time includes starting its actors (each loads the model). For the label task, Ray's fixed cost (``fixed``:
actors started, model loaded, one batch run) is timed on a one-batch input; the 1-actor rate past it
(``after/s``) against the local rate is Ray's per-record overhead, printed last.

    python benchmarks/bench_ray.py [--model M] [--records 2000] [--passages 100] [--out results/ray.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tempfile
from pathlib import Path

from harness import out_option, save, show, stdlib_documents, timed


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


def bench_label(args, suite, folder: Path) -> list[dict]:
    """Sentiment over ``args.records`` records: local batch mode, then Ray with 1 and 2 actors.

    Ray's fixed cost (actors started, model loaded, one batch run) is measured on a run of one batch, after a
    warm-up run of the same; the 1-actor rate past it (``marginal_per_s``) against the local rate is Ray's
    per-record overhead.
    """
    from nlpsuite import distributed
    from nlpsuite.cli.batch import run_batch

    task = suite.task("sentiment")
    options = task.check_options({})
    texts = sentences(args.records)
    source, small = folder / "records.jsonl", folder / "one-batch.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    small.write_text("".join(source.read_text().splitlines(keepends=True)[: task.batch_size]))
    task.run(suite, [{"text": "warm up"}], **options)  # the content-free prior is computed once per Suite

    def process(records):
        return [task.batch_fields(r) for r in task.run(suite, task.batch_inputs(records, {}), **options)]

    seconds, _ = timed(lambda: run_batch(source, folder / "local.jsonl", process, task.batch_size, quiet=True))
    rows = [{"work": "sentiment", "runner": "local batch", "workers": 1, "items": args.records, "seconds": seconds}]
    labels = [json.loads(line)["label"] for line in (folder / "local.jsonl").read_text().splitlines()]

    def on_ray(workers: int, records: Path, out: Path) -> float:
        pool = distributed.Pool(model=args.model, device="cpu", workers=workers, threads=1)
        work = (task, records, out, pool)
        return timed(lambda: distributed.run_task(*work, options=options, batch_size=task.batch_size, force=True))[0]

    on_ray(1, small, folder / "warm-up.jsonl")  # Ray Data's and the worker pool's first-use costs
    fixed = on_ray(1, small, folder / "one-batch-out.jsonl")
    for workers in (1, 2):
        out = folder / f"ray-{workers}.jsonl"
        seconds = on_ray(workers, source, out)
        same = [json.loads(line)["label"] for line in out.read_text().splitlines()] == labels
        row = {"work": "sentiment", "runner": "ray", "workers": workers, "items": args.records, "seconds": seconds,
               "same_labels": same}  # fmt: skip
        if workers == 1:
            row.update(fixed=fixed, marginal_per_s=(args.records - task.batch_size) / max(seconds - fixed, 1e-9))
        rows.append(row)
    return rows


def bench_index(args, suite, folder: Path) -> list[dict]:
    from nlpsuite import distributed, retrieval

    docs_dir = folder / "docs"
    docs_dir.mkdir()
    stdlib_documents(docs_dir, args.passages, suite.tokenizer.count, retrieval.MAX_TOKENS)
    docs = retrieval.read_documents([docs_dir])
    seconds, counts = timed(lambda: retrieval.add_documents(suite, "bench-ray-local", docs))
    passages = counts["passages"]
    rows = [{"work": "index add", "runner": "local", "workers": 1, "items": passages, "seconds": seconds}]
    for workers in (1, 2):
        pool = distributed.Pool(model=args.model, device="cpu", workers=workers, threads=1)
        embed = distributed.embedder(pool, retrieval.EMBED_SLICE)
        name = f"bench-ray-{workers}"
        seconds, _ = timed(lambda n=name, e=embed: retrieval.add_documents(suite, n, docs, embed=e))
        rows.append({"work": "index add", "runner": "ray", "workers": workers, "items": passages, "seconds": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--passages", type=int, default=100, help="documents to index (each one or more passages)")
    out_option(parser, "ray")
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
                retrieval.index.remove(name)

    local = {r["work"]: r for r in rows if r["runner"] != "ray"}
    one = {r["work"]: r for r in rows if r["runner"] == "ray" and r["workers"] == 1}
    for r in rows:
        r["per_s"] = r["items"] / r["seconds"]
        if r["runner"] == "ray":
            r["vs_local"] = r["per_s"] / local[r["work"]]["per_s"]
            r["vs_one_worker"] = one[r["work"]]["seconds"] / r["seconds"]
    table = []
    for r in rows:
        fixed, after = (f"{r[k]:.1f}" if r.get(k) is not None else "" for k in ("fixed", "marginal_per_s"))
        ray_cols = (f"{r['vs_local']:.2f}x", f"{r['vs_one_worker']:.2f}x") if r["runner"] == "ray" else ("", "")
        table.append((r["work"], r["runner"], r["workers"], r["items"], f"{r['seconds']:.1f}", f"{r['per_s']:.2f}",
                      fixed, after, *ray_cols))  # fmt: skip
    columns = ["work", "runner", "workers", "items", "seconds", "per s", "fixed s", "after/s", "vs local", "vs 1"]
    show(f"{args.model} through Ray and locally, {os.cpu_count()} CPUs", columns, table)
    ray_one, here = one["sentiment"], local["sentiment"]
    overhead = {
        "records": ray_one["items"],
        "local_ms_per_record": 1000 / here["per_s"],
        "ray_ms_per_record_after_fixed": 1000 / ray_one["marginal_per_s"],
        "fixed_s": ray_one["fixed"],
        "overhead": here["per_s"] / ray_one["marginal_per_s"] - 1,
    }
    print(f"Ray's per-record overhead at {overhead['records']} records (1 worker, past its fixed "
          f"{overhead['fixed_s']:.1f} s): {overhead['ray_ms_per_record_after_fixed']:.1f} ms vs "
          f"{overhead['local_ms_per_record']:.1f} ms locally = {100 * overhead['overhead']:+.1f}%")  # fmt: skip
    save({"model": args.model, "cpus": os.cpu_count(), "rows": rows, "ray_overhead": overhead}, args.out)


if __name__ == "__main__":
    main()
