"""The head start on loading a model (cli/launch.py, runtime/preload.py): only a head start, never a different
result. A guess is taken only where it is exactly the load the command asks for; it writes nothing; --help loads
no model; a command that fails while it loads fails as before, at once, without a crash."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nlpsuite.cli.launch import guess
from nlpsuite.runtime import preload
from nlpsuite.runtime.backbone import NotWritten

shared = pytest.mark.shared_cache  # tests that only read the converted tiny model


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["generate", "Say hello.", "--max-tokens", "16"], (None, "fp32", None)),
        (["generate", "hi", "--model", "m1", "--precision", "int8", "--device", "cpu"], ("m1", "int8", "cpu")),
        (["summarize", "--model=m2", "--precision=int4", "--device=cpu", "-"], ("m2", "int4", "cpu")),
        (["ask", "q?", "-m", "m3"], ("m3", "fp32", None)),
        (["ask", "q?", "-mm4"], ("m4", "fp32", None)),
        (["generate", "--", "--model", "not-an-option"], (None, "fp32", None)),
        (["chat", "--model", "m5"], ("m5", "fp32", None)),
    ],
)
def test_the_guess_reads_model_precision_and_device(argv, expected):
    assert guess(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["--version"],
        ["generate", "--help"],
        ["generate", "hi", "--version"],
        ["models", "list"],
        ["index", "add", "docs", "x.txt"],
        ["eval", "qa", "data.jsonl"],
        ["serve"],
        ["sentiment", "--input", "a.jsonl", "--output", "b.jsonl", "--ray", "local"],
        ["sentiment", "--input", "a.jsonl", "--output", "b.jsonl", "--ray=auto"],
    ],
)
def test_no_head_start_for_help_or_commands_that_load_no_model_here(argv):
    assert guess(argv) is None


@pytest.fixture
def packed_tiny(tiny_llama):
    """The tiny model converted at fp32 in this test's cache, its pre-packed copy written (as a first use does)."""
    from nlpsuite import Suite

    suite = Suite(model=str(tiny_llama), device="cpu")
    assert sorted(p.name for p in suite.backbone.folder.glob("cpu-*"))
    return suite.backbone.folder


@shared
def test_a_head_start_is_taken_when_it_is_the_load_asked_for(tiny_llama, packed_tiny):
    from nlpsuite import Suite

    assert preload.start(str(tiny_llama), "fp32", "cpu")
    started = preload._started.result()
    suite = Suite(model=str(tiny_llama), device="cpu")
    assert suite.backbone is started.backbone
    assert suite.tokenizer is started.early["tokenizer"]
    assert suite.generate("hello", max_tokens=3, temperature=0) == Suite(model=str(tiny_llama), device="cpu").generate(
        "hello", max_tokens=3, temperature=0
    )


@shared
@pytest.mark.parametrize(
    ("guessed", "asked"),
    [
        (("fp32", "auto"), ("fp32", "cpu")),  # another device plan (a note about CUDA, or CUDA itself)
        (("fp32", "cpu"), ("int8", "cpu")),  # another precision
    ],
)
def test_a_wrong_guess_is_not_taken(tiny_llama, packed_tiny, guessed, asked):
    from nlpsuite import Suite

    preload.start(str(tiny_llama), *guessed)
    started = preload._started
    suite = Suite(model=str(tiny_llama), device=asked[1], precision=asked[0])
    assert suite.backbone.precision == asked[0]
    assert started is None or suite.backbone is not started.result().backbone
    assert preload._pending is None  # dropped, not kept for a later Suite


def test_a_model_not_in_the_cache_gets_no_head_start(tiny_llama):
    """Nothing is fetched or converted on a guess: the real command does that, with its progress lines."""
    from nlpsuite.config import models_dir

    assert not preload.start(str(tiny_llama), "fp32", "cpu")
    assert not preload.start("someone/not-cached", "fp32", "cpu")
    assert not models_dir().exists() or not any(models_dir().iterdir())


def test_a_head_start_writes_nothing(tiny_llama, packed_tiny):
    """Where the load would write the pre-packed copy, the head start gives up and the real load writes it."""
    import shutil

    from nlpsuite import Suite

    for copy in packed_tiny.glob("cpu-*"):
        shutil.rmtree(copy)
    assert preload.start(str(tiny_llama), "fp32", "cpu")
    with pytest.raises(NotWritten):
        preload._started.result()
    assert not list(packed_tiny.glob("cpu-*"))
    Suite(model=str(tiny_llama), device="cpu").backbone  # noqa: B018 - loading is the point
    assert len(list(packed_tiny.glob("cpu-*"))) == 1


