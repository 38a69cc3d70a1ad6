"""The CLI and the chat REPL, driven as a user would, on the tiny model."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.shared_cache


@pytest.fixture
def tiny(tiny_llama):
    return ["--model", str(tiny_llama), "--device", "cpu"]


def test_generate_json_has_the_documented_schema(cli, tiny):
    result = cli(["generate", "hello world", "--max-tokens", "5", "--ignore-eos", "--json", *tiny])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) >= {"text", "model", "device", "precision", "usage", "timings"}
    assert data["usage"]["completion_tokens"] == 5 and data["usage"]["prompt_tokens"] > 2
    timings = {"load_s", "prefill_ms", "decode_tokens_per_s", "drafted_tokens", "acceptance_rate", "cached_tokens"}
    assert set(data["timings"]) == timings
    assert data["device"] == "cpu" and data["precision"] == "fp32"


def test_generate_is_deterministic_when_greedy_and_reads_stdin(cli, tiny):
    args = ["generate", "--raw", "--max-tokens", "8", "--ignore-eos", "--json", *tiny]
    a = json.loads(cli([*args, "the quick brown"]).out)["text"]
    b = json.loads(cli(args, stdin=b"the quick brown").out)["text"]
    assert a == b


def test_prompt_from_a_file(cli, tiny, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the quick brown", encoding="utf-8")
    args = ["generate", "--raw", "-n", "6", "--ignore-eos", "--json", *tiny]
    assert (
        json.loads(cli([*args, "--file", str(prompt)]).out)["text"]
        == json.loads(cli([*args, "the quick brown"]).out)["text"]
    )
    prompt.write_bytes(b"\xff\xfe")
    bad = cli([*args, "--file", str(prompt)])
    assert bad.code == 1 and bad.err.strip() == f"error: {prompt} is not UTF-8 text"
    missing = cli([*args, "--file", str(tmp_path / "nope.txt")])
    assert missing.code == 1 and "cannot read" in missing.err


def test_seeded_sampling_is_reproducible(cli, tiny):
    args = ["generate", "hello", "-n", "12", "--ignore-eos", "--temperature", "1.5", "--json", *tiny]
    first = json.loads(cli([*args, "--seed", "3"]).out)["text"]
    assert first == json.loads(cli([*args, "--seed", "3"]).out)["text"]


def test_stop_string_ends_generation(cli, tiny):
    base = json.loads(cli(["generate", "cat", "-n", "20", "--ignore-eos", "--raw", "--json", *tiny]).out)["text"]
    stop = base.strip()[2:4]
    cut = json.loads(cli(["generate", "cat", "-n", "20", "--ignore-eos", "--raw", "--json", "--stop", stop, *tiny]).out)
    assert stop not in cut["text"] and base.startswith(cut["text"]) and cut["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["generate", ""], None, "error: empty prompt"),
        (["generate"], b"   \n", "error: empty prompt"),
        (["generate", "\u200b\u200c\u200d\ufeff\u2060"], None, "error: empty prompt"),  # zero-width only
        (["generate"], "\u200b\u200b\n".encode(), "error: empty prompt"),
        (["generate"], b"\xff\xfe bad bytes", "error: the prompt on stdin is not valid UTF-8 text"),
        (["generate", "hi", "--model", "no-such-model"], None, "error: unknown model 'no-such-model'"),
        (["generate", "hi", "--max-tokens", "0"], None, "error: --max-tokens must be at least 1"),
        # Tiny positive values overflowed the scaled logits: a NaN traceback, or empty output with exit 0.
        (["generate", "hi", "--temperature", "1e-320"], None, "error: --temperature must be 0 (greedy) or between"),
        (["generate", "hi", "--repetition-penalty", "1e-320"], None, "error: --repetition-penalty must be between"),
        (["generate", "hi", "--top-p", "nan"], None, "error: --top-p must be between"),
        (["chat", "--temperature", "inf"], None, "error: --temperature must be between 0 and 100"),
        (["generate", "hi", "--device", "tpu"], None, "error: unknown device 'tpu'"),
        (["generate", "hi", "--precision", "fp8"], None, "error: unknown precision 'fp8'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, tiny, args, stdin, message):
    result = cli([args[0], *tiny, *args[1:]], stdin=stdin)  # the later option wins
    assert result.code == 1
    assert result.err.strip().startswith(message)
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_prompt_longer_than_the_context_window_is_refused(cli, tiny):
    result = cli(["generate", "word " * 400, *tiny])
    assert result.code == 1 and "context window is 128 tokens" in result.err


def test_cuda_without_a_gpu_fails_before_any_conversion(cli, monkeypatch):
    from nlpsuite.runtime import device

    monkeypatch.setattr(device, "cuda_driver_problem", lambda: "no NVIDIA driver found (test)")
    result = cli(["generate", "hi", "--model", "never-resolved-or-converted", "--device", "cuda"])
    assert result.code == 1 and result.err.startswith("error: --device cuda is not usable:")
    assert len(result.err.strip().splitlines()) == 1


def test_hub_id_offline_says_how_to_use_a_local_path(cli, isolated_home):
    result = cli(["generate", "hi", "--model", "someone/some-model-that-is-not-cached"])
    assert result.code == 1
    assert "could not fetch" in result.err and "--model PATH" in result.err
    assert len(result.err.splitlines()) == 1  # no "converting" line before it
    assert not list((isolated_home / "models").glob("someone--*"))  # no empty model folder, no lock file


def test_hub_id_offline_fails_without_importing_the_hub_client(tmp_path):
    """What makes it fail at once: huggingface_hub (seconds to import) is not needed to know the hub is away."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from nlpsuite.cli.app import main\n"
        "try:\n    main(['sentiment', 'Nice', '--model', 'someone/not-cached'])\n"
        "except SystemExit:\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] in ('huggingface_hub', 'transformers')))\n"
    )
    env = {**__import__("os").environ, "NLPSUITE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout
    assert done.stderr.startswith("error: could not fetch 'someone/not-cached'")


def test_an_offline_hub_id_uses_the_local_hugging_face_cache(monkeypatch, tmp_path):
    from nlpsuite.modelstore import fetch

    snapshot = tmp_path / "hub" / "models--someone--model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert fetch.hub_folder("someone/model") == str(snapshot)


def test_models_pull_list_info_rm(cli, tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path / "own-cache"))
    assert cli(["models", "pull", str(tiny_llama), "--quiet"]).code == 0
    listed = json.loads(cli(["models", "list", "--json"]).out)
    ours = [m for m in listed["models"] if m["cached"]]
    assert len(ours) == 1 and ours[0]["cached"] == ["fp32"]
    assert any(m["name"] == "smollm2-135m-instruct" for m in listed["models"])
    info = json.loads(cli(["models", "info", str(tiny_llama), "--json"]).out)
    assert info["converted"]["fp32"]["architecture"]["num_layers"] == 2
    assert cli(["models", "rm", str(tiny_llama), "--yes"]).code == 0
    assert not [m for m in json.loads(cli(["models", "list", "--json"]).out)["models"] if m["cached"]]
    assert cli(["models", "rm", str(tiny_llama), "--yes"]).code == 1


