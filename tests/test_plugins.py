"""Plugins: built-ins through the public hooks, a real third-party package, isolation of broken ones."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from nlpsuite.errors import PluginError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.plugins import PluginLoader
from nlpsuite.tasks import Task

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin and a broken plugin, pip-installed into a folder of their own."""
    target = tmp_path_factory.mktemp("site")
    for package in (ROOT / "examples" / "nlpsuite-haiku", ROOT / "tests" / "data" / "nlpsuite-broken"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "--target",
                str(target),
                str(package),
            ],
            check=True,
            capture_output=True,
        )
    return target


@pytest.fixture
def with_plugins(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    return plugin_site


def test_builtins_register_through_the_public_hooks():
    registry = PluginLoader().load(include_entry_points=False)
    assert {"generate", "chat"} <= set(registry.tasks)
    assert "generation" in registry.heads
    assert all(p.error is None for p in registry.plugins)


def test_broken_plugins_are_reported_and_skipped(with_plugins, cli):
    result = cli(["plugins", "--json"])
    assert result.code == 0
    found = {p["name"]: p for p in json.loads(result.out)}
    assert "ModuleNotFoundError" in found["broken-import"]["error"]
    assert "broken on purpose" in found["broken-hook"]["error"]
    assert found["haiku"]["error"] is None and found["haiku"]["hooks"] == ["register_tasks"]
    assert found["generate"]["error"] is None


def test_a_failing_plugin_registers_nothing(with_plugins):
    registry = PluginLoader().load()
    assert "half-registered" not in registry.tasks
    assert "haiku" in registry.tasks


def test_a_plugin_that_exits_at_import_is_reported_and_skipped(with_plugins, cli):
    result = cli(["plugins", "--json"])
    assert result.code == 0, result.err
    found = {p["name"]: p for p in json.loads(result.out)}
    assert found["broken-exit"]["error"].startswith("SystemExit: 3")
    assert found["haiku"]["error"] is None


class Abort(BaseException):
    """Neither Exception nor KeyboardInterrupt: what a plugin could raise to escape isolation."""


@pytest.mark.parametrize("exc", [SystemExit(3), Abort("escaped"), GeneratorExit()])
def test_base_exceptions_from_a_hook_are_isolated(exc):
    def hook(register):
        raise exc

    loader = PluginLoader()
    info = loader.add_module("exits", types.SimpleNamespace(register_tasks=hookimpl(hook)))
    assert info.error.startswith(type(exc).__name__)


def test_keyboard_interrupt_in_a_plugin_still_stops_the_tool():
    def hook(register):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PluginLoader().add_module("ctrl-c", types.SimpleNamespace(register_tasks=hookimpl(hook)))


def test_strict_mode_turns_plugin_failures_into_errors(with_plugins, monkeypatch, cli):
    monkeypatch.setenv("NLPSUITE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'broken-"):
        PluginLoader().load()
    result = cli(["--help"])
    assert result.code == 1 and result.err.startswith("error: plugin")


def test_name_clashes_are_refused():
    loader = PluginLoader()
    loader.load(include_entry_points=False)
    clash = types.SimpleNamespace(
        register_tasks=hookimpl(lambda register: register(Task("chat", "again", "generation", print)))
    )
    info = loader.add_module("clash", clash)
    assert "task 'chat' is already taken" in info.error
    assert loader.registry.tasks["chat"].description != "again"
    catalog_clash = types.SimpleNamespace(
        register_models=hookimpl(
            lambda register: register("mine", source={"kind": "hub", "id": "a/b"}, aliases=("smollm2",))
        )
    )
    assert "model 'smollm2' is already taken" in loader.add_module("catalog-clash", catalog_clash).error
    command_clash = types.SimpleNamespace(register_commands=hookimpl(lambda register: register(print, name="models")))
    assert "command 'models' is already taken" in loader.add_module("command-clash", command_clash).error
    assert "mine" not in loader.registry.models


def test_the_plugin_face_is_public_and_cheap_to_import():
    face = "hookimpl, Task, Input, Option, Eval, sampling_options, check_sampling, NlpsuiteError"
    code = (
        f"import sys, nlpsuite; from nlpsuite import {face}; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'torch', 'transformers') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    import nlpsuite
    from nlpsuite import hookspecs, tasks

    assert nlpsuite.Task is tasks.Task and nlpsuite.hookimpl is hookspecs.hookimpl
    assert set(face.split(", ")) | {"Suite"} <= set(nlpsuite.__all__) <= set(dir(nlpsuite))
    with pytest.raises(AttributeError):
        nlpsuite.no_such_name  # noqa: B018


def test_the_example_plugin_uses_only_the_public_face():
    source = (ROOT / "examples" / "nlpsuite-haiku" / "nlpsuite_haiku.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert [i for i in imports if "nlpsuite" in i] == [
        "from nlpsuite import Input, Task, check_sampling, hookimpl, sampling_options"
    ]


def test_the_plugin_guide_and_the_task_docstring_name_every_front_end_and_reserved_name():
    from nlpsuite import tasks
    from nlpsuite.plugins import CORE_COMMANDS

    guide = (ROOT / "docs" / "plugins.md").read_text()
    for text in (guide, tasks.Task.__doc__ + tasks.__doc__):
        for name in [*tasks.FRONT_END_OPTIONS, *CORE_COMMANDS]:
            assert re.search(rf"\b{name}\b", text), name
        for front_end in ("nlpsuite eval", "/task", "/v1/tasks/", "--ray", "Suite", "MCP", "batch mode"):
            assert front_end in text, front_end


def _command_plugin(name: str):
    def register_commands(register):
        def taken() -> None:
            """A plugin's own command."""
            print("the plugin's command ran")

        register(taken, name=name)

    return types.SimpleNamespace(register_commands=hookimpl(register_commands))


def _task_plugin(name: str):
    def register_tasks(register):
        register(Task(name, "A plugin's task.", "generation", lambda suite, inputs: [{} for _ in inputs]))

    return types.SimpleNamespace(register_tasks=hookimpl(register_tasks))


@pytest.mark.parametrize("make", [_command_plugin, _task_plugin], ids=["command", "task"])
def test_a_plugin_cannot_take_the_serve_command(make, monkeypatch, cli):
    from nlpsuite import plugins

    loader = PluginLoader()
    loader.load(include_entry_points=False)
    info = loader.add_module("takes-serve", make("serve"))
    assert "command 'serve' is already taken" in (info.error or "")
    monkeypatch.setattr(plugins, "_REGISTRY", loader.registry)
    result = cli(["serve", "--help"])
    assert result.code == 0 and "--max-batch" in result.out  # still nlpsuite's own server
    assert "plugin" not in result.out


def test_every_core_command_is_reserved(monkeypatch):
    from nlpsuite import plugins
    from nlpsuite.cli.app import build_command

    loader = PluginLoader()
    registry = loader.load(include_entry_points=False)
    monkeypatch.setattr(plugins, "_REGISTRY", registry)
    group = build_command()
    core = [n for n in group.list_commands(None) if n not in registry.tasks]
    assert "serve" in core and "models" in core
    for name in core:
        for make in (_command_plugin, _task_plugin):
            info = loader.add_module(f"takes-{name}", make(name))
            assert f"command {name!r} is already taken" in (info.error or ""), (name, make.__name__)


@pytest.mark.shared_cache
def test_a_declared_third_party_task_gets_every_front_end(with_plugins, cli, tiny_llama, tmp_path, capsys):
    """The haiku package declares a task and writes no command: CLI, --json, batch with resume, REPL, Python."""
    tiny = ["--model", str(tiny_llama), "--quiet"]
    result = cli(["haiku", "autumn rain", "--json", "--max-tokens", "6", *tiny])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["topic"] == "autumn rain" and isinstance(data["haiku"], str)
    assert cli(["haiku", "-n", "6", *tiny], stdin=b"autumn rain\n").out.strip() == data["haiku"]
    bad = cli(["haiku", "  ", *tiny])
    assert bad.code == 1 and bad.err.strip() == "error: empty topic"
    assert (
        cli(["haiku", "x", "--temperature", "-1", *tiny]).err.strip()
        == "error: --temperature must be between 0 and 100"
    )

    src, out = tmp_path / "topics.jsonl", tmp_path / "haiku.jsonl"
    src.write_text(
        "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(["autumn rain", "snow", "sea"]))
    )
    out.write_text(json.dumps({"text": "autumn rain", "id": 0, "haiku": "kept"}) + "\n")  # an earlier, interrupted run
    result = cli(["haiku", "--input", str(src), "--output", str(out), "--json", "-n", "6", *tiny])
    assert result.code == 0, result.err
    assert json.loads(result.out)["written"] == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert (
        [r["id"] for r in rows] == [0, 1, 2] and rows[0]["haiku"] == "kept" and set(rows[1]) == {"text", "id", "haiku"}
    )

    from nlpsuite.api import Suite
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    suite = Suite(model=str(tiny_llama))
    assert suite.run("haiku", "autumn rain", max_tokens=6) == data["haiku"]
    assert suite.run("haiku", ["autumn rain", "snow"], max_tokens=6) == [data["haiku"], rows[1]["haiku"]]
    script = io.StringIO("/task haiku --max-tokens 6\nautumn rain\n")
    repl = ChatRepl(suite, SamplingParams(max_tokens=4), json=True, stdin=script, stdout=(shown := io.StringIO()))
    repl.run()
    assert json.loads(shown.getvalue().splitlines()[-1])["haiku"] == data["haiku"]


@pytest.mark.shared_cache
def test_a_plugin_can_add_a_catalog_model(tiny_llama, cli, monkeypatch):
    from nlpsuite import plugins

    plugin = types.SimpleNamespace(
        register_models=hookimpl(
            lambda register: register("tiny", source={"kind": "path", "path": str(tiny_llama)}, aliases=("t",))
        )
    )
    loader = PluginLoader()
    loader.load(include_entry_points=False)
    assert loader.add_module("tiny-models", plugin).error is None
    monkeypatch.setattr(plugins, "_REGISTRY", loader.registry)
    result = cli(["generate", "hi", "--model", "t", "--max-tokens", "3", "--json", "--quiet"])
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"] == "tiny"
