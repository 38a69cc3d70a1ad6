"""Kills, the cache, the file system, disks, indexes and Ctrl-C (K, C, U, D, I, G)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import Case, Ctx, Verdict, answered, finish, kill_group

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


CASES = KILLS + CACHE
