"""Translation (chrF) and summarization (ROUGE-L) quality: nlpsuite's task vs the same model run through
transformers with a plain instruction prompt (chat template, greedy), on the same inputs.

Bring your own held-out data (JSONL): translation lines need `source` and `reference`, summarization
lines `text` and `reference`.

    python benchmarks/quality_vs_transformers.py translation pairs.jsonl --to de [--n 50]
    python benchmarks/quality_vs_transformers.py summarization news.jsonl [--n 20] [--max-words 60]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness import out_option, save, show

PLAIN = {
    "translation": "Translate to {target}: {text}",
    "summarization": "Summarize this text: {text}",
}


def transformers_outputs(suite, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(suite.backbone.manifest["source"]["gguf"])  # the file nlpsuite converted
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    out = []
    for prompt in prompts:
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
        out.append(tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(PLAIN))
    parser.add_argument("data", type=Path)
    parser.add_argument("--to", default="de")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--max-words", type=int, default=None)
    out_option(parser, "quality")
    args = parser.parse_args()

    import sacrebleu
    from nlpsuite_plugins.translate import language
    from rouge_score import rouge_scorer

    from nlpsuite import Suite

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()][: args.n]
    suite = Suite(device="cpu")
    refs = [r["reference"] for r in rows]
    started = time.perf_counter()
    if args.task == "translation":
        target = language(args.to, "--to")
        ours = suite.translate([r["source"] for r in rows], to=args.to)
        ours_s = time.perf_counter() - started
        prompts = [PLAIN["translation"].format(target=target, text=r["source"]) for r in rows]
        started = time.perf_counter()
        theirs = [t.split("\n")[0] for t in transformers_outputs(suite, prompts, 128)]
    else:
        ours = suite.summarize([r["text"] for r in rows], max_words=args.max_words)
        ours_s = time.perf_counter() - started
        prompts = [PLAIN["summarization"].format(text=r["text"]) for r in rows]
        started = time.perf_counter()
        theirs = transformers_outputs(suite, prompts, 200)
    theirs_s = time.perf_counter() - started

    def score(hyps: list[str]) -> dict:
        if args.task == "translation":
            return {
                "chrF": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
                "BLEU": round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2),
            }
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        scores = [scorer.score(ref, hyp) for ref, hyp in zip(refs, hyps, strict=True)]
        return {
            k: round(100 * sum(s[k].fmeasure for s in scores) / len(scores), 2) for k in ("rouge1", "rouge2", "rougeL")
        }

    result = {
        "task": args.task,
        "data": str(args.data),
        "n": len(rows),
        "to": args.to if args.task == "translation" else None,
        "nlpsuite": {**score(ours), "seconds": round(ours_s, 1)},
        "transformers_plain_prompt": {**score(theirs), "seconds": round(theirs_s, 1)},
        "examples": [
            {"nlpsuite": a, "transformers": b, "reference": c}
            for a, b, c in list(zip(ours, theirs, refs, strict=True))[:5]
        ],
    }
    engines = ("nlpsuite", "transformers_plain_prompt")
    show("quality, same model and inputs", ["engine", *result["nlpsuite"]], [(e, *result[e].values()) for e in engines])
    save(result, args.out)


if __name__ == "__main__":
    main()
