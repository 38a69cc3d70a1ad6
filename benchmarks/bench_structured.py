"""Structured output on a real model: validity, cost, and extraction quality (issue 21's targets).

    python benchmarks/bench_structured.py validity [--limit N]    # every schema x prompt of
                                                                  # data/structured_schemas.json: parses and validates?
                                                                  # (greedy: drafting on; the prompts of a schema decode
                                                                  # as one batch)
    python benchmarks/bench_structured.py cost [--limit N]        # the same prompts with and without the schema, as
                                                                  # many tokens each: decode tokens/s, the mask's own
                                                                  # time per token, decode passes per token (counted)
    python benchmarks/bench_structured.py extract                 # data/extract_*.jsonl: `extract` (held to the
                                                                  # schema) against the same model asked in prose
                                                                  # and parsed afterwards; field exact match

Each prints a table and writes JSON under benchmarks/results/. Validity, extraction scores and counted passes do
not depend on the machine's load; tokens/s do (the lead times them on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jsonschema  # the reference validator: a test-extra dependency, never needed at run time

from nlpsuite import Suite
from nlpsuite.runtime import grammar
from nlpsuite.runtime.grammar import Grammar

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
MAX_TOKENS = 320


def schema_sets(limit: int | None) -> list[dict]:
    return json.loads((DATA / "structured_schemas.json").read_text(encoding="utf-8"))["sets"][:limit]


def validator(schema: dict):
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def check(text: str, schema: dict) -> str:
    """ "valid", or why not."""
    try:
        value = json.loads(text)
    except ValueError:
        return "not JSON"
    errors = sorted(validator(schema).iter_errors(value), key=str)
    return "valid" if not errors else f"invalid: {errors[0].message[:80]}"


class Meter:
    """Counts decode passes (backbone forward calls after each call's prefill) and times the constraint's
    methods, by wrapping them for the duration of a ``with``."""

    METHODS = ("mask", "consume", "forced", "valid_prefix", "accepting", "finished")

    def __init__(self, suite) -> None:
        self.suite, self.calls, self.constraint_s = suite, 0, 0.0

    def __enter__(self):
        forward = self.suite.backbone.forward

        def counting(*args, **kwargs):
            self.calls += 1
            return forward(*args, **kwargs)

        self.suite.backbone.forward = counting
        self._saved = {name: getattr(grammar.GrammarConstraint, name) for name in self.METHODS}
        for name, method in self._saved.items():
            setattr(grammar.GrammarConstraint, name, self._timed(method))
        return self

    def _timed(self, method):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.constraint_s += time.perf_counter() - started

        return timed

    def __exit__(self, *exc) -> None:
        del self.suite.backbone.forward
        for name, method in self._saved.items():
            setattr(grammar.GrammarConstraint, name, method)


def system_prompt(schema: dict) -> str:
    """The schema shown to the model too, as users of structured output do: held to the keys is not knowing them."""
    return "Reply with one JSON value that matches this JSON Schema:\n" + json.dumps(schema, ensure_ascii=False)


def run_validity(suite, limit: int | None) -> dict:
    rows = []
    for entry in schema_sets(limit):
        spec = Grammar.json_schema(entry["schema"])
        system = system_prompt(entry["schema"])
        done = suite.complete(entry["prompts"], system=system, grammar=spec, max_tokens=MAX_TOKENS)
        for prompt, c in zip(entry["prompts"], done, strict=True):
            verdict = check(c.text, entry["schema"]) if c.finish_reason == "stop" else f"cut ({c.finish_reason})"
            rows.append({"schema": entry["name"], "kind": entry["kind"], "prompt": prompt, "verdict": verdict,
                         "tokens": c.completion_tokens, "text": c.text})  # fmt: skip
            print(f"{entry['name']:22s} {entry['kind']:8s} {c.completion_tokens:4d} tok  {verdict:30s} {c.text[:60]}")
    valid = sum(r["verdict"] == "valid" for r in rows)
    ended = [r for r in rows if not r["verdict"].startswith("cut")]
    print(f"\nvalid: {valid}/{len(rows)} ({100 * valid / len(rows):.1f}%) over {len({r['schema'] for r in rows})} "
          f"schemas; of the {len(ended)} outputs that ended (not cut by max_tokens or a loop): "
          f"{sum(r['verdict'] == 'valid' for r in ended)} valid")  # fmt: skip
    return {"valid": valid, "n": len(rows), "ended": len(ended), "rows": rows}


def run_cost(suite, limit: int | None) -> dict:
    """Per schema: its prompts held to it, then free (ignore_eos) for as many tokens as each held output took."""
    rows = []
    for entry in schema_sets(limit):
        spec, system = Grammar.json_schema(entry["schema"]), system_prompt(entry["schema"])
        with Meter(suite) as held_meter:
            held = suite.complete(entry["prompts"], system=system, grammar=spec, max_tokens=MAX_TOKENS)
        tokens = max(c.completion_tokens for c in held)
        with Meter(suite) as free_meter:
            free = suite.complete(entry["prompts"], system=system, max_tokens=tokens, ignore_eos=True)
        made = sum(c.completion_tokens for c in held)
        rows.append({
            "schema": entry["name"], "kind": entry["kind"], "tokens": made,
            "held_tokens_per_s": statistics.mean(c.decode_tokens_per_s for c in held),
            "free_tokens_per_s": statistics.mean(c.decode_tokens_per_s for c in free),
            "constraint_ms_per_token": 1000 * held_meter.constraint_s / max(1, made),
            "held_passes": held_meter.calls - 1, "free_passes": free_meter.calls - 1,  # the first call: the prefill
            "free_tokens": sum(c.completion_tokens for c in free),
        })  # fmt: skip
        r = rows[-1]
        print(f"{r['schema']:22s} {r['kind']:8s} held {r['held_tokens_per_s']:6.1f} tok/s  free "
              f"{r['free_tokens_per_s']:6.1f} tok/s  mask {r['constraint_ms_per_token']:.3f} ms/tok  passes "
              f"{r['held_passes']}/{made} tok vs {r['free_passes']}/{r['free_tokens']} tok")  # fmt: skip
    ratio = statistics.mean(r["held_tokens_per_s"] / r["free_tokens_per_s"] for r in rows if r["free_tokens_per_s"])
    print(f"\nheld/free decode speed (mean over schemas, wall clock): {ratio:.3f}")
    return {"speed_ratio": ratio, "rows": rows}


def prose_objects(suite, texts: list[str], schema: dict) -> list:
    """The same model asked in plain prose (extract's own prompt, nothing held), its first JSON object parsed."""
    from nlpsuite_plugins.extract import PROMPT, describe_fields

    prompts = [
        PROMPT.format(fields=describe_fields(schema), text=t) + "\nReply with the JSON object only." for t in texts
    ]
    out = []
    for c in suite.complete(prompts, max_tokens=256, temperature=0.0):
        start = c.text.find("{")
        try:
            value = json.JSONDecoder().raw_decode(c.text[start:])[0] if start >= 0 else None
        except ValueError:
            value = None
        out.append(value if isinstance(value, dict) else None)
    return out


def run_extract(suite) -> dict:
    from nlpsuite.eval.metrics import field_exact_match

    report = {}
    for schema_file in sorted(DATA.glob("extract_*.schema.json")):
        name = schema_file.name.split(".")[0].removeprefix("extract_")
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        records = [json.loads(line) for line in (DATA / f"extract_{name}.jsonl").read_text().splitlines()]
        texts, gold = [r["text"] for r in records], [r["expected"] for r in records]
        held = suite.run("extract", texts, schema=schema)
        prose = prose_objects(suite, texts, schema)
        valid = sum(v is not None and not list(validator(schema).iter_errors(v)) for v in held)
        scores = {"extract": field_exact_match(held, gold), "prose": field_exact_match(prose, gold)}
        report[name] = {"n": len(records), "valid": valid, **scores}
    print(f"{'set':10s} {'n':>3s}  {'extract field/object':>22s}  {'prose field/object':>20s}  prose unparsed")
    for name, r in report.items():
        e, p = r["extract"], r["prose"]
        print(f"{name:10s} {r['n']:3d}  {e['field_exact_match']:10.3f} / {e['object_exact_match']:.3f}  "
              f"{p['field_exact_match']:10.3f} / {p['object_exact_match']:.3f}  {p['invalid']:5d}")  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["validity", "cost", "extract"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--limit", type=int, default=None, help="the first N schemas only")
    args = parser.parse_args()
    suite = Suite(args.model, device="cpu", precision=args.precision)
    started = time.perf_counter()
    if args.what == "validity":
        result = run_validity(suite, args.limit)
    elif args.what == "cost":
        result = run_cost(suite, args.limit)
    else:
        result = run_extract(suite)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"structured_{args.what}.json"
    meta = {"model": suite.source.key, "precision": args.precision, "seconds": round(time.perf_counter() - started, 1)}
    out.write_text(json.dumps({**meta, **result}, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