def test_models_rm_frees_what_tasks_derived_from_the_model(cli, tiny_llama, tmp_path, monkeypatch):
    """What tasks keep per model (prompt prefix states, priors, embedding statistics: heads/derived.py) goes with
    the model on rm, and only that model's."""
    import numpy as np

    from nlpsuite import Suite
    from nlpsuite.heads import derived

    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path / "own-cache"))
    assert cli(["models", "pull", str(tiny_llama), "--quiet"]).code == 0
    manifest = Suite(model=str(tiny_llama), device="cpu").backbone.manifest
    ours = [derived.path_for(manifest, {"what": w}) for w in ("prefix", "prior")]
    for path in ours:
        derived.save(path, {"x": np.zeros(3)})
    other = {"name": "another", "precision": "fp32", "created": "2026-11-29T00:00:00", "source": {"sha256": "ab"}}
    theirs = derived.path_for(other, {"what": "prefix"})
    derived.save(theirs, {"x": np.zeros(3)})
    assert all(p.exists() for p in [*ours, theirs])
    assert cli(["models", "rm", str(tiny_llama), "--yes", "--quiet"]).code == 0
    assert not [p for p in ours if p.exists()]
    assert theirs.exists()


def test_doctor_json(cli):
    result = cli(["doctor", "--json"])
    data = json.loads(result.out)
    assert data["device"] in ("cpu", "cuda") and "CPUExecutionProvider" in data["providers_available"]
    assert {"onnxruntime-gpu", "onnxruntime"} & set(data["versions"]) and "numpy" in data["versions"]
    assert data["cache_dir"] and (data["device"] == "cuda" or data["device_note"].startswith("running on CPU: "))


