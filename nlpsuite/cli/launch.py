"""The `nlpsuite` console entry point: a head start on loading the model, then the CLI (cli/app.py).

Which model a command loads is known for sure only once its command line is parsed, and importing Typer, building
the command and parsing take a good part of a one-off call. So before any of that, a cheap look at the arguments
guesses the model, precision and device, and the model starts loading on another thread (runtime/preload.py). The
CLI then runs exactly as it would without it: it validates and resolves everything itself, and takes the loaded
model only where it is exactly the one it asks for. Nothing is started for --help, --version, --ray (the model
loads on the cluster) or a command that loads no model at once. ``NLPSUITE_HEAD_START=0`` turns it off (to measure
what it gains).

A process cannot end while ONNX Runtime builds a session on another thread, so one that fails before it takes the
model (a mistyped option) would wait for the load to finish; it exits at once instead, skipping atexit handlers.
"""

from __future__ import annotations

import contextlib
import os
import sys

from .flags import DEFAULT_PRECISION, DEVICE_FLAG, MODEL_FLAGS, PRECISION_FLAG, RAY_FLAG

# Commands that load no model, or load one only after other checks (data, a port): nothing to start early.
NO_HEAD_START = frozenset({"models", "index", "heads", "plugins", "doctor", "eval", "calibrate", "train", "serve"})
_FIELDS = {**dict.fromkeys(MODEL_FLAGS, "model"), PRECISION_FLAG: "precision", DEVICE_FLAG: "device"}


def guess(argv: list[str]) -> tuple[str | None, str, str | None] | None:
    """(model, precision, device) that ``nlpsuite ARGV`` will most likely load (None: the default), or None when
    it will load no model or only asks for help. Only a guess: the command line is parsed for real later."""
    if not argv or argv[0].startswith("-") or argv[0] in NO_HEAD_START:
        return None
    found: dict[str, str | None] = {"model": None, "precision": DEFAULT_PRECISION, "device": None}
    args = argv[1:]
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("--help", "--version", RAY_FLAG) or arg.startswith(RAY_FLAG + "="):
            return None
        flag, equals, value = arg.partition("=")
        if flag in _FIELDS:
            found[_FIELDS[flag]] = value if equals else (args[i + 1] if i + 1 < len(args) else None)
        elif arg.startswith(MODEL_FLAGS[1]) and not arg.startswith("--"):
            found["model"] = arg[len(MODEL_FLAGS[1]) :]  # -mNAME
    return found["model"], found["precision"] or DEFAULT_PRECISION, found["device"]


def main() -> None:
    guessed = guess(sys.argv[1:])
    started = False
    if guessed is not None and os.environ.get("NLPSUITE_HEAD_START", "1") != "0":
        from ..runtime import preload

        started = preload.start(*guessed)
    from .app import main as run

    try:
        run()
    except SystemExit as exc:
        if started and exc.code not in (None, 0) and preload.busy():
            _exit_now(exc.code)
        raise


def _exit_now(code) -> None:
    """Exit with ``code`` (as SystemExit would) without waiting for other threads."""
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
