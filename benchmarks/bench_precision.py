"""fp32 vs int8 vs int4 of one model in one run: decode speed, and how closely each follows fp32.

Quality is teacher-forced: fp32 writes greedy continuations of a few chat prompts, then every precision
reads the same token sequences and we count how often its next-token argmax equals fp32's (agreement)
and the mean KL(fp32 || precision) of the next-token distributions. Speed: greedy decode tokens/s one token a
step (no prompt-lookup drafting, whose gain would differ with each precision's own text), median (min-max) of
--runs, precisions interleaved so drift hits them alike. Prints a table and
writes JSON.

    python benchmarks/bench_precision.py                       # the default model, fp32,int8,int4
    python benchmarks/bench_precision.py --model PATH --precisions fp32,int4 --tokens 64
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from harness import out_option, save, show, spread, stats

PROMPTS = [
    "Explain, in a few clear paragraphs, how the water cycle works, with one everyday example of each stage.",
    "Translate to French: The museum opens at nine, but the guided tours only start in the afternoon.",
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Summarize the main causes of the First World War in five bullet points.",
    "What are three good habits for writing maintainable Python code? Give a short example of each.",
]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def teacher_forced(backbone, seq: list[int], start: int) -> np.ndarray:
    """Log-probabilities of the next token at positions start-1 .. len-2 of ``seq`` (one forward pass)."""
    ids = np.array([seq], np.int64)
    mask, pos = np.ones_like(ids), np.arange(len(seq), dtype=np.int64)[None]
    step = backbone.forward(ids, mask, pos, backbone.empty_state(1), num_logits=len(seq) - start + 1)
    return log_softmax(step.logits[0, :-1].astype(np.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precisions", default="fp32,int8,int4")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    out_option(parser, "precision")
    args = parser.parse_args()

    from nlpsuite.modelstore.catalog import Catalog
    from nlpsuite.modelstore.resolve import ensure_model
    from nlpsuite.runtime.backbone import Backbone
    from nlpsuite.runtime.generation import Generator
    from nlpsuite.runtime.sampling import SamplingParams
    from nlpsuite.runtime.tokenizer import ChatTemplate, Tokenizer

    source = Catalog().resolve(args.model)
    precisions = args.precisions.split(",")
    backbones = {p: Backbone(ensure_model(source, p), device="cpu") for p in precisions}
    reference = backbones[precisions[0]]
    tok = Tokenizer(reference.folder, reference.manifest["special_tokens"])
    template = ChatTemplate(reference.manifest.get("chat_template"), tok.bos_token, tok.eos_token)
    prompts = [tok.encode(template.render([{"role": "user", "content": text}])) for text in PROMPTS]
    params = SamplingParams(max_tokens=args.tokens, ignore_eos=True, draft=False)
    generators = {p: Generator(b, tok) for p, b in backbones.items()}
    written = generators[precisions[0]].generate(prompts, params)

    rows = {}
    for p, backbone in backbones.items():
        agree, kls = [], []
        for prompt, done in zip(prompts, written, strict=True):
            seq = prompt + done.token_ids
            ref = teacher_forced(reference, seq, len(prompt))
            got = teacher_forced(backbone, seq, len(prompt))
            agree.extend(ref.argmax(-1) == got.argmax(-1))
            kls.extend((np.exp(ref) * (ref - got)).sum(-1))
        weights = sum(f.stat().st_size for f in backbone.folder.glob("model.onnx*")) / 1e6
        rows[p] = {"agreement": float(np.mean(agree)), "mean_kl": float(np.mean(kls)), "weights_mb": weights}
    speeds = {p: [] for p in precisions}
    one = SamplingParams(max_tokens=args.tokens, ignore_eos=True, draft=False)
    for p in precisions:
        generators[p].generate(prompts[:1], SamplingParams(max_tokens=8, ignore_eos=True, draft=False))  # warm-up
    for _ in range(args.runs):
        for p in precisions:
            start = time.perf_counter()
            done = generators[p].generate(prompts[:1], one)[0]
            elapsed = time.perf_counter() - start
            speeds[p].append(getattr(done, "decode_tokens_per_s", None) or len(done.token_ids) / elapsed)
    for p in precisions:
        rows[p]["decode_tokens_per_s"] = stats(speeds[p])
    base = rows[precisions[0]]["decode_tokens_per_s"]["median"]
    ratio = "x " + precisions[0]
    table = [
        (p, f"{r['weights_mb']:.0f}", spread(r["decode_tokens_per_s"], ".1f"),
         f"{r['decode_tokens_per_s']['median'] / base:.2f}", f"{r['agreement']:.1%}", f"{r['mean_kl']:.4f}")
        for p, r in rows.items()
    ]  # fmt: skip
    title = f"{args.model}: {args.tokens} tokens, decode median (min–max) of {args.runs} runs"
    show(title, ["precision", "weights MB", "decode tok/s", ratio, "agreement", "KL"], table)
    save({"model": args.model, "tokens": args.tokens, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
