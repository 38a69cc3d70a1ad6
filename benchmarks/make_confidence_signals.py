"""Measure a confidence task's signals and outcomes on labelled data once (one JSONL line per example, resumable),
so that fits and held-out numbers (benchmarks/quality_confidence_fit.py) come from the same measurements.

    python benchmarks/make_confidence_signals.py qa benchmarks/data/qa_pydoc_dev.jsonl dev_span.m.jsonl
    python benchmarks/make_confidence_signals.py qa benchmarks/data/qa_pydoc_dev.jsonl dev_gen.m.jsonl generate=true
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
task = find(registry().tasks, task_name)
options = check_options(task, given)
inputs, gold, options = read_examples(task, data, options, None)
own = {o.name: options.get(o.name) for o in task.options}
suite = Suite(model=model, device="cpu")
done = len(out.read_text().splitlines()) if out.exists() else 0
with open(out, "a") as f:
    for i in range(done, len(inputs)):
        t = time.time()
        m = task.confidence.measure(suite, [inputs[i]], **own)[0]
        o = task.confidence.outcome(m["result"], gold[i], own)
        f.write(
            json.dumps(
                {
                    "i": i,
                    "input": inputs[i],
                    "gold": gold[i],
                    "result": m["result"],
                    "signals": m["signals"],
                    "outcome": o,
                    "s": round(time.time() - t, 2),
                },
                ensure_ascii=False,
            )
            + "\n"
        )
        f.flush()
