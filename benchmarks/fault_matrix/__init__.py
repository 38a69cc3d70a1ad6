"""The fault matrix's cases as code (docs/fault-matrix.md): each case runs the real ``nlpsuite`` command in a
subprocess against a converted home, as the review ran it, and judges the result by the review's rule: held = the
right result, or a clear one-line error with a non-zero exit; nothing lost or corrupted, no traceback, no hang, no
NaN. ``quality_fault_matrix.py`` runs them; the case groups live beside this module."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

Verdict = tuple[bool, str]


@dataclass
class Run:
    rc: int
    out: str
    err: str
    secs: float

    @property
    def last(self) -> str:
        """The last line of stderr (or stdout), cut to 160 characters."""
        lines = (self.err.strip() or self.out.strip()).splitlines()
        return lines[-1][:160] if lines else ""


@dataclass
class Case:
    id: str
    command: str  # what the case does, as the review wrote it (adapted where docs/fault-matrix.md says)
    run: Callable[[Ctx], Verdict]
    guard: str  # the test that guards it: file::name
    slow: bool = False  # minutes, a conversion, a mount or a server: left out by --quick


class Ctx:
    """Where a case runs: ``root`` (its scratch folder; commands run there, ``data/`` beside them) and ``home``
    (a converted NLPSUITE_HOME the cases read; a case that damages or fills a home works on its own copy)."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home, self.data = root, home, root / "data"
        self.data.mkdir(parents=True, exist_ok=True)

    def env(self, home: Path | None = None, **extra: str) -> dict:
        env = dict(os.environ, NLPSUITE_HOME=str(home or self.home), HF_HUB_OFFLINE="1", COLUMNS="200")
        env.pop("NLPSUITE_MODEL", None)
        env.update(extra)
        return env

    def sh(self, cmd: str, timeout: float = 300, home: Path | None = None, stdin: bytes | None = None, **env) -> Run:
        """Run ``cmd`` with bash in ``root`` (stderr not a terminal, SIGINT at its default); past ``timeout`` the
        whole group gets SIGKILL and the exit status is 124."""
        proc = self.spawn(cmd, home=home, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, **env)
        start = time.monotonic()
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            rc = 124
        return Run(rc, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start)

    def spawn(self, cmd: str, home: Path | None = None, stdin=subprocess.DEVNULL, **env) -> subprocess.Popen:
        return subprocess.Popen(
            ["bash", "-c", cmd],
            cwd=self.root,
            env=self.env(home, **env),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_sigint_default,
        )

    def home_copy(self, name: str, models: bool = True) -> Path:
        """A private copy of the converted home (its downloads, and its models unless ``models`` is False)."""
        target = self.root / "homes" / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for part in ("downloads", "derived") + (("models",) if models else ()):
            if (self.home / part).exists():
                shutil.copytree(self.home / part, target / part, symlinks=True)
        return target


def _sigint_default() -> None:
    """SIGINT at its default, as in a terminal: a shell that started this script in the background left it ignored,
    and an ignored SIGINT stays ignored through exec (the review's ``$DF``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def watch(proc: subprocess.Popen, seconds: float, every: float = 0.5) -> float:
    """Peak RSS (MB) of the process and its children over ``seconds`` (or until it ends)."""
    peak, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        try:
            root = psutil.Process(proc.pid)
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        time.sleep(every)
    return peak


def wait_lines(proc: subprocess.Popen, path: Path, lines: int, limit: float = 600) -> None:
    """Wait until ``path`` holds ``lines`` lines (or the process ends, or ``limit`` seconds pass)."""
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < limit:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.3)


def finish(proc: subprocess.Popen, timeout: float) -> Run:
    """Wait for a spawned command (SIGKILL to its group past ``timeout``, exit status 124)."""
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        rc = 124
    return Run(rc, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start)


def clean(run: Run) -> str | None:
    """Why the run is not clean (a traceback, NaN in its output, NUL bytes), or None."""
    if "Traceback (most recent call last)" in run.err or "Traceback (most recent call last)" in run.out:
        return "traceback: " + run.last
    if "NaN" in run.out:
        return "NaN in the output"
    if "\0" in run.err:
        return "NUL bytes on stderr"
    return None


def refused(run: Run, says: str = "", rc: int = 1) -> Verdict:
    """Held when the run exits ``rc`` with one ``error:`` line that contains ``says`` and no traceback."""
    bad = clean(run)
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    ok = bad is None and run.rc == rc and len(errors) == 1 and says.lower() in errors[0].lower()
    return ok, f"exit {run.rc}, {bad or (errors[0][:200] if errors else run.last)!r}"


def answered(run: Run, *expect: str) -> Verdict:
    """Held when the run exits 0, cleanly, and its stdout holds every ``expect``."""
    bad = clean(run)
    ok = bad is None and run.rc == 0 and all(e in run.out for e in expect)
    shown = " ".join(run.out.split())[:160]
    return ok, f"exit {run.rc}, {bad or repr(shown)}" + ("" if run.rc == 0 else f" ({run.last})")


def simple(id: str, command: str, guard: str, says: str | None = None, expect: tuple = (), **kw) -> Case:
    """A one-command case: refused with ``says`` in its error line, or answered with ``expect`` on stdout."""

    def run(ctx: Ctx) -> Verdict:
        got = ctx.sh(command)
        return refused(got, says) if says is not None else answered(got, *expect)

    return Case(id, command, run, guard, **kw)


def jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
