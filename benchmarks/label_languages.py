"""Zero-shot labels in any language: classify's two readings of a label (the text under each label's prefix, the
label as the model's reply) and their sum (what `classify` returns), beside the `sentiment` task on the same
texts. One pass per text scores all three, so before/after compare on exactly the same inputs. Bring the model
and the data; development sets belong outside the repository.

    python benchmarks/label_languages.py --model MODEL SET.jsonl [SET.jsonl ...] [--sentiment] [--out FILE.json]

Each SET.jsonl holds records {"text", "label"}; its labels (in any language) are the label set. With
--sentiment, SET_sentiment.jsonl beside it (the same texts, labels positive/negative) is run through the
`sentiment` task. Prints one row per set; --out also keeps each text's raw scores (to fit a temperature on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(suite, path: Path, sentiment: bool) -> dict:
    from nlpsuite_plugins.classify import CHANNEL_SCALE, _tasks

    rows = read(path)
    labels = sorted({r["label"] for r in rows})
    gold = np.array([labels.index(r["label"]) for r in rows])
    tasks, start = _tasks(suite), time.perf_counter()
    channel, direct = [], []
    for n, r in enumerate(rows, 1):
        channel.append(tasks.channel_scores([r["text"]], labels)[0])
        direct.append(tasks._scores(tasks.question(labels), "", [r["text"]], labels)[0])
        if n % 10 == 0:
            print(f"{path.name}: {n}/{len(rows)}", file=sys.stderr, flush=True)
    raw_channel, direct = np.array(channel), np.array(direct)
    channel = raw_channel / CHANNEL_SCALE
    picks = lambda scores: np.bincount(scores.argmax(1), minlength=len(labels)).tolist()  # noqa: E731
    out = {
        "set": path.name,
        "n": len(rows),
        "labels": labels,
        "channel (before)": float((channel.argmax(1) == gold).mean()),
        "reply": float((direct.argmax(1) == gold).mean()),
        "sum (now)": float(((channel + direct).argmax(1) == gold).mean()),
        "picks before": picks(channel),
        "picks now": picks(channel + direct),
        # the channel per square root of the text's tokens (before CHANNEL_SCALE) and the reply's calibrated scores
        "raw": {"gold": gold.tolist(), "channel": raw_channel.tolist(), "reply": direct.tolist()},
        "channel_scale": CHANNEL_SCALE,
    }
    if sentiment:
        gold_s = [r["label"] for r in read(path.with_name(path.stem + "_sentiment.jsonl"))]
        got = [r["label"] for r in suite.sentiment([r["text"] for r in rows])]
        out["sentiment"] = float(np.mean([a == b for a, b in zip(got, gold_s, strict=True)]))
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--sentiment", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from nlpsuite import Suite

    suite = Suite(model=args.model, device="cpu")
    print(f"{'set':28s} {'n':>4s} {'before':>7s} {'reply':>7s} {'now':>7s} {'sentiment':>9s}")
    results = []
    for path in args.sets:  # each row as soon as its set is done: long runs on a busy machine
        r = measure(suite, path, args.sentiment)
        results.append(r)
        sentiment = f"{r['sentiment']:.3f}" if "sentiment" in r else "-"
        print(
            f"{r['set']:28s} {r['n']:4d} {r['channel (before)']:7.3f} {r['reply']:7.3f} {r['sum (now)']:7.3f} "
            f"{sentiment:>9s}   picks {r['picks before']} -> {r['picks now']}",
            flush=True,
        )
        if args.out:
            args.out.write_text(json.dumps({"model": args.model, "results": results}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
