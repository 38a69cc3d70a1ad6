"""nlpsuite vs transformers `generate` on the same model, prompt and token count.

Prints prefill ms, decode tokens/s, peak RSS and CLI cold start (median, min-max) as a table and
writes JSON. Each engine runs in a fresh worker process so peak memory is its own.

    python benchmarks/bench_generate.py                 # fp32 + int8 vs transformers, 128 tokens
    python benchmarks/bench_generate.py --runs 3 --tokens 64 --out results.json
    python benchmarks/bench_generate.py --cold-only --cold-runs 7 --precisions fp32   # cold start alone
    python benchmarks/bench_generate.py --model FILE.gguf --precisions fp32,int8,int4 \
        --llama-cpp q8_0,q4_0 --llama-cpp-python /work/lcp-venv/bin/python   # + llama.cpp, same weights

llama.cpp (llama-cpp-python) runs in the Python given by --llama-cpp-python (its own venv: it is no
dependency of nlpsuite), on the GGUF file requantized to each type asked for (llama.cpp's own
quantizer, cached beside --out), fed the same prompt token ids as transformers, greedy.

Every engine decodes one token per step: nlpsuite's prompt-lookup drafting is off here (--draft turns it on),
since the others do not draft and this table compares engines, not drafting (benchmarks/bench_drafting.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from harness import out_option, save, show, spread, stats

PROMPT = (
    "You are helping a student prepare for an exam. Explain, in a few clear paragraphs, how the water "
    "cycle works: evaporation, condensation, precipitation and collection, with one everyday example of each."
)


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ru_maxrss across exec (a worker would report its parent's
    peak), so read VmHWM, which starts afresh with the new address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_nlpsuite(args) -> dict:
    from nlpsuite import Suite

    suite = Suite(model=args.model, precision=args.precision, device="cpu", cache_mb=0)  # every run prefills
    suite.complete(PROMPT, max_tokens=8, ignore_eos=True, draft=args.draft)  # warm-up (and load)
    runs = []
    for _ in range(args.runs):
        done = suite.complete(PROMPT, max_tokens=args.tokens, ignore_eos=True, draft=args.draft)
        runs.append(
            {
                "prefill_ms": done.prefill_ms,
                "decode_tokens_per_s": done.decode_tokens_per_s,
                "prompt_tokens": done.prompt_tokens,
                "tokens": done.token_ids,
            }
        )
    return {"runs": runs, "peak_rss_mb": _peak_rss_mb(), "weights_mb": _weights_mb(suite.backbone.folder)}


def _weights_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in Path(folder).glob("model.onnx*")) / 1e6


def _hf_load(model_dir: str, gguf: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf, dtype=torch.float32).eval()
    return model, tok


LLAMA_FTYPES = {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_0": 8, "q4_k_m": 15, "f16": 1}  # llama.h's LLAMA_FTYPE_*


def _llama_cpp_file(source: Path, quant: str, folder: Path) -> Path:
    """``source`` requantized to ``quant`` by llama.cpp's own quantizer (once; cached in ``folder``)."""
    import ctypes

    import llama_cpp

    out = folder / f"{source.stem}.{quant}.gguf"
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = LLAMA_FTYPES[quant]
        params.allow_requantize = True  # the source may itself be quantized (K-quants)
        params.nthread = os.cpu_count() or 1
        partial = out.with_suffix(".partial")
        if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params)) != 0:
            sys.exit(f"llama.cpp could not quantize {source} to {quant}")
        partial.rename(out)
    return out


def worker_llama_cpp(args) -> dict:
    from llama_cpp import Llama

    path = _llama_cpp_file(Path(args.gguf), args.precision, Path(args.llama_cpp_dir))
    prompt = json.loads(Path(args.prompt_ids).read_text())
    llm = Llama(str(path), n_ctx=len(prompt) + args.tokens + 16, n_threads=os.cpu_count() or 1, verbose=False)

    def greedy(n: int) -> tuple[list[int], float, float]:
        llm.reset()  # else generate() reuses the cached prompt and the prefill is not measured
        tokens, start = [], time.perf_counter()
        first = start
        for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
            if not tokens:
                first = time.perf_counter()  # prompt evaluated, first token sampled
            tokens.append(int(token))
            if len(tokens) == n:
                break
        return tokens, first - start, time.perf_counter() - first

    greedy(8)  # warm-up
    runs = []
    for _ in range(args.runs):
        tokens, prefill, decode = greedy(args.tokens)
        runs.append(
            {
                "prefill_ms": prefill * 1000,
                "decode_tokens_per_s": (len(tokens) - 1) / decode,
                "prompt_tokens": len(prompt),
                "tokens": tokens,
            }
        )
    return {"runs": runs, "peak_rss_mb": _peak_rss_mb(), "weights_mb": path.stat().st_size / 1e6}


