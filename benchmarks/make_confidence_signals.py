"""Measure a confidence task's signals and outcomes on labelled data once (one JSONL line per example, resumable),
so that fits and held-out numbers (benchmarks/quality_confidence_fit.py) come from the same measurements.

    python benchmarks/make_confidence_signals.py qa benchmarks/data/qa_pydoc_dev.jsonl dev_span.m.jsonl
    python benchmarks/make_confidence_signals.py qa benchmarks/data/qa_pydoc_dev.jsonl dev_gen.m.jsonl generate=true
    python benchmarks/make_confidence_signals.py translate benchmarks/data/mt_en_fr_dev.jsonl mt.m.jsonl to=fr batch=8

``batch=N`` measures N examples per call (translations share padded batches); each line's ``s`` is then the
batch's seconds per example.
"""

import json
import sys
import time
from pathlib import Path

from nlpsuite import Suite
from nlpsuite.eval.run import check_options, find, read_examples
from nlpsuite.plugins import registry

task_name, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
given = dict(a.split("=", 1) for a in sys.argv[4:])
model = given.pop("model", None)
batch = int(given.pop("batch", 1))
task = find(registry().tasks, task_name)
options = check_options(task, given)
inputs, gold, options = read_examples(task, data, options, None)
own = {o.name: options.get(o.name) for o in task.options}
suite = Suite(model=model, device="cpu")
done = len(out.read_text().splitlines()) if out.exists() else 0
with open(out, "a") as f:
    for first in range(done, len(inputs), batch):
        t = time.time()
        rows = range(first, min(first + batch, len(inputs)))
        measured = task.confidence.measure(suite, [inputs[i] for i in rows], **own)
        seconds = round((time.time() - t) / len(rows), 2)
        lines = [
            {
                "i": i,
                "input": inputs[i],
                "gold": gold[i],
                "result": m["result"],
                "signals": m["signals"],
                "outcome": task.confidence.outcome(m["result"], gold[i], own),
                "s": seconds,
            }
            for i, m in zip(rows, measured, strict=True)
        ]
        f.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))  # a batch whole, or not
        f.flush()
