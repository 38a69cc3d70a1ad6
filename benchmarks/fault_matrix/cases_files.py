"""The file system, full disks, indexes and Ctrl-C in batch work (U, D, I, G)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import Case, Ctx, Verdict, answered, finish, jsonl, kill_group, refused, wait_lines
from .cases_state import ASK


def read_only(ctx: Ctx, source: Path, name: str) -> Path:
    """``source`` bind-mounted read-only at root/NAME (unmounted by ``unmount``)."""
    target = ctx.root / name
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    return target


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False)


def on_read_only(ctx: Ctx, cmd: str, check: Callable, empty: bool = False) -> Verdict:
    source = ctx.root / "homes" / "empty" if empty else ctx.home
    source.mkdir(parents=True, exist_ok=True)
    ro = read_only(ctx, source, "ro")
    try:
        return check(ctx.sh(cmd, home=ro))
    finally:
        unmount(ro)


FS = "tests/test_filesystem.py::"


FILES = [
    Case(
        "U01",
        "NLPSUITE_HOME=data/amazon.txt/home nlpsuite generate Hi",
        lambda ctx: refused(ctx.sh("nlpsuite generate Hi", home=ctx.data / "amazon.txt" / "home"), "cannot write"),
        "tests/test_store.py::test_cache_dir_under_a_file_is_a_clear_error",
    ),
    Case(
        "U02",
        "NLPSUITE_HOME=data/amazon.txt/home nlpsuite index add x data/docs",
        lambda ctx: refused(ctx.sh("nlpsuite index add x data/docs", home=ctx.data / "amazon.txt" / "home"), "cannot"),
        "tests/test_store.py::test_cache_dir_under_a_file_is_a_clear_error",
    ),
    Case(
        "U03",
        "an empty read-only home: nlpsuite generate Hi",
        lambda ctx: on_read_only(ctx, "nlpsuite generate Hi", lambda r: refused(r, "read-only"), empty=True),
        "tests/test_store.py::test_unwritable_cache_dir_is_a_clear_error",
        slow=True,
    ),
    Case(
        "U04",
        f"the converted home read-only: {ASK}",
        lambda ctx: on_read_only(ctx, ASK, lambda r: answered(r, "Paris")),
        FS + "test_a_read_only_cache_can_be_searched_and_says_what_cannot_be_written",
        slow=True,
    ),
    Case(
        "U05",
        "the converted home read-only: nlpsuite search base river",
        lambda ctx: on_read_only(ctx, "nlpsuite search base river --json", lambda r: answered(r, "amazon.txt")),
        FS + "test_a_read_only_cache_can_be_searched_and_says_what_cannot_be_written",
        slow=True,
    ),
    Case(
        "U06",
        "the converted home read-only: nlpsuite index add ro2 data/docs",
        lambda ctx: on_read_only(ctx, "nlpsuite index add ro2 data/docs", lambda r: refused(r, "read-only")),
        FS + "test_a_read_only_cache_can_be_searched_and_says_what_cannot_be_written",
        slow=True,
    ),
]


def on_tmpfs(ctx: Ctx, name: str, size: str, cmds: list[str], check: Callable) -> Verdict:
    mount = ctx.root / "homes" / name
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        return check([ctx.sh(c, timeout=900, home=mount) for c in cmds], mount)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def d03(runs, home) -> Verdict:
    ok = all(r.rc == 0 and "Paris" in r.out for r in runs)
    return (
        ok,
        f"exits {[r.rc for r in runs]}, {runs[-1].out.strip()[:40]!r}; packed copy: {bool(list(home.rglob('cpu-*')))}",
    )


DISK = [
    Case(
        "D01",
        f"a 50 MB tmpfs home: {ASK}",
        lambda ctx: on_tmpfs(ctx, "d01", "50m", [ASK], lambda runs, home: refused(runs[0], "disk full")),
        FS + "test_disk_full_while_extracting_a_download_says_so_and_leaves_nothing",
        slow=True,
    ),
    Case(
        "D02",
        f"a 400 MB tmpfs home: {ASK}",
        lambda ctx: on_tmpfs(ctx, "d02", "400m", [ASK], lambda runs, home: refused(runs[0], "disk full")),
        FS + "test_too_little_room_to_convert_is_refused_before_writing",
        slow=True,
    ),
    Case(
        "D03",
        f"a 700 MB tmpfs home: {ASK}, twice",
        lambda ctx: on_tmpfs(ctx, "d03", "700m", [ASK, ASK], d03),
        FS + "test_no_packed_copy_is_attempted_without_room_for_it",
        slow=True,
    ),
]


def index_docs(ctx: Ctx, name: str) -> tuple[int, int]:
    run = ctx.sh("nlpsuite index list --json")
    for entry in json.loads(run.out)["indexes"] if run.rc == 0 else []:
        if entry.get("name") == name:
            return entry.get("documents", -1), entry.get("passages", -1)
    return -1, -1


def i01(ctx: Ctx) -> Verdict:
    ctx.sh("nlpsuite index rm kidx")
    ctx.sh("nlpsuite index add kidx data/docs", timeout=600)
    for after in (12, 20):
        proc = ctx.spawn("exec nlpsuite index add kidx data/bigdocs")
        time.sleep(after)
        kill_group(proc)
        proc.wait()
    docs = index_docs(ctx, "kidx")
    search = ctx.sh("nlpsuite search kidx 'Who named the river?' --json")
    ok = docs[0] == 2 and search.rc == 0 and "amazon" in search.out
    return ok, f"after two kill -9: index holds {docs[0]} documents / {docs[1]} passages; search exit {search.rc}"


def i02(ctx: Ctx) -> Verdict:
    run = ctx.sh("nlpsuite index add kidx data/bigdocs", timeout=1200)
    docs = index_docs(ctx, "kidx")
    gens = len(list((ctx.home / "indexes" / "kidx").glob("gen-*")))
    return run.rc == 0 and docs[
        0
    ] == 42 and gens == 1, f"exit {run.rc}: {docs[0]} documents / {docs[1]} passages, {gens} generation folder"


def i03(ctx: Ctx) -> Verdict:
    """Two adds at once: one writer per index (issue 23), so the second is refused in one line naming the other
    run, and with --wait both complete (the review's expectation: 42 documents)."""
    results = []
    for wait in ("", " --wait"):
        ctx.sh("nlpsuite index rm cidx")
        first = ctx.spawn(f"nlpsuite index add cidx data/bigdocs{wait}")
        time.sleep(8)  # the first one holds the index by then
        second = ctx.spawn(f"nlpsuite index add cidx data/docs{wait}")
        runs = [finish(first, 1200), finish(second, 1200)]
        results.append((runs, index_docs(ctx, "cidx")))
    (alone, docs), (waited, both) = results
    ok_refused, said = refused(alone[1], "being written by another nlpsuite run")
    ok = ok_refused and alone[0].rc == 0 and all(r.rc == 0 for r in waited) and both[0] == 42
    return (
        ok,
        f"at once: exits {[r.rc for r in alone]}, {said}; with --wait: exits {[r.rc for r in waited]}, "
        f"{both[0]} documents / {both[1]} passages",
    )


INDEXES = [
    Case(
        "I01",
        "index kidx (data/docs) + 'index add kidx data/bigdocs' killed -9 at 12 s and at 20 s",
        i01,
        "tests/test_retrieval.py::test_an_interrupted_add_leaves_the_index_as_it_was",
        slow=True,
    ),
    Case(
        "I02",
        "the same add, rerun to the end",
        i02,
        "tests/test_retrieval.py::test_an_interrupted_add_leaves_the_index_as_it_was",
        slow=True,
    ),
    Case(
        "I03",
        "two 'index add cidx' at once (bigdocs, then docs 8 s later), without and with --wait",
        i03,
        "tests/test_batch_output.py::test_an_index_has_one_writer_too",
        slow=True,
    ),
]


def batch_sigint(ctx: Ctx, out: str) -> tuple:
    (ctx.root / out).unlink(missing_ok=True)
    cmd = f"exec nlpsuite generate --input data/batch40.jsonl --output {out} --batch-size 4 --max-tokens 48"
    proc = ctx.spawn(cmd)
    wait_lines(proc, ctx.root / out, 4)
    kill_group(proc, signal.SIGINT)
    run = finish(proc, 60)
    return run, jsonl(ctx.root / out) if (ctx.root / out).exists() else [], cmd.removeprefix("exec ")


def g01(ctx: Ctx) -> Verdict:
    run, rows, _ = batch_sigint(ctx, "g01.jsonl")
    cut = [r for r in rows if r.get("finish_reason") == "interrupted"]
    told = re.search(r"(\d+) of 40 records are in", run.err)
    ok = run.rc == 130 and not cut and told is not None and int(told.group(1)) == len(rows)
    return ok, f"exit {run.rc}, {len(rows)} records, {len(cut)} cut short; said {run.last!r}"


def g02(ctx: Ctx) -> Verdict:
    run, rows, cmd = batch_sigint(ctx, "g02.jsonl")
    again = ctx.sh(cmd, timeout=1800)
    rows = jsonl(ctx.root / "g02.jsonl")
    ids = [r["id"] for r in rows]
    ok = run.rc == 130 and again.rc == 0 and ids == [f"p{i:02d}" for i in range(40)]
    resumed = next((line for line in again.err.splitlines() if "resuming" in line), "")
    return (
        ok,
        f"exit {run.rc}, then exit {again.rc}: {len(ids)} records, {len(set(ids))} ids, in order: "
        f"{ids == sorted(ids)}; {resumed.strip()!r}",
    )


def g03(ctx: Ctx) -> Verdict:
    corpus = ctx.data / "corpus.txt"
    corpus.write_text((ctx.data / "big1mb.txt").read_text()[:200_000])
    shutil.rmtree(ctx.root / "runs" / "gru", ignore_errors=True)
    cmd = "nlpsuite train data/corpus.txt --arch gru --epochs 1 --out runs/gru"
    proc = ctx.spawn(f"exec {cmd}")
    time.sleep(20)
    kill_group(proc, signal.SIGINT)
    first = finish(proc, 60)
    again = ctx.sh(cmd, timeout=1800)
    ok = first.rc == 130 and "checkpoint saved" in first.err and again.rc == 0
    return ok, f"exit {first.rc} {first.last!r}; rerun exit {again.rc} {again.last!r}"


SIGNALS = [
    Case(
        "G01",
        "nlpsuite generate --input data/batch40.jsonl --output g01.jsonl --batch-size 4 --max-tokens 48; "
        "SIGINT after 4 lines",
        g01,
        "tests/test_batch.py::test_ctrl_c_in_batch_generation_exits_130_and_writes_no_record_cut_short",
        slow=True,
    ),
    Case(
        "G02",
        "the same, SIGINT after 4 lines, then the same command again",
        g02,
        "tests/test_batch.py::test_interrupted_run_resumes_without_loss_or_duplicates",
        slow=True,
    ),
    Case(
        "G03",
        "nlpsuite train data/corpus.txt --arch gru; SIGINT at 20 s; the same command again",
        g03,
        "tests/test_train.py::test_resume_after_interrupt_restores_the_step_and_the_result",
        slow=True,
    ),
]


CASES = FILES + DISK + INDEXES + SIGNALS