LLAMA_CPP_COLD = """
import sys
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=512, verbose=False)
print(llm.create_chat_completion([{"role": "user", "content": sys.argv[2]}], max_tokens=16, temperature=0.0))
"""


def worker_transformers(args) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    model, tok = _hf_load(args.hf_dir, args.gguf)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    gen = dict(do_sample=False, pad_token_id=tok.eos_token_id)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=8, min_new_tokens=8, **gen)  # warm-up
        runs = []
        for _ in range(args.runs):
            start = time.perf_counter()
            model(ids, use_cache=True)
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            out = model.generate(ids, max_new_tokens=args.tokens, min_new_tokens=args.tokens, **gen)
            total = time.perf_counter() - start
            runs.append(
                {
                    "prefill_ms": prefill * 1000,
                    "decode_tokens_per_s": (args.tokens - 1) / (total - prefill),
                    "prompt_tokens": ids.shape[1],
                    "tokens": out[0, ids.shape[1] :].tolist(),
                }
            )
    return {"runs": runs, "peak_rss_mb": _peak_rss_mb(), "prompt_ids": ids[0].tolist()}


HF_COLD = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], gguf_file=sys.argv[2], dtype=torch.float32)
ids = tok.apply_chat_template([{"role": "user", "content": sys.argv[3]}], add_generation_prompt=True,
                              return_tensors="pt", return_dict=True)["input_ids"]
