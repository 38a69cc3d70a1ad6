"""The install a user pays for, checked: `pip install nlpsuite` with no extras into a fresh virtual environment,
then, in it, a GGUF pull (the default model, converted without torch), every task's command, the chat REPL and
`nlpsuite serve` answering the official openai client. Prints the venv's size; exits non-zero at the first failure.

    python .ci/lean_install.py [--venv DIR] [--home DIR]

Run it with a Python that has the test extra (the openai client drives the server from outside the lean venv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall."
TASKS = (  # every task's command, once, with --json: (arguments, a field its result must have)
    (["generate", "The capital of France is", "-n", "8"], "text"),
    (["sentiment", "I love this film."], "label"),
    (["classify", "The match ended two all.", "--labels", "sports,politics"], "label"),
    (["ask", "When was the tower finished?", "--context", TEXT], "answer"),
    (["translate", "Good morning, my friend.", "--to", "de"], "translation"),
    (["summarize", TEXT], "summary"),
    (["extract", TEXT, "--schema", '{"type": "object", "properties": {"year": {"type": "integer"}}}'], "data"),
)


def run(argv: list, what: str, **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"lean install: {what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    print(f"ok   {what} ({time.monotonic() - started:.1f} s)", flush=True)
    return done


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_serve(nlpsuite: str, env: dict) -> None:
    """`nlpsuite serve` from the lean venv on a loopback port, driven by the openai client, stopped by SIGTERM."""
    import openai

    port = free_port()
    args = [nlpsuite, "serve", "--port", str(port), "--device", "cpu"]
    server = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=60, max_retries=0)
        deadline = time.monotonic() + 180
        while True:
            try:
                model = client.models.list().data[0].id
                break
            except (openai.APIConnectionError, openai.InternalServerError):  # not listening yet, or 503: loading
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"lean install: serve did not come up: {server.stderr.read()[-2000:]}")
                time.sleep(0.5)
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
        )
        if not reply.choices[0].message.content:
            sys.exit("lean install: serve answered a chat completion with no text")
        print(f"ok   serve: {model} answered the openai client", flush=True)
    finally:
        server.terminate()
        if server.wait(timeout=60) != 0:
            sys.exit(f"lean install: serve exited {server.returncode} on SIGTERM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(ROOT / ".ci-lean-venv"), help="where to make the fresh venv")
    parser.add_argument("--home", help="NLPSUITE_HOME to use (default: a temporary folder)")
    args = parser.parse_args()
    venv = Path(args.venv)
    run([sys.executable, "-m", "venv", "--clear", str(venv)], "a fresh venv")
    python, nlpsuite = str(venv / "bin" / "python"), str(venv / "bin" / "nlpsuite")
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)], "pip install nlpsuite")
    probe = "import importlib.util as u; print(u.find_spec('torch') is not None)"
    if run([python, "-c", probe], "torch absent").stdout.strip() != "False":
        sys.exit("lean install: torch came with the base install")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="nlpsuite-lean-"))
    env = {**os.environ, "NLPSUITE_HOME": str(home), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("NLPSUITE_MODEL", None)
    try:
        pulled = json.loads(run([nlpsuite, "models", "pull", "--json"], "models pull (GGUF)", env=env).stdout)
        print(f"     {json.dumps(pulled)[:200]}")
        for argv, field in TASKS:
            result = json.loads(run([nlpsuite, *argv, "--json", "--device", "cpu"], argv[0], env=env).stdout)
            if field not in result:
                sys.exit(f"lean install: {argv[0]} --json has no {field!r}: {result}")
        docs = home / "docs.txt"
        docs.write_text(TEXT + "\n\nThe Louvre is a museum in Paris.\n", encoding="utf-8")
        run([nlpsuite, "index", "add", "lean", str(docs), "--quiet"], "index add", env=env)
        found = json.loads(run([nlpsuite, "search", "lean", "a museum", "--json"], "search", env=env).stdout)
        if not found.get("results"):
            sys.exit(f"lean install: search found nothing: {found}")
        ranked = run([nlpsuite, "rerank", "a museum", "--documents", str(docs), "--json"], "rerank", env=env).stdout
        if not json.loads(ranked).get("results"):
            sys.exit(f"lean install: rerank ranked nothing: {ranked}")
        chat = run([nlpsuite, "chat", "--json", "-n", "8"], "chat", env=env, input="Hello!\n").stdout
        if '"assistant"' not in chat:
            sys.exit(f"lean install: chat gave no reply: {chat}")
        check_serve(nlpsuite, env)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    print(f"the venv of pip install nlpsuite (no extras): {size_mb(venv):.0f} MiB")


if __name__ == "__main__":
    main()
