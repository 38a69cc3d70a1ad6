"""Re-run the fault matrix (docs/fault-matrix.md): every case of the second review's matrix, each a real
``nlpsuite`` command in a subprocess, judged held or failed by the review's rule, with the test that guards it.

    NLPSUITE_HOME=... python benchmarks/quality_fault_matrix.py [--cases B01,SV13 | --groups B,SV] [--quick]

The home must hold the converted default model (the cases that damage, fill or fetch into a home make their own);
``--work`` is the scratch folder (``data/`` is built there once). Slow cases (minutes each: kills during a
conversion, mounts, servers, Ray, long runs) are left out by ``--quick``. Prints the table and writes the JSON
report; ``--markdown`` prints the table as docs/fault-matrix.md holds it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

from fault_matrix import (
    Case,
    Ctx,
    cases_files,
    cases_input,
    cases_models,
    cases_plugins,
    cases_ray,
    cases_serve_life,
    cases_serve_load,
    cases_server,
    cases_state,
    cases_text,
    cases_trust,
    data,
)
from harness import out_option, save, show

GROUPS = [cases_input, cases_state, cases_files, cases_plugins, cases_trust, cases_server, cases_serve_load,
          cases_serve_life, cases_ray, cases_models, cases_text]  # fmt: skip
# The review's order of its areas: its first matrix's, then the server, Ray, model files, languages and text
ORDER = ["B", "K", "C", "U", "D", "I", "G", "P", "S", "X", "L", "T", "O", "N", "M", "E", "SV", "RY", "MF", "LT"]


def _place(case: Case) -> tuple:
    prefix, number, rest = re.fullmatch(r"([A-Z]+)(\d+)(.*)", case.id).groups()
    return ORDER.index(prefix), int(number), rest


def all_cases() -> list[Case]:
    return sorted((case for group in GROUPS for case in group.CASES), key=_place)


def chosen(args: argparse.Namespace) -> list[Case]:
    cases = all_cases()
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.id in wanted]
    if args.groups:
        prefixes = tuple(args.groups.split(","))
        cases = [c for c in cases if re.match(r"[A-Z]+", c.id).group(0) in prefixes]
    return [c for c in cases if not (args.quick and c.slow)]


def run_case(ctx: Ctx, case: Case) -> dict:
    start = time.monotonic()
    try:
        held, what = case.run(ctx)
    except Exception as exc:  # the harness's own failure is the case's result, never the end of the run
        held, what = False, f"harness error: {type(exc).__name__}: {exc}"
        traceback.print_exc()
    seconds = round(time.monotonic() - start, 1)
    print(f"{case.id}: {'held' if held else 'FAILS'} ({seconds} s) {what}", file=sys.stderr, flush=True)
    return {"id": case.id, "held": held, "what": what, "command": case.command, "guard": case.guard, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", help="comma-separated case ids")
    parser.add_argument("--groups", help="comma-separated id prefixes: B,K,C,U,D,I,G,P,S,X,L,T,O,N,M,E,SV,RY,MF,LT")
    parser.add_argument("--quick", action="store_true", help="leave out the slow cases")
    parser.add_argument("--work", default="/tmp/nlpsuite-fault-matrix", help="scratch folder")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--list", action="store_true", help="list the cases and their guards, run nothing")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="show the results of earlier runs as one table (a later file's result of a case wins), run nothing",
    )
    out_option(parser, "quality_fault_matrix")
    args = parser.parse_args()
    cases = chosen(args)
    if args.list:
        show("fault matrix cases", ["id", "slow", "guard"], [(c.id, c.slow, c.guard) for c in cases], args.markdown)
        return
    if args.merge:
        found = {r["id"]: r for path in args.merge for r in json.loads(Path(path).read_text())["results"]}
        results = [{**found[c.id], "command": c.command, "guard": c.guard} for c in cases if c.id in found]
    else:
        home = Path(os.environ.get("NLPSUITE_HOME", Path.home() / ".cache/nlpsuite"))
        ctx = Ctx(Path(args.work).resolve(), home)
        data.build(ctx.data)
        cases_state.setup(ctx)
        results = [run_case(ctx, case) for case in cases]
    held = sum(r["held"] for r in results)
    rows = [(r["id"], r["command"], "holds" if r["held"] else "FAILS", r["what"], f"`{r['guard']}`") for r in results]
    columns = ["id", "what it does", "result", "what happened", "guarded by"]
    if args.markdown:  # one line per case, nothing cut: the table docs/fault-matrix.md holds
        print(f"**{held}/{len(results)} held**\n")
        print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in row) + " |")
    else:
        show(f"fault matrix: {held}/{len(results)} held", [columns[0], *columns[2:]], [r[:1] + r[2:] for r in rows])
    save({"held": held, "cases": len(results), "results": results}, args.out)


if __name__ == "__main__":
    main()