print(tok.decode(model.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:]))
"""


def cold_start(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def nlpsuite_cold(model: str, precision: str) -> list[str]:
    return [sys.executable, "-m", "nlpsuite", "generate", "Say hello.", "--max-tokens", "16", "--quiet",
            "--precision", precision, "--model", model, "--device", "cpu"]  # fmt: skip


def cold_only(args, gguf_path: Path) -> None:
    """The cold starts alone, the commands alternating so that load changes on a shared machine hit all alike."""
    commands = {"transformers generate (PyTorch eager)": [sys.executable, "-c", HF_COLD, str(gguf_path.parent),
                                                          gguf_path.name, "Say hello."]}  # fmt: skip
    commands.update({f"nlpsuite ({p})": nlpsuite_cold(args.model, p) for p in args.precisions.split(",")})
    for cmd in commands.values():  # warm-up: files in the page cache
        cold_start(cmd, 1)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.cold_runs):
        for name, cmd in commands.items():
            times[name] += cold_start(cmd, 1)
    rows = {name: stats(values) for name, values in times.items()}
    base = rows["transformers generate (PyTorch eager)"]["median"]
    title = f"cold start (fresh process, load + 16 tokens), median (min-max) of {args.cold_runs}, {os.cpu_count()} CPUs"
    table = [(name, spread(row), f"{row['median'] / base:.2f}") for name, row in rows.items()]
    show(title, ["engine", "cold start s", "× transformers"], table, markdown=True)
    report = {"model": args.model, "runs": args.cold_runs, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
              "load_average": os.getloadavg(), "cold_start_s": rows, "times": times}  # fmt: skip
    save(report, Path(args.out).with_name(Path(args.out).stem + "-cold.json"))


def run_worker(kind: str, args, extra: list[str], python: str = sys.executable) -> dict:
    cmd = [
        python,
        __file__,
        "--worker",
        kind,
        "--runs",
        str(args.runs),
        "--tokens",
        str(args.tokens),
        "--model",
        args.model,
        *extra,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{kind} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--cold-only", action="store_true", help="Only the cold starts (no decode workers).")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--draft", action="store_true", help="nlpsuite drafts from the prompt (off: plain greedy)")
    out_option(parser, "generate")
    parser.add_argument("--llama-cpp", default="", help="llama.cpp quantizations to run too, e.g. q8_0,q4_0")
    parser.add_argument("--llama-cpp-python", default=sys.executable, help="a Python that imports llama_cpp")
    parser.add_argument("--worker", choices=["nlpsuite", "transformers", "llama_cpp"])
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--hf-dir")
    parser.add_argument("--gguf")
    parser.add_argument("--prompt-ids")
    parser.add_argument("--llama-cpp-dir")
    args = parser.parse_args()
    if args.worker:
        workers = {"nlpsuite": worker_nlpsuite, "transformers": worker_transformers, "llama_cpp": worker_llama_cpp}
        print(json.dumps(workers[args.worker](args)))
        return
    quants = [q for q in args.llama_cpp.split(",") if q]
    if unknown := [q for q in quants if q not in LLAMA_FTYPES]:
        sys.exit(f"unknown llama.cpp type(s) {', '.join(unknown)}: choose from {', '.join(LLAMA_FTYPES)}")
    if quants and subprocess.run([args.llama_cpp_python, "-c", "import llama_cpp"], capture_output=True).returncode:
        sys.exit(f"{args.llama_cpp_python} cannot import llama_cpp: pass --llama-cpp-python PATH of a Python that can")

    from nlpsuite.api import Suite
    from nlpsuite.modelstore.resolve import ensure_model
    from nlpsuite.modelstore.store import read_manifest

    model_source = Suite(model=args.model).source
    folders = {p: ensure_model(model_source, p) for p in args.precisions.split(",")}  # convert outside timings
    source = read_manifest(next(iter(folders.values())))["source"]
    if not source.get("gguf"):
        sys.exit("the transformers reference loads a GGUF file: use the default model or --model FILE.gguf")
    gguf_path = Path(source["gguf"])
    if args.cold_only:
        cold_only(args, gguf_path)
        return
    rows = {}
    hf = run_worker("transformers", args, ["--hf-dir", str(gguf_path.parent), "--gguf", gguf_path.name])
    prompt_ids = hf.pop("prompt_ids")
    rows["transformers generate (PyTorch eager)"] = {"precision": "fp32", **hf}
    rows["transformers generate (PyTorch eager)"]["cold_start_s"] = stats(
        cold_start([sys.executable, "-c", HF_COLD, str(gguf_path.parent), gguf_path.name, "Say hello."], args.cold_runs)
    )
    for precision in args.precisions.split(","):
        res = run_worker("nlpsuite", args, ["--precision", precision, *(["--draft"] if args.draft else [])])
        res["cold_start_s"] = stats(cold_start(nlpsuite_cold(args.model, precision), args.cold_runs))
        agree = sum(a == b for a, b in zip(res["runs"][0]["tokens"], hf["runs"][0]["tokens"], strict=True))
        res["tokens_equal_to_transformers"] = f"{agree}/{len(hf['runs'][0]['tokens'])}"
        rows[f"nlpsuite ({precision})"] = {"precision": precision, **res}
    out = Path(args.out)
    for quant in quants:
        ids_file = out.parent / "llama_cpp" / "prompt_ids.json"
        ids_file.parent.mkdir(parents=True, exist_ok=True)
        ids_file.write_text(json.dumps(prompt_ids))
        extra = ["--gguf", str(gguf_path), "--precision", quant, "--prompt-ids", str(ids_file)]
        res = run_worker("llama_cpp", args, [*extra, "--llama-cpp-dir", str(ids_file.parent)], args.llama_cpp_python)
        quantized = ids_file.parent / f"{gguf_path.stem}.{quant}.gguf"
        res["cold_start_s"] = stats(
            cold_start([args.llama_cpp_python, "-c", LLAMA_CPP_COLD, str(quantized), "Say hello."], args.cold_runs)
        )
        agree = sum(a == b for a, b in zip(res["runs"][0]["tokens"], hf["runs"][0]["tokens"], strict=True))
        res["tokens_equal_to_transformers"] = f"{agree}/{len(hf['runs'][0]['tokens'])}"
        rows[f"llama.cpp ({quant})"] = {"precision": quant, **res}

    for row in rows.values():
        row["prefill_ms"] = stats([r["prefill_ms"] for r in row["runs"]])
        row["decode_tokens_per_s"] = stats([r["decode_tokens_per_s"] for r in row["runs"]])
        row["prompt_tokens"] = row["runs"][0]["prompt_tokens"]
        del row["runs"]
    report = {
        "model": args.model,
        "new_tokens": args.tokens,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "engines": rows,
    }
    print_table(report)
    save(report, out)


def print_table(report: dict) -> None:
    hf_decode = report["engines"]["transformers generate (PyTorch eager)"]["decode_tokens_per_s"]["median"]
    title = (f"{report['model']}: {report['new_tokens']} new tokens, greedy, median (min–max) of "
             f"{report['runs']} runs, {report['cpus']} CPUs")  # fmt: skip
    columns = ["engine", "prefill ms", "decode tok/s", "× transformers", "peak RSS MB", "cold start s",
               "tokens = transformers"]  # fmt: skip
    rows = [
        (name, spread(row["prefill_ms"], ".0f"), spread(row["decode_tokens_per_s"], ".1f"),
         f"{row['decode_tokens_per_s']['median'] / hf_decode:.2f}", f"{row['peak_rss_mb']:.0f}",
         spread(row["cold_start_s"]), row.get("tokens_equal_to_transformers", "-"))
        for name, row in report["engines"].items()
    ]  # fmt: skip
    show(title, columns, rows)


if __name__ == "__main__":
    main()
