"""Embedding and label-scoring throughput (texts/s): nlpsuite vs transformers on the same backbone.

Embedding: the final hidden state at the last token of each text's embedding prompt, standardized with
the head's per-dimension stats, batched. Label scoring: log-likelihood of
each of 3 labels after a prompt built from the text. Both engines get the same texts and batch size.

    python benchmarks/bench_heads.py [--n 64] [--batch-size 16] [--out results/heads.json]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from harness import out_option, repeat, save, show, spread, stats

WORDS = [
    "the",
    "film",
    "was",
    "slow",
    "but",
    "the",
    "acting",
    "kept",
    "me",
    "watching",
    "until",
    "a",
    "surprising",
    "and",
    "moving",
    "final",
    "act",
    "although",
    "some",
    "scenes",
    "felt",
    "long",
    "and",
    "the",
    "music",
    "was",
    "loud",
]
LABELS = [" positive", " negative", " neutral"]
TEMPLATE = "Review: {text}\nSentiment:"


def texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(8 + (i * 5) % 24)) for i in range(n)]


def timed(fn, runs: int) -> list[float]:
    fn()  # warm-up
    return repeat(fn, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    out_option(parser, "heads")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from nlpsuite import Suite

    suite = Suite(model=args.model, device="cpu")
    if not suite.backbone.manifest["source"].get("gguf"):
        raise SystemExit("the transformers reference loads a GGUF file: use the default model or --model FILE.gguf")
    gguf = Path(suite.backbone.manifest["source"]["gguf"])
    hf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32).eval()
    tok = suite.tokenizer
    data = texts(args.n)
    embedder, scorer = suite.head("embedding"), suite.head("scoring")
    prompts = [tok.encode(TEMPLATE.format(text=t)) for t in data]
    label_ids = [tok.encode(label, add_special_tokens=False) for label in LABELS]

    mean, scale = torch.from_numpy(embedder.mean), torch.from_numpy(embedder.scale)

    def hf_embed():
        for start in range(0, len(data), args.batch_size):
            batch = [embedder.encode(t) for t in data[start : start + args.batch_size]]
            width = max(map(len, batch))
            ids = torch.tensor([[tok.pad_token_id] * (width - len(b)) + b for b in batch])
            mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch])
            with torch.no_grad():
                hidden = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            torch.nn.functional.normalize((hidden[:, -1] - mean) / scale, dim=-1)

    def hf_score():  # the plain way: one full forward per (text, label) pair, batched over pairs
        pairs = [p + lab for p in prompts for lab in label_ids]
        for start in range(0, len(pairs), args.batch_size):
            batch = pairs[start : start + args.batch_size]
            width = max(map(len, batch))
            ids = torch.tensor([b + [tok.pad_token_id] * (width - len(b)) for b in batch])
            mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch])
            with torch.no_grad():
                torch.log_softmax(hf(input_ids=ids, attention_mask=mask).logits, -1)

    rows = {
        "embedding": {
            "nlpsuite": timed(lambda: embedder(data, batch_size=args.batch_size), args.runs),
            "transformers": timed(hf_embed, args.runs),
        },
        "label scoring (3 labels)": {
            "nlpsuite": timed(lambda: [scorer.log_likelihoods(p, LABELS) for p in prompts], args.runs),
            "transformers": timed(hf_score, args.runs),
        },
    }
    report = {"model": args.model, "texts": args.n, "batch_size": args.batch_size, "runs": args.runs, "heads": {}}
    table = []
    for head, engines in rows.items():
        rates = {e: [args.n / t for t in ts] for e, ts in engines.items()}
        report["heads"][head] = {e: stats(r) for e, r in rates.items()}
        ratio = statistics.median(rates["nlpsuite"]) / statistics.median(rates["transformers"])
        table.append((head, *(spread(rates[e], ".1f") for e in ("nlpsuite", "transformers")), f"{ratio:.2f}"))
    title = f"{args.model}: texts/s over {args.n} texts, median (min–max) of {args.runs} runs"
    show(title, ["head", "nlpsuite texts/s", "transformers texts/s", "× transformers"], table)
    save(report, args.out)


if __name__ == "__main__":
    main()
