"""Fit a confidence model on measured development signals and report the held-out numbers on measured test
signals (what `nlpsuite calibrate` and `eval` compute), and for ask main's decision rule on the same measurements
(BASE=a real `eval qa --predictions` file of main checks that the rule reproduces it).

    python benchmarks/quality_confidence_fit.py qa dev_span.m.jsonl test_span.m.jsonl
"""

import json
import sys
from pathlib import Path

import numpy as np

from nlpsuite.eval import calibration, confidence
from nlpsuite.eval.run import check_options, find
from nlpsuite.plugins import registry

task = find(registry().tasks, sys.argv[1])
recipe = task.confidence
given = dict(a.split("=", 1) for a in sys.argv[4:])
ridge = float(given.pop("ridge", 1e-3))
options = check_options(task, given)
own = {o.name: options.get(o.name) for o in task.options}


def load(p):
    rows = [json.loads(line) for line in Path(p).read_text().splitlines()]
    # outcomes recomputed with today's rule (the measure file's may predate a change of the rule)
    y = np.array([recipe.outcome(r["result"], r["gold"], own) for r in rows])
    return rows, np.array([r["signals"] for r in rows]), y


dev, xd, yd = load(sys.argv[2])
test, xt, yt = load(sys.argv[3])
print(
    "outcomes dev",
    np.bincount(yd, minlength=len(recipe.classes)),
    "test",
    np.bincount(yt, minlength=len(recipe.classes)),
)
model = confidence.fit(recipe.classes, recipe.signals, xd, yd, ridge=ridge)


def report(name, m, x, y, rows):
    probs = m.probabilities(x)
    scores, right, finals = [], [], []
    for r, p in zip(rows, probs, strict=True):
        c, s = confidence.choose(recipe, p)
        final = recipe.finish(r["result"], c, s)
        finals.append(final)
        scores.append(s)
        right.append(recipe.right(final, r["gold"], own))
    ece = calibration.confidence_ece(scores, right)
    nll = confidence.nll(m, x, y)
    print(f"{name}: n={len(rows)} ECE={ece:.4f} right={np.mean(right):.4f} score={np.mean(scores):.4f} nll={nll:.4f}")
    return finals


print(json.dumps({"weights": [[round(w, 4) for w in row] for row in model.weights]}))
report("dev (fit)", model, xd, yd, dev)
finals = report("test (held out)", model, xt, yt, test)
if task.name == "ask":
    from nlpsuite.eval import metrics

    def qa(preds, rows):
        ans = [i for i, r in enumerate(rows) if r["gold"]]
        un = [i for i, r in enumerate(rows) if not r["gold"]]
        em = np.mean([metrics.exact_match(preds[i] or "", rows[i]["gold"]) for i in ans]) * 100
        f1 = np.mean([metrics.token_f1(preds[i] or "", rows[i]["gold"]) for i in ans]) * 100
        na = np.mean([preds[i] is None for i in un])
        allem = np.mean([metrics.exact_match(preds[i] or "", rows[i]["gold"] or [""]) for i in range(len(rows))]) * 100
        counts = f"(answerable {len(ans)}, unanswerable {len(un)})"
        return f"EM(all)={allem:.2f} answerable EM={em:.2f} F1={f1:.2f} no-answer accuracy={na:.3f} {counts}"

    mine = [f["answer"] for f in finals]
    print("mine :", qa(mine, test))
    today = [r["result"]["answer"] if r["signals"][0] >= 0 and r["signals"][5] == 0 else None for r in test]
    print("today:", qa(today, test), "(today's rule: the span unless null's log-probability is higher)")
    import os

    base = os.environ.get("BASE")
    if base and os.path.exists(base):
        got = [json.loads(line) for line in Path(base).read_text().splitlines()]
        same = sum(
            (g["prediction"] if not isinstance(g["prediction"], dict) else g["prediction"]["answer"]) == today[i]
            for i, g in enumerate(got)
        )
        print(f"today's rule reproduces {same}/{len(got)} answers of the real baseline run")