def test_a_conversion_rebuilt_meanwhile_is_not_taken(tiny_llama, packed_tiny):
    from nlpsuite import Suite
    from nlpsuite.artefacts import MANIFEST_FILE
    from nlpsuite.fsutil import write_json_atomic

    assert preload.start(str(tiny_llama), "fp32", "cpu")
    started = preload._started.result()
    manifest = json.loads((packed_tiny / MANIFEST_FILE).read_text())
    write_json_atomic(packed_tiny / MANIFEST_FILE, {**manifest, "created": "2030-01-01T00:00:00"})
    suite = Suite(model=str(tiny_llama), device="cpu")
    assert suite.backbone is not started.backbone
    assert suite.backbone.manifest["created"] == "2030-01-01T00:00:00"


# The console entry point in a fresh process, as `nlpsuite ARGS` runs it: prints what it loaded on stderr at exit.
ENTRY = """
import atexit, json, sys, time
from nlpsuite.runtime import backbone, preload
built, taken = [], []
init, take = backbone.Backbone.__init__, preload.take
def counted(self, *a, **k):
    init(self, *a, **k)
    built.append(k.get("write", True))
def took(*a, **k):
    found = take(*a, **k)
    taken.append(found is not None)
    return found
backbone.Backbone.__init__, preload.take = counted, took
if "--slow" in sys.argv:  # the head start still loading when the command fails
    sys.argv.remove("--slow")
    load = preload.load
    def slow(*a, **k):
        time.sleep(3)
        print("LOADED", file=sys.stderr, flush=True)
        return load(*a, **k)
    preload.load = slow
atexit.register(lambda: print("REPORT " + json.dumps({"built": built, "taken": taken,
    "onnxruntime": "onnxruntime" in sys.modules}), file=sys.stderr))
sys.argv = ["nlpsuite", *sys.argv[1:]]
from nlpsuite.cli.launch import main
main()
"""


def run_entry(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict | None]:
    import os

    environ = {**os.environ, **(env or {}), "COLUMNS": "200"}
    command = [sys.executable, "-c", ENTRY, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environ)
    lines = [line for line in done.stderr.splitlines() if line.startswith("REPORT ")]
    return done, json.loads(lines[-1].removeprefix("REPORT ")) if lines else None


@shared
def test_the_command_takes_the_head_start_and_builds_one_session(tiny_llama, packed_tiny):
    args = ["generate", "hello", "--max-tokens", "2", "--model", str(tiny_llama), "--device", "cpu"]
    done, report = run_entry(*args)
    assert done.returncode == 0, done.stderr
    assert report == {"built": [False], "taken": [True], "onnxruntime": True}  # one session: the head start's
    off, report_off = run_entry(*args, env={"NLPSUITE_HEAD_START": "0"})
    assert off.returncode == 0 and off.stdout == done.stdout
    assert report_off == {"built": [True], "taken": [False], "onnxruntime": True}


@shared
@pytest.mark.parametrize("args", [["--help"], ["--version"], ["generate", "--help"], ["chat", "--help"]])
def test_help_loads_no_model(tiny_llama, packed_tiny, args):
    model = [] if args[0].startswith("--") else ["--model", str(tiny_llama), "--device", "cpu"]
    done, report = run_entry(*args, *model)
    assert done.returncode == 0, done.stderr
    assert report == {"built": [], "taken": [], "onnxruntime": False}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "hi", "--bogus"], "No such option"),
        (["generate", "hi", "--max-tokens", "many"], "Invalid value"),
        (["summarise", "hi"], "No such command"),
        (["translate", "hi"], "--to"),
    ],
)
@shared
def test_a_command_that_fails_while_the_model_loads_fails_as_before(tiny_llama, packed_tiny, args, message):
    """The same exit code and message as without a head start, no traceback, no crash on the way out (a process
    that ended while ONNX Runtime built a session on another thread aborted), and no wait for the load."""
    model = ["--model", str(tiny_llama), "--device", "cpu"]
    done, _ = run_entry("--slow", *args, *model)
    before, _ = run_entry(*args, *model, env={"NLPSUITE_HEAD_START": "0"})
    assert done.returncode == before.returncode and done.returncode in (1, 2)
    said = [line for line in done.stderr.splitlines() if not line.startswith("REPORT ")]
    assert said == [line for line in before.stderr.splitlines() if not line.startswith("REPORT ")]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "LOADED" not in done.stderr  # it exited while the head start was still loading


@pytest.mark.parametrize("command", ["generate", "translate", "chat"])
def test_the_guess_reads_the_options_the_commands_declare(command):
    """cli/flags.py names what the guess reads; the commands must declare exactly those, with that default."""
    from nlpsuite.cli import flags
    from nlpsuite.cli.app import build_command

    params = {p.name: p for p in build_command().get_command(None, command).params}
    assert set(params["model"].opts) == set(flags.MODEL_FLAGS)
    assert params["device"].opts == [flags.DEVICE_FLAG]
    assert params["precision"].opts == [flags.PRECISION_FLAG] and params["precision"].default == flags.DEFAULT_PRECISION
    if command != "chat":
        assert params["ray"].opts == [flags.RAY_FLAG]
