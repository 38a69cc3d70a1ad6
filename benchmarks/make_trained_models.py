"""Train all five architectures on one corpus with `nlpsuite train`, each in its own process, and print
a table of validation perplexity (plus the JSON of every run).

    python benchmarks/make_trained_models.py shakespeare.txt --out runs/ -- --epochs 5

Arguments after `--` go to every `nlpsuite train` call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness import save, show

ARCHS = ("ngram", "rnn", "lstm", "gru", "transformer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1 :]
    rows = []
    for arch in args.archs:
        command = ["nlpsuite", "train", str(args.corpus), "--arch", arch, "--out", str(args.out / arch), "--json"]
        started = time.monotonic()
        done = subprocess.run([*command, "--quiet", *extra], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{arch} failed: {done.stderr.strip()}")
        result = json.loads(done.stdout)
        result["wall_s"] = round(time.monotonic() - started, 1)
        rows.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    table = []
    for r in rows:
        minutes = f"{r['wall_s'] / 60:.1f} min" if r["wall_s"] >= 60 else f"{r['wall_s']:.0f} s"
        table.append((r["arch"], f"{r['params']:,}", r["epochs"], f"{r['train_loss']:.3f}", f"{r['val_loss']:.3f}",
                      f"{r['val_perplexity']:.2f}", f"{r['val_bits_per_char']:.3f}", minutes))  # fmt: skip
    columns = ["arch", "parameters", "epochs", "train loss", "val loss (nats/token)", "val perplexity", "bits/char",
               "time"]  # fmt: skip
    show(f"{args.corpus.name}: trained models", columns, table, markdown=True)
    save(rows, args.out / "trained.json")


if __name__ == "__main__":
    main()
