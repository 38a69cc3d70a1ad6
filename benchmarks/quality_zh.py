"""Chinese task quality: nlpsuite's tasks vs the same GGUF model run through transformers with a plain prompt
(chat template, greedy), on the same inputs, side by side in one run. Development only: bring the model and the
data; neither belongs in the repository.

    python benchmarks/quality_zh.py --model qwen2.5-0.5b-instruct.gguf --data DIR [--n 40] [--out FILE.json]

DIR holds JSONL sets (any that are missing are skipped):
  sentiment.jsonl       text, label (positive | negative)               -> accuracy
  classification.jsonl  text, label (a Chinese label name; the set of names is the label set) -> accuracy
  translation.jsonl     source (English), reference (Chinese)          -> chrF, BLEU (sacrebleu, zh tokenizer)
  summarization.jsonl   text, reference (Chinese)                      -> ROUGE-L on characters
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

from harness import out_option, save, show

SUMMARY_CHARACTERS = 20
PLAIN = {
    "sentiment": "判断下面这句话的情感是正面还是负面，只回答“正面”或“负面”。\n\n{text}",
    "classification": "下面这段文字属于哪一类：{labels}？只回答类别名称。\n\n{text}",
    "translation": "Translate the following text into Chinese.\n\n{text}",
    "summarization": f"用一句话概括下面这段文字，不超过{SUMMARY_CHARACTERS}个字。\n\n{{text}}",
}
MAX_NEW_TOKENS = {"sentiment": 4, "classification": 8, "translation": 96, "summarization": 48}


def read(path: Path, n: int) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:n]


def first_label(output: str, labels: list[str]) -> str | None:
    """The label named earliest in a free-form reply (None if it names none)."""
    found = [(output.find(label), label) for label in labels if label in output]
    return min(found)[1] if found else None


def nlpsuite_outputs(model: str, sets: dict[str, list[dict]], labels: list[str]) -> tuple[dict, dict]:
    from nlpsuite import Suite

    suite = Suite(model=model, device="cpu")
    out, seconds = {}, {}
    for task, rows in sets.items():
        texts = [r.get("text", r.get("source")) for r in rows]
        start = time.perf_counter()
        if task == "sentiment":
            out[task] = [r["label"] for r in suite.sentiment(texts)]
        elif task == "classification":
            out[task] = [r["label"] for r in suite.classify(texts, labels=labels)]
        elif task == "translation":
            out[task] = suite.translate(texts, to="zh")
        else:
            out[task] = suite.summarize(texts, max_words=SUMMARY_CHARACTERS)
        seconds[task] = time.perf_counter() - start
        print(f"nlpsuite: {task} done in {seconds[task]:.0f} s", file=sys.stderr)
    return out, seconds


def transformers_outputs(
    model: str, sets: dict[str, list[dict]], labels: list[str], batch: int = 8
) -> tuple[dict, dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(model)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    out, seconds = {}, {}
    for task, rows in sets.items():
        prompts = [PLAIN[task].format(text=r.get("text", r.get("source")), labels="、".join(labels)) for r in rows]
        start = time.perf_counter()
        replies = []
        for i in range(0, len(prompts), batch):
            chats = [
                tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                for p in prompts[i : i + batch]
            ]
            enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                gen = lm.generate(**enc, max_new_tokens=MAX_NEW_TOKENS[task], do_sample=False)
            replies += [tok.decode(g[enc.input_ids.shape[1] :], skip_special_tokens=True).strip() for g in gen]
        seconds[task] = time.perf_counter() - start
        print(f"transformers: {task} done in {seconds[task]:.0f} s", file=sys.stderr)
        if task == "sentiment":
            named = {"正面": "positive", "负面": "negative"}
            replies = [named.get(first_label(r, list(named)), r) for r in replies]
        elif task == "classification":
            replies = [first_label(r, labels) or r for r in replies]
        elif task == "translation":
            replies = [" ".join(r.split("\n\n")[0].split()) for r in replies]  # the first paragraph, one line
        out[task] = replies
    return out, seconds


def score(task: str, rows: list[dict], predicted: list[str]) -> dict:
    from nlpsuite.eval import metrics

    if task in ("sentiment", "classification"):
        return {"accuracy": 100 * metrics.accuracy([r["label"] for r in rows], predicted)}
    references = [r["reference"] for r in rows]
    if task == "translation":
        return {
            "chrf": metrics.chrf(predicted, references)["score"],
            "bleu": metrics.bleu(predicted, references, "zh")["score"],
        }
    return {"rougeL": 100 * metrics.rouge(predicted, references)["rougeL"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a GGUF file (nlpsuite converts it once and caches it)")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=40, help="items per set")
    parser.add_argument("--tasks", default="sentiment,classification,translation,summarization")
    parser.add_argument("--engines", default="nlpsuite,transformers", help="run only one of them with its name")
    out_option(parser, "zh_quality")
    args = parser.parse_args()

    tasks = [t for t in args.tasks.split(",") if (args.data / f"{t}.jsonl").exists()]
    sets = {t: read(args.data / f"{t}.jsonl", args.n) for t in tasks}
    # the label names are those of the whole classification set, however few items are run
    labels = (
        sorted({r["label"] for r in read(args.data / "classification.jsonl", 10**9)})
        if sets.get("classification")
        else []
    )
    engines = args.engines.split(",")
    skipped = ({t: [""] * len(rows) for t, rows in sets.items()}, dict.fromkeys(sets, 0.0))
    ours, our_seconds = nlpsuite_outputs(args.model, sets, labels) if "nlpsuite" in engines else skipped
    gc.collect()
    theirs, their_seconds = transformers_outputs(args.model, sets, labels) if "transformers" in engines else skipped

    report = {"model": Path(args.model).name, "engines": engines, "n": {t: len(rows) for t, rows in sets.items()},
              "tasks": {}}  # fmt: skip
    table = []
    for task, rows in sets.items():
        mine, base = score(task, rows, ours[task]), score(task, rows, theirs[task])
        report["tasks"][task] = {
            "nlpsuite": mine,
            "transformers": base,
            "seconds": {"nlpsuite": our_seconds[task], "transformers": their_seconds[task]},
            "outputs": [
                {"input": r.get("text", r.get("source")), "gold": r.get("label", r.get("reference")), "nlpsuite": a,
                 "transformers": b}
                for r, a, b in zip(rows, ours[task], theirs[task], strict=True)
            ],
        }  # fmt: skip
        seconds = f"{our_seconds[task]:.0f}/{their_seconds[task]:.0f}"
        table += [(task, m, f"{mine[m]:.1f}", f"{base[m]:.1f}", len(rows), seconds) for m in mine]
    columns = ["task", "metric", "nlpsuite", "transformers", "n", "seconds ours/theirs"]
    show(f"{report['model']}: Chinese tasks", columns, table)
    save(report, args.out)


if __name__ == "__main__":
    main()
