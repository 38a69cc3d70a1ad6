"""What the content check of a cached model costs at load time: cold (no stamp, every file hashed) and warm.

Each run is a fresh process, as a CLI call would be. Cold removes the stamps first, as after copying a
cache or on a read-only cache used for the first time; warm is every later load.

    python benchmarks/bench_verify.py                     # the default model, fp32 (converted if needed)
    python benchmarks/bench_verify.py --model smollm2 --runs 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from harness import out_option, save, show, spread

WORKER = """
import sys, time
from pathlib import Path
from nlpsuite.modelstore.integrity import STAMP_FILE
from nlpsuite.runtime import prepacked
from nlpsuite.runtime.device import quiet_onnxruntime
from nlpsuite.modelstore.store import damaged, read_manifest

folder, mode = Path(sys.argv[1]), sys.argv[2]
key = prepacked.machine_key(quiet_onnxruntime())
if mode == "cold":
    for stamp in [folder / STAMP_FILE, *folder.glob("cpu-*/" + STAMP_FILE)]:
        stamp.unlink(missing_ok=True)
manifest = read_manifest(folder)
started = time.perf_counter()
assert not damaged(folder, manifest)
model_s = time.perf_counter() - started
started = time.perf_counter()
copy = prepacked.find(folder, key)
print(model_s, time.perf_counter() - started if copy else float("nan"), sum(manifest["files"].values()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--runs", type=int, default=3)
    out_option(parser, "verify")
    args = parser.parse_args()

    from nlpsuite.api import Suite

    folder = Suite(model=args.model, device="cpu").backbone.folder  # converts and writes the packed copy once
    rows = {}
    for mode in ("cold", "warm") * args.runs:
        out = subprocess.run([sys.executable, "-c", WORKER, str(folder), mode], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        model_s, copy_s, size = (float(x) for x in out.stdout.split())
        rows.setdefault(mode, []).append((model_s, copy_s))
    table = [
        (mode, spread((t[0] * 1000 for t in times), ".1f"), spread((t[1] * 1000 for t in times), ".1f"))
        for mode, times in rows.items()
    ]
    show(f"{folder} ({size / 1e6:,.0f} MB of model files), median (min–max) of {args.runs}",
         ["load", "model files ms", "packed copy ms"], table)  # fmt: skip
    save({"folder": str(folder), "bytes": size, "runs": rows}, args.out)


if __name__ == "__main__":
    main()
