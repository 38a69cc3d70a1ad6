"""Plugins: built-ins through the public hooks, a real third-party package, isolation of broken ones."""

from __future__ import annotations

import json
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
    assert found["haiku"]["error"] is None and "register_commands" in found["haiku"]["hooks"]
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


@pytest.mark.shared_cache
def test_third_party_command_runs_on_the_shared_backbone(with_plugins, cli, tiny_llama):
    result = cli(["haiku", "autumn rain", "--model", str(tiny_llama), "--json", "--quiet"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["topic"] == "autumn rain" and isinstance(data["haiku"], str)
    bad = cli(["haiku", "  ", "--model", str(tiny_llama)])
    assert bad.code == 1 and bad.err.strip() == "error: empty topic"


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
