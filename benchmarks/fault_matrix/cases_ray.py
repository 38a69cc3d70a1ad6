"""Ray (RY): bounded in time; a cluster of this run's own is started with ``ray start --head`` in its own temp folder
and stopped by its process group (never ``ray stop``, which stops every Ray of the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import Case, Ctx, Verdict, finish, jsonl, kill_group, refused, wait_lines

RAY = "tests/test_ray.py::"
BATCH = "nlpsuite sentiment --input data/batch120.jsonl --output {out} --ray local --workers 2"


def ry01(ctx: Ctx) -> Verdict:
    ok, said = refused(
        run := ctx.sh("nlpsuite sentiment --input data/good.jsonl --output ry1.jsonl --ray 127.0.0.1:1", timeout=120),
        "cannot connect",
    )
    return ok and run.secs < 30, f"{said} in {run.secs:.1f} s"


def ry02(ctx: Ctx) -> Verdict:
    temp = Path(tempfile.mkdtemp(prefix="rayfm", dir="/tmp"))
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_TMPDIR=str(temp))
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address",
                             "127.0.0.1", "--port", "0", "--num-cpus", "2", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        head.communicate(timeout=180)
        address = (temp / "ray" / "ray_current_cluster").read_text().strip()
        wrong = temp / "wrong"
        wrong.write_text(secrets.token_hex(32))
        base = f"nlpsuite sentiment --input data/good.jsonl --output {{out}} --ray {address}"
        right = ctx.sh(base.format(out="ry2.jsonl"), timeout=300, RAY_AUTH_TOKEN_PATH=str(token), RAY_TMPDIR=str(temp))
        bad = ctx.sh(
            base.format(out="ry2b.jsonl"), timeout=120, RAY_AUTH_TOKEN_PATH=str(wrong), RAY_NUM_REDIS_GET_RETRIES="2"
        )
        ok_bad, said = refused(bad, "refused this token")
        rows = len(jsonl(ctx.root / "ry2.jsonl")) if (ctx.root / "ry2.jsonl").exists() else 0
        return ok_bad and right.rc == 0 and rows == 5, f"right token: exit {right.rc}, {rows} records; wrong: {said}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(3)
        shutil.rmtree(temp, ignore_errors=True)
        (ctx.root / "ry2.jsonl").unlink(missing_ok=True)


def ry03(ctx: Ctx) -> Verdict:
    shadow = ctx.root / "noray"
    shadow.mkdir(exist_ok=True)
    (shadow / "ray.py").write_text("raise ImportError('No module named ray')\n")
    results = [
        refused(ctx.sh(cmd, PYTHONPATH=str(shadow)), "pip install")
        for cmd in (
            "nlpsuite sentiment --input data/good.jsonl --output ry3.jsonl --ray local",
            "nlpsuite index add ry3 data/docs --ray local",
        )
    ]
    left = (ctx.root / "ry3.jsonl").exists()
    return all(ok for ok, _ in results) and not left, f"{results[0][1]}; index add: {results[1][0]}; output: {left}"


def ry04(ctx: Ctx) -> Verdict:
    import psutil

    out = ctx.root / "ry4.jsonl"
    out.unlink(missing_ok=True)
    proc = ctx.spawn("exec " + BATCH.format(out="ry4.jsonl"))
    wait_lines(proc, out, 24)
    workers = [p for p in psutil.process_iter(["cmdline"]) if "MapWorker" in " ".join(p.info["cmdline"] or [])]
    for worker in workers[:1]:  # one Ray map worker killed -9
        worker.kill()
    killed = bool(workers)
    run = finish(proc, 600)
    ids = [r["id"] for r in jsonl(out)] if out.exists() else []
    ok = run.rc == 0 and ids == [f"r{i:03d}" for i in range(1, 121)]
    noise = [line for line in run.err.splitlines() if " E " in line or "ERROR" in line]
    return (
        ok,
        f"worker killed: {killed}; exit {run.rc}, {len(ids)} records, {len(set(ids))} ids, in order: "
        f"{ids == sorted(ids)}; error-level lines: {len(noise)}",
    )


def ry05(ctx: Ctx) -> Verdict:
    out = ctx.root / "ry5.jsonl"
    out.unlink(missing_ok=True)
    proc = ctx.spawn("exec " + BATCH.format(out="ry5.jsonl"))
    wait_lines(proc, out, 24)
    kill_group(proc, signal.SIGINT)
    first = finish(proc, 60)
    again = ctx.sh(BATCH.format(out="ry5.jsonl"), timeout=900)
    ids = [r["id"] for r in jsonl(out)]
    ok = first.rc == 130 and again.rc == 0 and ids == [f"r{i:03d}" for i in range(1, 121)]
    return (
        ok,
        f"exit {first.rc} ({first.last!r}); rerun exit {again.rc}: {len(ids)} records, each once: "
        f"{len(ids) == len(set(ids))}",
    )


CASES = [
    Case(
        "RY01",
        "nlpsuite sentiment --input data/good.jsonl --output ry1.jsonl --ray 127.0.0.1:1",
        ry01,
        RAY + "test_an_address_where_nothing_listens_is_one_line_within_seconds",
        slow=True,
    ),
    Case(
        "RY02",
        "a token cluster (ray start --head, RAY_AUTH_MODE=token): the right token, a wrong one",
        ry02,
        RAY + "test_a_cluster_started_by_ray_start_is_joined_with_its_token_or_refused_in_one_line",
        slow=True,
    ),
    Case(
        "RY03",
        "Ray not importable: --ray local (batch and index add)",
        ry03,
        RAY + "test_without_ray_installed_the_error_says_how_to_get_it",
        slow=True,
    ),
    Case(
        "RY04",
        BATCH.format(out="ry4.jsonl") + "; one ray::MapWorker killed -9 at 24 lines",
        ry04,
        RAY + "test_a_killed_worker_is_replaced_and_every_record_written_once",
        slow=True,
    ),
    Case(
        "RY05",
        BATCH.format(out="ry5.jsonl") + "; SIGINT at 24 lines; the same command again",
        ry05,
        RAY + "test_ctrl_c_stops_a_run_on_the_cluster_and_the_same_command_resumes",
        slow=True,
    ),
    Case(
        "RY06",
        "nlpsuite sentiment --input data/good.jsonl --output ry6.jsonl --ray auto (no cluster)",
        lambda ctx: refused(
            ctx.sh(
                "nlpsuite sentiment --input data/good.jsonl --output ry6.jsonl --ray auto",
                timeout=120,
                RAY_TMPDIR=str(ctx.root / "noraytmp"),
            ),
            "cannot connect",
        ),
        RAY + "test_an_address_where_nothing_listens_is_one_line_within_seconds",
        slow=True,
    ),
    Case(
        "RY07",
        "--workers 0 / -2",
        lambda ctx: refused(
            ctx.sh("nlpsuite sentiment --input data/good.jsonl --output ry7.jsonl --ray local --workers 0"), "--workers"
        ),
        RAY + "test_workers_or_ray_alone_are_refused_before_any_cluster",
    ),
]
