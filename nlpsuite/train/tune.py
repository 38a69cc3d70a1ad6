"""`nlpsuite tune TASK DATA`: fine-tune the backbone for one task on the user's own examples, with LoRA adapters.

The records (the task's batch format plus the gold output field) are split with a seed; the held-out part is
scored by the task's own eval (through the ONNX model, as every front-end runs it) before and after. Training
runs in torch on the source model; the adapters are merged into plain weights, saved as a Hugging Face folder
under NLPSUITE_HOME/tuned/NAME and registered as catalog entry NAME (``--model NAME`` converts it at any
precision). A tuned model that scores worse on the held-out part is not kept. Checkpoints (adapters, optimizer,
position) go to NLPSUITE_HOME/tuning/NAME: Ctrl-C saves one, and the same command resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import NlpsuiteError
from ..fsutil import write_json_atomic
from ..records import read_records
from ..tasks import Task
from .display import Reporter
from .tune_config import TuneConfig, tuned_dir, workdir

TUNED = "+tuned-"  # a tuned model's name: BASE+tuned-SUFFIX


def tuned_name(base: str, name: str | None, data: Path) -> str:
    """``BASE+tuned-NAME`` (default NAME: the data file's stem)."""
    suffix = (name or data.stem).strip().lower()
    if not suffix or not all(c.isalnum() or c in "-_." for c in suffix):
        raise NlpsuiteError(f"--name {suffix!r}: use letters, digits, '-', '_' or '.'")
    return f"{base.split(TUNED)[0]}{TUNED}{suffix}"


def read_data(task: Task, data: Path, options: dict, limit: int | None) -> tuple[list[dict], list]:
    """(task inputs, gold outputs) of the records, checked whole before any model is loaded."""
    recipe = task.tune
    head, *rest = task.inputs
    rows = read_records(data, ["text", recipe.gold])[:limit]
    records = [r for _, r in rows]
    for line, r in rows:
        if not isinstance(r.get("text"), str) and not head.messages:
            raise NlpsuiteError(f"{data}:{line}: 'text' must be a string")
    inputs = task.batch_inputs(records, {})
    return inputs, [r.get(recipe.gold) for r in records]


def split(n: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    held_n = round(n * holdout)
    if held_n < 1 or held_n >= n:
        raise NlpsuiteError(f"{n} examples: too few to hold out {holdout:g} and train on the rest")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[held_n:].tolist()), sorted(order[:held_n].tolist())


def held_out_score(task: Task, suite, inputs: list[dict], gold: list, options: dict) -> dict:
    """The task's eval metrics on the held-out records (its eval recipe), plus their mean loss per output token
    under the model (how likely it finds the gold outputs)."""
    from ..eval.run import evaluate_examples

    metrics = {}
    if task.eval is not None:
        eval_gold = [task.tune.eval_gold(g) if task.tune.eval_gold else g for g in gold]
        metrics = evaluate_examples(task, inputs, eval_gold, lambda: suite, dict(options))
        metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    examples = task.tune.examples(suite, inputs, gold, options)
    scorer = suite.head("scoring")
    total, tokens = 0.0, 0
    for e in examples:
        context, continuation = e.alternatives[e.gold or 0]
        total += float(scorer.log_likelihoods(context, [suite.tokenizer.decode(continuation)])[0])
        tokens += len(continuation)
    metrics["loss"] = -total / max(tokens, 1)
    return metrics


def better(task: Task, before: dict, after: dict) -> bool:
    """Whether the tuned model is at least as good on the held-out part: the task's metric, else the loss."""
    metric = task.tune.metric
    if metric and metric in before and metric in after:
        return after[metric] >= before[metric]
    return after["loss"] <= before["loss"]


def _identity(task: Task, data: Path, options: dict, cfg: TuneConfig, base: str) -> dict:
    digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
    kept = {k: v for k, v in asdict(cfg).items() if k != "save_every_s" and k != "epochs"}
    return {"task": task.name, "data_sha256": digest, "options": options, "config": kept, "base": base}


def tune(
    task: Task,
    data: Path,
    options: dict,
    cfg: TuneConfig,
    open_suite: Callable[[str | None], object],
    base: str | None,
    name: str,
    reporter: Reporter | None = None,
    say: Callable[[str], None] = lambda _m: None,
    restart: bool = False,
) -> dict:
    """Train ``base`` (what --model said; None: the default model), compare on the held-out records, and keep the
    tuned model as catalog entry ``name`` only when it is not worse there; returns what happened."""
    from ..modelstore import resolve as catalogs

    cfg.check()
    if task.tune is None:
        raise NlpsuiteError(f"{task.name} cannot be tuned (it declares no training recipe)")
    inputs, gold = read_data(task, data, options, cfg.limit)
    train_idx, held_idx = split(len(inputs), cfg.holdout, cfg.seed)
    work = workdir(name)
    identity = _identity(task, data, options, cfg, name)
    if restart and work.exists():
        shutil.rmtree(work)
    _claim(work, identity)
    started = time.monotonic()
    suite = open_suite(base)
    base = suite.source.key
    held_inputs, held_gold = [inputs[i] for i in held_idx], [gold[i] for i in held_idx]
    before = _cached(work / "before.json", lambda: held_out_score(task, suite, held_inputs, held_gold, options))
    say(f"before: {_line(before)}")
    examples = task.tune.examples(suite, [inputs[i] for i in train_idx], [gold[i] for i in train_idx], options)
    from .lora_run import train_adapters

    folder = train_adapters(suite, examples, cfg, work, reporter or Reporter())
    entry = catalogs.save_user_entry(name, folder, f"{base} tuned for {task.name} on {Path(data).name}", base)
    try:
        tuned = open_suite(name)
        after = held_out_score(task, tuned, held_inputs, held_gold, options)
    except BaseException:
        catalogs.remove_user_entry(name)
        raise
    say(f"after:  {_line(after)}")
    result = {
        "task": task.name, "base": base, "model": name, "n_train": len(train_idx), "n_heldout": len(held_idx),
        "before": before, "after": after, "metric": task.tune.metric or "loss",
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    if not better(task, before, after):
        catalogs.remove_user_entry(name)
        shutil.rmtree(tuned_dir(name), ignore_errors=True)
        metric = task.tune.metric if task.tune.metric in after else "loss"
        raise NlpsuiteError(
            f"the tuned model is worse on the {len(held_idx)} held-out examples ({metric} {before[metric]:.4g} -> "
            f"{after[metric]:.4g}): nothing saved; add examples, or change --epochs/--lr"
        )
    result["saved"] = str(entry)
    write_json_atomic(work / "result.json", result)
    return result


def _line(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def _cached(path: Path, compute: Callable[[], dict]) -> dict:
    """A measurement a resumed run need not repeat."""
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    value = compute()
    write_json_atomic(path, value)
    return value


def _claim(work: Path, identity: dict) -> None:
    """The work folder is this run's (or a run of the same data and settings, which it resumes)."""
    run_file = work / "run.json"
    if run_file.is_file():
        prior = json.loads(run_file.read_text(encoding="utf-8"))
        if prior != identity:
            changed = [k for k in identity if prior.get(k) != identity[k]]
            raise NlpsuiteError(
                f"{work} holds a tuning run with other {', '.join(changed)}: pass --restart to start over, or --name"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_file, identity)