def test_chat_repl_scripted_through_stdin(cli, tiny, tmp_path):
    transcript = tmp_path / "chat.json"
    script = "\n".join(
        [
            "/help",
            "hello there",
            "/temp 0.5",
            "/temp nope",
            "/temp",
            "/system You are terse.",
            '"""',
            "line one",
            "line two",
            '"""',
            "/reset",
            "continued \\",
            "line",
            f"/save {transcript}",
            "/bogus",
            "/exit",
            "never read",
        ]
    )
    result = cli(["chat", "--max-tokens", "4", "--json", *tiny], stdin=script.encode())
    assert result.code == 0, result.err
    replies = [json.loads(line) for line in result.out.splitlines()]
    assert len(replies) == 3 and all(r["role"] == "assistant" for r in replies)
    assert "temperature 0.5" in result.err and "error: --temperature takes a number" in result.err
    assert "usage: /temp" in result.err
    assert "unknown command /bogus" in result.err
    saved = json.loads(transcript.read_text())
    assert saved["messages"][0] == {"role": "system", "content": "You are terse."}
    assert saved["messages"][1] == {"role": "user", "content": "continued \nline"}


def test_chat_plain_output_is_the_replies_one_per_turn(cli, tiny):
    script = b"hi\nhow are you?\n"
    plain = cli(["chat", "--max-tokens", "3", *tiny], stdin=script)
    replies = [json.loads(line) for line in cli(["chat", "-n", "3", "--json", *tiny], stdin=script).out.splitlines()]
    assert plain.code == 0 and len(replies) == 2
    assert plain.out == "".join(r["content"] + "\n" for r in replies)


def test_a_cached_model_onnxruntime_cannot_load_is_rebuilt(cli, tiny, tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path / "damaged"))
    assert cli(["models", "pull", "--quiet", tiny[1]]).code == 0
    from nlpsuite.modelstore.resolve import resolve, store

    cached = store().get(resolve(str(tiny_llama)).key, "fp32")
    graph = cached.path / "model.onnx"
    graph.write_bytes(b"\0" * graph.stat().st_size)  # same size, garbage: passes the cheap checks
    result = cli(["generate", "hello", "-n", "3", "--json", *tiny])
    assert result.code == 0, result.err
    assert "damaged; rebuilding" in result.err


def test_ctrl_c_stops_the_reply_not_the_repl(tiny_llama, monkeypatch):
    import io

    from nlpsuite.api import Suite
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    class InterruptOnce(io.StringIO):
        fired = False

        def write(self, text):
            if not self.fired and text:
                self.fired = True
                raise KeyboardInterrupt
            return super().write(text)

    out = InterruptOnce()
    stdin = io.StringIO("first question\nsecond question\n")
    repl = ChatRepl(
        Suite(model=str(tiny_llama), device="cpu"),
        SamplingParams(max_tokens=6, ignore_eos=True),
        stdin=stdin,
        stdout=out,
    )
    repl.run()
    assert out.getvalue().count("[interrupted]") == 1
    assert [m["role"] for m in repl.messages] == ["user", "assistant", "user", "assistant"]
    assert repl.messages[3]["content"]  # the second reply ran to completion


def test_gpu_present_but_cuda_libraries_missing_falls_back_with_one_line(cli, tiny):
    """In a separate process, so that anything ONNX Runtime writes to the real stderr is seen."""
    import subprocess
    import sys

    from nlpsuite.runtime import device

    if device.CUDA not in device.quiet_onnxruntime().get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider to fail")
    assert cli(["models", "pull", "--quiet", tiny[1]]).code == 0
    script = (
        "import sys\n"
        "from nlpsuite.runtime import device\n"
        "device.cuda_driver_problem = lambda: None  # as if an NVIDIA driver were installed\n"
        "from nlpsuite.cli.app import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["generate", "hello", "-n", "2", "--json", *tiny[:2]]
    done = subprocess.run([sys.executable, "-c", script, *args, "--device", "auto"], capture_output=True, text=True)
    if done.returncode == 0 and json.loads(done.stdout)["device"] == "cuda":
        pytest.skip("CUDA really works here")
    assert done.returncode == 0 and done.stderr.strip().splitlines() == [
        "running on CPU: ONNX Runtime could not load the CUDA runtime, cuBLAS or cuDNN libraries its GPU build needs "
        "(pip install 'nlpsuite[cuda]' brings them)"
    ]
    refused = subprocess.run([sys.executable, "-c", script, *args, "--device", "cuda"], capture_output=True, text=True)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: --device cuda is not usable: ONNX Runtime could not load the CUDA runtime, cuBLAS or cuDNN "
        "libraries its GPU build needs (pip install 'nlpsuite[cuda]' brings them)"
    ]


