"""Fit a confidence model on measured development signals and report the held-out numbers on measured test
signals (what `nlpsuite calibrate` and `eval` compute), and for ask main's decision rule on the same measurements
(BASE=a real `eval qa --predictions` file of main checks that the rule reproduces it).

    python benchmarks/quality_confidence_fit.py qa dev_span.m.jsonl test_span.m.jsonl
    python benchmarks/quality_confidence_fit.py extract person.m.jsonl,product.m.jsonl event.m.jsonl schema=x.json

Several files (comma-separated) are one set. AUROC says how well the scores rank right above wrong results.
"""

import json
import sys
from pathlib import Path

import numpy as np

from nlpsuite.eval import calibration, confidence
from nlpsuite.eval.run import find
from nlpsuite.plugins import registry

task = find(registry().tasks, sys.argv[1])
recipe = task.confidence
given = dict(a.split("=", 1) for a in sys.argv[4:])
ridge = float(given.pop("ridge", 1e-3))
# the task's options as outcome() and right() read them (extract reads none: its schema need not be given)
own = {o.name: o.check(given[o.name]) if o.name in given else o.default for o in task.options}


def load(paths):
    """Measured rows of one or more files (comma-separated), with their signal rows, outcomes and owners."""
    rows = [json.loads(line) for p in paths.split(",") for line in Path(p).read_text().splitlines()]
    # outcomes recomputed with today's rule (the measure file's may predate a change of the rule)
    x, y, owner = confidence.table(recipe, rows, [r["gold"] for r in rows], own)
    return rows, x, y, owner


def auroc(scores, right):
    """The probability that a right result scores above a wrong one (ties half): how well scores rank results."""
    scores, right = np.asarray(scores), np.asarray(right, dtype=bool)
    pos, neg = scores[right], scores[~right]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


dev, xd, yd, od = load(sys.argv[2])
test, xt, yt, ot = load(sys.argv[3])
print(
    "outcomes dev",
    np.bincount(yd, minlength=len(recipe.classes)),
    "test",
    np.bincount(yt, minlength=len(recipe.classes)),
)
model = confidence.fit(recipe.classes, recipe.signals, xd, yd, ridge=ridge)


def report(name, m, x, y, owner, rows):
    probs = m.probabilities(x)
    scores, right, finals, parts = [], [], [], []
    for i, r in enumerate(rows):
        if recipe.per:
            final = recipe.finish(r["result"], [confidence.choose(recipe, p) for p in probs[owner == i]])
            parts += recipe.parts(final, r["gold"], own)
        else:
            final = recipe.finish(r["result"], *confidence.choose(recipe, probs[i]))
        finals.append(final)
        scores.append(final["score"])
        right.append(recipe.right(final, r["gold"], own))
    ece = calibration.confidence_ece(scores, right)
    nll = confidence.nll(m, x, y)
    print(
        f"{name}: n={len(rows)} ECE={ece:.4f} right={np.mean(right):.4f} score={np.mean(scores):.4f} "
        f"AUROC={auroc(scores, right):.3f} nll({recipe.per or 'result'})={nll:.4f}"
    )
    if parts:
        s, r = [p for p, _ in parts], [q for _, q in parts]
        print(
            f"  per {recipe.per}: n={len(parts)} ECE={calibration.confidence_ece(s, r):.4f} right={np.mean(r):.4f} "
            f"score={np.mean(s):.4f} AUROC={auroc(s, r):.3f}"
        )
    return finals


print(json.dumps({"weights": [[round(w, 4) for w in row] for row in model.weights]}))
report("dev (fit)", model, xd, yd, od, dev)
finals = report("test (held out)", model, xt, yt, ot, test)
current = confidence.checked(recipe.default(own)) if recipe.default else None
if current is not None:
    report("test, the built-in model", current, xt, yt, ot, test)
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
