"""Kills, the cache, the file system, disks, indexes and Ctrl-C (K, C, U, D, I, G)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import Case, Ctx, Verdict, answered, finish, jsonl, kill_group, refused

ASK = 'nlpsuite generate "What is the capital of France?" --max-tokens 12'
MODEL = Path("models/smollm2-135m-instruct/fp32")


def setup(ctx: Ctx) -> None:
    """The index the search cases read ('base': data/docs) in the home."""
    if not (ctx.home / "indexes" / "base").exists():
        ctx.sh("nlpsuite index add base data/docs", timeout=900)


def leftovers(home: Path) -> list[str]:
    """Partial downloads, conversions and packed copies left in a home."""
    return [
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.name.startswith((".download-", ".fp32-partial")) or "-partial-" in p.name
    ]


def killed_then_rerun(ctx: Ctx, name: str, when: Callable[[float, str, Path], bool], group: bool = True) -> Verdict:
    """A fresh home; the first run is killed -9 once ``when(seconds, stderr so far, home)``; two reruns must
    answer right and leave nothing partial behind."""
    home = ctx.root / "homes" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    proc = ctx.spawn(f"exec {ASK}", home=home)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(line.decode(errors="replace") for line in proc.stderr))
    reader.start()
    start, phase = time.monotonic(), "ended before the kill"
    while proc.poll() is None and time.monotonic() - start < 900:
        if when(time.monotonic() - start, "".join(err), home):
            phase = f"killed at {time.monotonic() - start:.0f} s after {(err or ['(nothing)'])[-1].strip()[:60]!r}"
            kill_group(proc) if group else proc.kill()
            break
        time.sleep(0.2)
    proc.wait()
    reader.join(5)
    first, second = ctx.sh(ASK, timeout=900, home=home), ctx.sh(ASK, timeout=300, home=home)
    left = leftovers(home)
    ok = all("Paris" in r.out and r.rc == 0 for r in (first, second)) and not left
    shutil.rmtree(home, ignore_errors=True)
    return (
        ok,
        f"{phase}; rerun exit {first.rc} in {first.secs:.0f} s {first.out.strip()[:40]!r}, again exit "
        f"{second.rc}; left: {left or 'nothing'}",
    )


def at(seconds: float):
    return lambda t, err, home: t >= seconds


def partial_data_over(mb: int):
    def when(t, err, home):
        return (
            any(p.stat().st_size > mb * 2**20 for p in (home / "models").rglob("*.onnx.data") if "partial" in str(p))
            if (home / "models").exists()
            else False
        )

    return when


def k14(ctx: Ctx) -> Verdict:
    home = ctx.root / "homes" / "k14"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    procs = [ctx.spawn(ASK, home=home) for _ in range(2)]
    runs = [finish(p, 900) for p in procs]
    converting = sum("converting" in r.err for r in runs)
    ok = all(r.rc == 0 and "Paris" in r.out for r in runs) and converting == 1 and not leftovers(home)
    shutil.rmtree(home, ignore_errors=True)
    return ok, f"exits {[r.rc for r in runs]}, 'converting' printed by {converting}; left {leftovers(home)}"


KILLS = [
    *(
        Case(
            f"K{i:02d}",
            f"fresh home; {ASK}; kill -9 at {s} s; rerun twice",
            lambda ctx, s=s, i=i: killed_then_rerun(ctx, f"k{i:02d}", at(s)),
            "tests/test_store.py::test_a_killed_build_leaves_no_partial_folder_after_the_next_build",
            slow=True,
        )
        for i, s in enumerate((2, 5, 8, 11, 14, 17, 20, 23, 26, 30))
    ),
    Case(
        "K10",
        f"fresh home; {ASK}; kill -9 at 'writing the ONNX graph'; rerun",
        lambda ctx: killed_then_rerun(ctx, "k10", lambda t, err, home: "writing the ONNX graph" in err),
        "tests/test_store.py::test_an_interrupted_build_leaves_nothing_behind",
        slow=True,
    ),
    Case(
        "K11",
        f"fresh home; {ASK}; kill -9 when the partial model.onnx.data passes 450 MB; rerun",
        lambda ctx: killed_then_rerun(ctx, "k11", partial_data_over(450)),
        "tests/test_store.py::test_an_interrupted_build_leaves_nothing_behind",
        slow=True,
    ),
    Case(
        "K12",
        f"fresh home; {ASK}; kill -9 the moment fp32/manifest.json is published; rerun",
        lambda ctx: killed_then_rerun(ctx, "k12", lambda t, err, home: (home / MODEL / "manifest.json").exists()),
        "tests/test_prepacked.py::test_a_damaged_packed_copy_is_replaced",
        slow=True,
    ),
    Case(
        "K13",
        f"fresh home; {ASK}; kill -9 (group) after 'Successfully downloaded'; rerun; downloads/.download-*",
        lambda ctx: killed_then_rerun(
            ctx, "k13", lambda t, err, home: "Successfully downloaded" in err or (home / "models").exists()
        ),
        "tests/test_filesystem.py::test_partial_downloads_left_by_killed_runs_are_removed",
        slow=True,
    ),
    Case(
        "K14",
        f"fresh home; two '{ASK}' started together",
        k14,
        "tests/test_store.py::test_build_publishes_once_and_reuses",
        slow=True,
    ),
]


def damaged_cache(ctx: Ctx, damage: Callable[[Path], None], sentiment: bool = False) -> Verdict:
    """A copy of the converted home, damaged; generate (and sentiment) must answer right, never NaN."""
    home = ctx.root / "homes" / "cache"
    if not (home / MODEL / "manifest.json").exists():
        home = ctx.home_copy("cache")
    damage(home / MODEL)
    run = ctx.sh(f"{ASK} --json", timeout=900, home=home)
    ok, said = answered(run, "Paris")
    if sentiment:
        sent = ctx.sh("nlpsuite sentiment 'A gorgeous, witty and moving film.' --json", home=home)
        good, told = answered(sent, '"positive"')
        ok, said = ok and good, f"{said}; sentiment {told}"
    notes = [line.strip() for line in run.err.splitlines() if "damaged" in line or "rebuild" in line]
    return ok, said + (f"; said {notes[0][:100]!r}" if notes else "")


def overwrite(name: str, size: int = 8 << 20, packed: bool = False, drop_packed: bool = True):
    def damage(folder: Path) -> None:
        path = next(folder.glob(f"cpu-*/{name}")) if packed else folder / name
        if drop_packed and not packed:
            for copy in folder.glob("cpu-*"):
                shutil.rmtree(copy)
        with open(path, "r+b") as f:
            f.seek(path.stat().st_size // 2)
            f.write(os.urandom(min(size, path.stat().st_size // 4)))

    return damage


def truncate(name: str):
    def damage(folder: Path) -> None:
        path = folder / name
        os.truncate(path, path.stat().st_size // 2)

    return damage


INTEGRITY = "tests/test_integrity.py::"
CACHE = [
    Case(
        "C01",
        "truncate fp32/model.onnx.data to half; generate",
        lambda ctx: damaged_cache(ctx, truncate("model.onnx.data")),
        "tests/test_store.py::test_truncated_file_is_not_trusted_and_is_rebuilt",
        slow=True,
    ),
    Case(
        "C02",
        "8 MB overwritten mid fp32/model.onnx.data, packed copy removed; generate, sentiment",
        lambda ctx: damaged_cache(ctx, overwrite("model.onnx.data"), sentiment=True),
        INTEGRITY + "test_same_size_corruption_of_the_weights_is_detected_and_rebuilt",
        slow=True,
    ),
    Case(
        "C03",
        "8 MB overwritten in the packed copy cpu-*/model.onnx.data; generate, sentiment",
        lambda ctx: damaged_cache(ctx, overwrite("model.onnx.data", packed=True), sentiment=True),
        INTEGRITY + "test_same_size_corruption_of_the_packed_copy_is_rebuilt",
        slow=True,
    ),
    Case(
        "C04",
        "fp32/manifest.json deleted; generate",
        lambda ctx: damaged_cache(ctx, lambda f: (f / "manifest.json").unlink()),
        "tests/test_store.py::test_missing_manifest_means_missing",
        slow=True,
    ),
    Case(
        "C05",
        "fp32/model.onnx truncated; generate",
        lambda ctx: damaged_cache(ctx, truncate("model.onnx")),
        "tests/test_store.py::test_truncated_file_is_not_trusted_and_is_rebuilt",
        slow=True,
    ),
    Case(
        "C06",
        "20 KB of fp32/model.onnx overwritten (same size), packed copy removed; generate",
        lambda ctx: damaged_cache(ctx, overwrite("model.onnx", 20_000)),
        INTEGRITY + "test_same_size_corruption_of_the_weights_is_detected_and_rebuilt",
        slow=True,
    ),
]


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
    ctx.sh("nlpsuite index rm cidx")
    procs = [ctx.spawn(f"nlpsuite index add cidx data/{d}") for d in ("bigdocs", "docs")]
    runs = [finish(p, 1200) for p in procs]
    docs = index_docs(ctx, "cidx")
    ok = all(r.rc == 0 for r in runs) and docs[0] == 42
    return ok, f"exits {[r.rc for r in runs]}; {docs[0]} documents / {docs[1]} passages"


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
        "two 'index add cidx' at once (bigdocs, docs)",
        i03,
        "tests/test_batch_output.py::test_an_index_has_one_writer_too",
        slow=True,
    ),
]


def batch_sigint(ctx: Ctx, out: str) -> tuple:
    (ctx.root / out).unlink(missing_ok=True)
    cmd = f"exec nlpsuite generate --input data/batch40.jsonl --output {out} --batch-size 4 --max-tokens 48"
    proc = ctx.spawn(cmd)
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < 600:
        if (ctx.root / out).exists() and len((ctx.root / out).read_text().splitlines()) >= 4:
            break
        time.sleep(0.3)
    kill_group(proc, signal.SIGINT)
    run = finish(proc, 60)
    return run, jsonl(ctx.root / out) if (ctx.root / out).exists() else [], cmd.removeprefix("exec ")


def g01(ctx: Ctx) -> Verdict:
    run, rows, _ = batch_sigint(ctx, "g01.jsonl")
    cut = [r for r in rows if r.get("finish_reason") == "interrupted"]
    ok = run.rc == 130 and not cut and "resume" in run.err.lower()
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

CASES = KILLS + CACHE + FILES + DISK + INDEXES + SIGNALS