@pytest.mark.parametrize(
    "args", [[], ["bogus"], ["generate", "hi", "--nope"], ["generate", "hi", "--max-tokens", "abc"], ["models"]]
)
def test_usage_errors_print_usage_not_a_traceback(cli, args):
    result = cli(args)
    assert result.code in (0, 2)  # bare `nlpsuite` and `nlpsuite models` show help
    assert "Traceback" not in result.err + result.out and "Usage" in result.err + result.out


def test_chat_trimming_keeps_the_newest_turns_and_starts_with_a_user(tiny_llama, monkeypatch):
    from nlpsuite.api import Suite
    from nlpsuite.runtime.sampling import SamplingParams

    head = Suite(model=str(tiny_llama), device="cpu").head("generation")
    seen = []
    encode = head.encode_chat
    monkeypatch.setattr(head, "encode_chat", lambda msgs, *tools: seen.append(msgs) or encode(msgs, *tools))
    convo = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "word " * 150},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "hi"},
    ]
    head.chat(convo, SamplingParams(max_tokens=20))
    assert seen[-1] == [convo[0], convo[3]]


def test_chat_sends_an_unfinished_block_at_eof_and_survives_a_bad_save(cli, tiny):
    script = b'/save /\n"""\nfirst line\nsecond line\n'
    result = cli(["chat", "-n", "2", "--json", *tiny], stdin=script)
    assert result.code == 0 and "could not save" in result.err
    assert len(result.out.splitlines()) == 1  # the block was answered


def test_a_load_error_that_is_not_damage_keeps_the_cache(cli, tiny, monkeypatch):
    assert cli(["models", "pull", "--quiet", tiny[1]]).code == 0
    monkeypatch.setenv("NLPSUITE_THREADS", "abc")
    result = cli(["generate", "hi", *tiny])
    assert result.code == 1 and result.err.strip() == "error: NLPSUITE_THREADS must be a whole number, not 'abc'"


def test_a_file_that_is_not_really_gguf_is_one_line(cli, tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"definitely not a gguf file")
    result = cli(["generate", "hi", "--model", str(fake), "--quiet"])
    assert result.code == 1
    assert result.err.strip() == "error: fake.gguf is not a GGUF file (it does not start with 'GGUF')"
    assert "Traceback" not in result.err


def test_ctrl_c_stops_a_task_that_does_not_stream_with_exit_130(cli, tiny, monkeypatch):
    """The decoding loop used to swallow Ctrl-C and hand back text cut short, which translate went on with."""
    from nlpsuite.runtime.backbone import Backbone

    real, calls = Backbone.forward, []

    def interrupted(self, ids, *a, **k):
        calls.append(ids.shape)
        if len(calls) == 2:  # the first step after the prefill, inside the decoding loop
            raise KeyboardInterrupt
        return real(self, ids, *a, **k)

    monkeypatch.setattr(Backbone, "forward", interrupted)
    result = cli(["translate", "One sentence. Another one.", "--to", "de", "--json", *tiny])
    assert len(calls) == 2
    assert result.code == 130 and result.out == ""  # no translation cut short on stdout


def test_a_task_command_imports_only_what_it_runs(cli, tiny):
    """Start-up time: `nlpsuite generate` in a fresh process loads neither the other commands' modules
    (evaluation, metrics, retrieval, calibration) nor rich (no terminal to draw on), torch or transformers."""
    import subprocess
    import sys

    assert cli(["models", "pull", "--quiet", tiny[1]]).code == 0  # converting imports torch: not in the timed process
    script = (
        "import sys\n"
        "from nlpsuite.cli.app import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(' '.join(sys.modules), file=sys.stderr)\n"
    )
    args = ["generate", "hello", "--max-tokens", "2", "--quiet", *tiny]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stderr.split())
    assert "nlpsuite.runtime.backbone" in loaded  # it did run the model
    unwanted = {"nlpsuite.eval.run", "nlpsuite.eval.metrics", "nlpsuite.retrieval", "nlpsuite.eval.calibration"}
    unwanted |= {"nlpsuite.cli.eval", "nlpsuite.cli.models", "rich.console", "torch", "transformers"}
    assert not loaded & unwanted
