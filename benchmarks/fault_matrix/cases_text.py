"""Languages and text (LT): scripts, invisible characters, BOMs, line ends, big inputs, full disks."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from . import Case, Ctx, Verdict, answered, finish, jsonl, kill_group, refused, watch


def sigint_after(ctx: Ctx, cmd: str, after: float, word: str) -> tuple:
    proc = ctx.spawn(f"exec {cmd}")
    watch(proc, after)
    sent = time.monotonic()
    kill_group(proc, signal.SIGINT)
    run = finish(proc, 60)
    progress = [line for line in run.err.splitlines() if word in line.lower()]
    return run, time.monotonic() - sent, progress


def lt01(ctx: Ctx) -> Verdict:
    run, took, progress = sigint_after(ctx, "nlpsuite summarize --file data/zh1mb.txt", 60, "summariz")
    ok = run.rc == 130 and took < 15 and bool(progress)
    return ok, f"exit {run.rc} {took:.1f} s after SIGINT at 60 s; {len(progress)} progress lines; {run.last!r}"


def lt02(ctx: Ctx) -> Verdict:
    ctx.sh("nlpsuite index rm zhidx")
    run, took, progress = sigint_after(ctx, "nlpsuite index add zhidx data/zh1mb.txt", 60, "")
    left = (ctx.home / "indexes" / "zhidx").exists()
    lines = [line for line in run.err.splitlines() if line.strip() and not line.startswith("warning")]
    ok = run.rc == 130 and took < 15 and len(lines) >= 2 and not left
    return (
        ok,
        f"exit {run.rc} {took:.1f} s after SIGINT at 60 s; {len(lines)} lines on stderr "
        f"(last {run.last!r}); index folder left: {left}",
    )


LT03 = """import time
from nlpsuite import text
s = open("data/zh1mb.txt", encoding="utf-8").read()[:160_000]
t = time.perf_counter()
pieces = text.chunk(s, len, 200)
print(len(pieces), round(time.perf_counter() - t, 2), all(p.text == s[p.start:p.end] for p in pieces))
"""


def lt03(ctx: Ctx) -> Verdict:
    (ctx.root / "lt03.py").write_text(LT03)
    run = ctx.sh("python lt03.py")
    if run.rc != 0:
        return False, f"exit {run.rc}: {run.last}"
    pieces, seconds, exact = run.out.split()
    return float(
        seconds
    ) < 5 and exact == "True", f"160k Han characters: {pieces} pieces in {seconds} s, exact: {exact}"


def same_texts(ctx: Ctx, name: str, extra: str = "") -> Verdict:
    out = ctx.root / f"{name}.out.jsonl"
    out.unlink(missing_ok=True)
    run = ctx.sh(f"nlpsuite sentiment --input data/{name}.jsonl --output {out.name} {extra}")
    if run.rc != 0:
        return False, f"exit {run.rc}: {run.last}"
    given, got = jsonl(ctx.data / f"{name}.jsonl"), jsonl(out)
    same = [g["text"] for g in given] == [o["text"] for o in got] and all("label" in o for o in got)
    return same, f"exit 0, {len(got)} records, texts byte-identical and labelled: {same}"


def lt04(ctx: Ctx) -> Verdict:
    batch = same_texts(ctx, "mixed")
    translate = ctx.sh("nlpsuite translate --file data/mixed.txt --to de --json", timeout=600)
    ctx.sh("nlpsuite index rm mixidx")
    ctx.sh("nlpsuite index add mixidx data/mixed.txt data/docs/amazon.txt")
    found = [ctx.sh(f"nlpsuite search mixidx '{q}' -k 1 --json") for q in ("河流", "النهر", "Река")]
    hits = [json.loads(r.out)["results"][0]["source"].endswith("mixed.txt") if r.rc == 0 else False for r in found]
    ok = batch[0] and translate.rc == 0 and all(hits)
    return ok, f"{batch[1]}; translate exit {translate.rc}; search finds the mixed document: {hits}"


def lt05(ctx: Ctx) -> Verdict:
    batch = same_texts(ctx, "rtl")
    single = ctx.sh("nlpsuite sentiment --file data/rtl.txt")
    return batch[0] and single.rc == 0, f"{batch[1]}; --file exit {single.rc}"


def lt06(ctx: Ctx) -> Verdict:
    batch = same_texts(ctx, "emoji")
    bad = []
    for n in (1, 3, 5, 8, 12):
        run = ctx.sh(f"nlpsuite generate 'Reply with three emoji: 👨‍👩‍👧‍👦' --max-tokens {n} --json")
        if run.rc != 0 or "\ufffd" in json.loads(run.out)["text"]:
            bad.append(n)
    return batch[0] and not bad, f"{batch[1]}; generate cut at 1..12 tokens with U+FFFD or failing: {bad or 'none'}"


def lt07(ctx: Ctx) -> Verdict:
    runs = [
        refused(ctx.sh(c), "empty")
        for c in (
            "nlpsuite sentiment --file data/zw_only.txt --json",
            "nlpsuite sentiment \"$(printf '\\u200b\\u200b')\"",
            "nlpsuite sentiment --input data/zw.jsonl --output lt07.jsonl",
        )
    ]
    return all(ok for ok, _ in runs), "; ".join(said for _, said in runs)


def lt08(ctx: Ctx) -> Verdict:
    text = answered(ctx.sh("nlpsuite sentiment --file data/bom_mid.txt"), "positive")
    record = refused(ctx.sh("nlpsuite sentiment --input data/bom_mid.jsonl --output lt08.jsonl"), "bom_mid.jsonl:2")
    return text[0] and record[0], f"BOM mid .txt: {text[1]}; JSONL line starting with a BOM: {record[1]}"


def lt09(ctx: Ctx) -> Verdict:
    results = []
    for name in ("crlf.jsonl", "crlf.csv"):
        run = ctx.sh(f"nlpsuite sentiment --input data/{name} --output - --quiet")
        texts = [json.loads(line)["text"] for line in run.out.splitlines() if line.strip()]
        results.append((run.rc, texts))
    ok = (
        all(rc == 0 for rc, _ in results)
        and results[0][1] == ["Great film.", "Awful film."]
        and results[1][1] == ["Great film.", "Two\r\nlines"]
    )
    text = ctx.sh("nlpsuite summarize --file data/crlf.txt --max-words 20")
    return ok and text.rc == 0, f"JSONL texts {results[0][1]}; CSV texts {results[1][1]}; CRLF .txt exit {text.rc}"


def lt10(ctx: Ctx) -> Verdict:
    big = ctx.data / "big500.jsonl"
    if not big.exists() or big.stat().st_size < 500_000_000:
        line = json.dumps({"text": "A wonderful, moving film with a great cast and a story that stays."}) + "\n"
        with open(big, "w") as f:
            for _ in range(500_000_000 // len(line) + 1):
                f.write(line)
    out = ctx.root / "lt10.jsonl"
    out.unlink(missing_ok=True)
    proc = ctx.spawn("exec nlpsuite sentiment --input data/big500.jsonl --output lt10.jsonl --quiet")
    start, peak, first = time.monotonic(), 0.0, None
    while time.monotonic() - start < 240 and proc.poll() is None:  # the review stopped it at 240 s
        peak = max(peak, watch(proc, 5))
        if first is None and out.exists() and out.stat().st_size > 0:
            first = time.monotonic() - start
    kill_group(proc, signal.SIGINT)
    finish(proc, 30)
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    said = f"first record after {first:.0f} s" if first is not None else "no record yet"
    return (
        peak < 1500,
        f"peak RSS {peak:.0f} MB over {time.monotonic() - start:.0f} s of a 500 MB input "
        f"(every record is checked before the first is run); {said}; {lines} records by then",
    )


def mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def lt11(ctx: Ctx) -> Verdict:
    home = ctx.root / "homes" / "lt11"
    home.mkdir(parents=True, exist_ok=True)
    for part in ("models", "downloads", "derived"):
        if not (home / part).exists():
            (home / part).symlink_to(ctx.home / part)
    mount(home / "indexes", "200k")
    try:
        small = ctx.sh("nlpsuite index add small data/docs/amazon.txt", home=home)
        full = ctx.sh("nlpsuite index add small data/bigdocs", home=home, timeout=900)
        ok, said = refused(full, "disk full")
        gens = len(list((home / "indexes" / "small").glob("gen-*")))
        search = ctx.sh("nlpsuite search small river --json", home=home)
        good = ok and small.rc == 0 and gens == 1 and search.rc == 0
        return good, f"{said}; generation folders {gens}; the old index searchable: {search.rc == 0}"
    finally:
        subprocess.run(["umount", str(home / "indexes")], check=False)


def lt12(ctx: Ctx) -> Verdict:
    where = ctx.root / "lt12"
    mount(where, "64k")
    cmd = "nlpsuite sentiment --input data/lt12.jsonl --output lt12/out.jsonl"
    try:
        ok, said = refused(ctx.sh(cmd, timeout=1200), "disk full: cannot write lt12/out.jsonl")
        subprocess.run(["mount", "-o", "remount,size=2m", str(where)], check=True)
        again = ctx.sh(cmd, timeout=1800)
        ids = [r["id"] for r in jsonl(where / "out.jsonl")]
        resumed = next((line for line in again.err.splitlines() if "resuming" in line), "")
        good = ok and again.rc == 0 and ids == [r["id"] for r in jsonl(ctx.data / "lt12.jsonl")]
        return (
            good,
            f"{said}; after more room: exit {again.rc}, {len(ids)} records, each once, in order: {good}; "
            f"{resumed.strip()!r}",
        )
    finally:
        subprocess.run(["umount", str(where)], check=False)


def lt13(ctx: Ctx) -> Verdict:
    cut = ctx.sh("set -o pipefail; nlpsuite sentiment --input data/good.jsonl --output - | head -1")
    gen = ctx.sh("set -o pipefail; nlpsuite generate 'Tell me a story.' --max-tokens 60 | head -c 20")
    ok = "Traceback" not in cut.err + gen.err and cut.out.count("\n") == 1 and len(cut.err.strip().splitlines()) <= 1
    return ok, f"batch | head -1: exit {cut.rc}, stderr {cut.err.strip()[:80]!r}; generate | head -c 20: exit {gen.rc}"


def lt14(ctx: Ctx) -> Verdict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (ctx.data / "random.parquet").write_bytes(bytes(range(256)) * 16)
    pq.write_table(pa.table({"text": pa.array([b"abc"], pa.binary())}), ctx.data / "bytes.parquet")
    pq.write_table(pa.table({"text": ["fine", None]}), ctx.data / "null.parquet")
    runs = [
        refused(ctx.sh(f"nlpsuite sentiment --input data/{n}.parquet --output lt14-{n}.jsonl"), says)
        for n, says in (("random", "parquet"), ("bytes", "bytes"), ("null", "null.parquet:2"))
    ]
    return all(ok for ok, _ in runs), "; ".join(said for _, said in runs)


CASES = [
    Case(
        "LT01",
        "nlpsuite summarize --file data/zh1mb.txt (1 MB of Chinese, no punctuation); SIGINT at 60 s",
        lt01,
        "tests/test_batch_output.py::test_long_work_reports_progress_in_plain_lines_when_stderr_is_no_terminal",
        slow=True,
    ),
    Case(
        "LT02",
        "nlpsuite index add zhidx data/zh1mb.txt; SIGINT at 60 s",
        lt02,
        "tests/test_heads.py::test_an_embedding_pass_holds_a_bounded_number_of_tokens",
        slow=True,
    ),
    Case(
        "LT03",
        "text.chunk of 160k Han characters without punctuation",
        lt03,
        "tests/test_text.py::test_a_one_megabyte_line_without_spaces_is_cut_completely",
    ),
    Case(
        "LT04",
        "mixed scripts: batch sentiment, translate --to de, index add + search in zh/ar/ru",
        lt04,
        "tests/test_retrieval.py::test_a_mixed_language_index_finds_chinese_english_and_french_by_bm25",
        slow=True,
    ),
    Case(
        "LT05",
        "RTL text with U+202E/U+2067/U+200F: batch and --file",
        lt05,
        "tests/test_records.py::test_a_record_written_by_dumps_reads_back_equal_and_stays_on_one_line",
    ),
    Case(
        "LT06",
        "emoji ZWJ sequences: batch; generate cut at 1..12 tokens",
        lt06,
        "tests/test_sampling.py::test_no_replacement_character_when_the_limit_cuts_a_character",
        slow=True,
    ),
    Case(
        "LT07",
        "sentiment of zero-width characters only: --file, argument, batch record",
        lt07,
        "tests/test_text.py::test_text_of_invisible_characters_is_blank",
    ),
    Case(
        "LT08",
        "a BOM mid .txt; a JSONL line starting with a BOM",
        lt08,
        "tests/test_records.py::test_errors_are_one_line_naming_file_line_and_column",
    ),
    Case(
        "LT09",
        "CRLF JSONL, CSV (a quoted field keeps its own CRLF) and .txt",
        lt09,
        "tests/test_records.py::test_a_quoted_csv_field_may_span_lines_and_each_record_knows_its_first_line",
    ),
    Case(
        "LT10",
        "nlpsuite sentiment --input data/big500.jsonl (500 MB) --output lt10.jsonl --quiet; RSS for 240 s",
        lt10,
        "tests/test_batch_output.py::test_batch_input_is_read_as_a_stream",
        slow=True,
    ),
    Case(
        "LT11",
        "indexes/ on a 200 KB tmpfs: index add small amazon.txt; index add small data/bigdocs",
        lt11,
        "tests/test_retrieval.py::test_a_full_disk_while_writing_is_one_line_and_leaves_no_partial_generation",
        slow=True,
    ),
    Case(
        "LT12",
        "--output on a 64 KB tmpfs, 600 records; remount 2 MB; the same command",
        lt12,
        "tests/test_batch_output.py::test_a_full_disk_met_by_the_write_itself_names_the_output",
        slow=True,
    ),
    Case(
        "LT13",
        "nlpsuite sentiment ... --output - | head -1; nlpsuite generate ... | head -c 20",
        lt13,
        "tests/test_batch.py::test_jsonl_csv_and_tsv_records",
    ),
    Case(
        "LT14",
        "random bytes .parquet; a bytes column; a null text",
        lt14,
        "tests/test_records.py::test_parquet_errors_are_one_line",
    ),
]
