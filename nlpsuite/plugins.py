"""Load built-in and third-party plugins, isolating failures, and collect what they register."""

from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import config, hookspecs
from .errors import PluginError
from .tasks import Task

ENTRY_POINT_GROUP = "nlpsuite"
BUILTIN_PLUGINS = (
    "nlpsuite_plugins.heads",
    "nlpsuite_plugins.generate",
    "nlpsuite_plugins.chat",
    "nlpsuite_plugins.classify",
    "nlpsuite_plugins.qa",
    "nlpsuite_plugins.translate",
    "nlpsuite_plugins.summarize",
    "nlpsuite_plugins.retrieval",
    "nlpsuite_plugins.rerank",
    "nlpsuite_plugins.extract",
)
HOOKS = ("register_tasks", "register_heads", "register_models", "register_commands")


@dataclass
class PluginInfo:
    name: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict:
        return {"name": self.name, "hooks": self.hooks, "error": self.error}


@dataclass
class Registry:
    """Everything the loaded plugins registered."""

    tasks: dict[str, Task] = field(default_factory=dict)
    heads: dict[str, object] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    commands: list[tuple[object, str | None, str]] = field(default_factory=list)  # (target, name, plugin)
    plugins: list[PluginInfo] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return message + where


class PluginLoader:
    """Runs each plugin's hooks on its own so that one broken plugin cannot take down the rest."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("nlpsuite")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.strict = config.strict_plugins()

    def load(self, include_entry_points: bool = True) -> Registry:
        for module_name in BUILTIN_PLUGINS:
            self._add(module_name.rsplit(".", 1)[-1], lambda m=module_name: importlib.import_module(m), builtin=True)
        if include_entry_points:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                self._add(ep.name, ep.load)
        return self.registry

    def add_module(self, name: str, module) -> PluginInfo:
        """Register an already-imported plugin object (used by tests and embedding apps)."""
        return self._add(name, lambda: module)

    def _add(self, name: str, load, builtin: bool = False) -> PluginInfo:
        info = PluginInfo(name, builtin=builtin)
        self.registry.plugins.append(info)
        plugin = None
        try:
            plugin = load()
            self.pm.register(plugin, name=name)
            info.hooks = [h.name for h in self.pm.get_hookcallers(plugin) or []]
            self._commit(self._collect(plugin, info.hooks), name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - isolation is the point: sys.exit() in a plugin included
            info.error = _describe(exc)
            if plugin is not None and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            if self.strict:
                raise PluginError(f"plugin {name!r} failed: {info.error}") from exc
        return info

    @staticmethod
    def _collect(plugin, hooks: list[str]) -> list[tuple[str, tuple, dict]]:
        staged: list[tuple[str, tuple, dict]] = []
        for hook in HOOKS:
            if hook in hooks:
                getattr(plugin, hook)(register=lambda *a, _h=hook, **kw: staged.append((_h, a, kw)))
        return staged

    def _commit(self, staged: list[tuple[str, tuple, dict]], plugin_name: str) -> None:
        """Validate everything a plugin registered, then apply it all: a plugin lands whole or not at all."""
        tasks, heads, models, commands = {}, {}, {}, []
        for hook, args, kw in staged:
            if hook == "register_tasks":
                task = args[0] if args else kw["task"]
                if not isinstance(task, Task):
                    raise TypeError(f"register_tasks expects a Task, got {type(task).__name__}")
                tasks[task.name] = task
            elif hook == "register_heads":
                name = args[0] if args else kw["name"]
                heads[name] = args[1] if len(args) > 1 else kw["factory"]
            elif hook == "register_models":
                name = args[0] if args else kw["name"]
                models[name] = {
                    "source": args[1] if len(args) > 1 else kw["source"],
                    "description": kw.get("description", ""),
                    "aliases": tuple(kw.get("aliases", ())),
                }
            else:
                commands.append((args[0] if args else kw["target"], kw.get("name"), plugin_name))
        reg = self.registry
        taken_models = set(reg.models) | {a for e in reg.models.values() for a in e["aliases"]} | _catalog_names()
        new_models = set(models) | {a for e in models.values() for a in e["aliases"]}
        taken_commands = set(CORE_COMMANDS) | {command_name(t, n) for t, n, _ in reg.commands}
        taken_commands |= {t.name for t in reg.tasks.values() if t.command}
        new_commands = {command_name(t, n) for t, n, _ in commands} | {t.name for t in tasks.values() if t.command}
        for kind, new, old in (
            ("task", set(tasks), set(reg.tasks)),
            ("head", set(heads), set(reg.heads)),
            ("model", new_models, taken_models),
            ("command", new_commands, taken_commands),
        ):
            clash = sorted(new & old)
            if clash:
                raise ValueError(f"{kind} {clash[0]!r} is already taken")
        reg.tasks.update(tasks)
        reg.heads.update(heads)
        reg.models.update(models)
        reg.commands.extend(commands)


# The commands that are not tasks, and where the CLI finds each: {name: (module of nlpsuite/cli/, its attribute,
# whether that is a factory)}. The attribute is a command function or a Typer app; a factory returns one, or None
# where there is none to offer. The CLI registers exactly these, and no task or plugin command may take their names.
CORE_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "chat": ("chat", "command", True),
    "eval": ("eval", "eval_app", True),
    "calibrate": ("calibrate", "calibrate_app", True),
    "train": ("train", "train", False),
    "tune": ("tune", "tune_app", True),
    "index": ("index", "app", False),
    "heads": ("heads", "app", False),
    "models": ("models", "app", False),
    "plugins": ("info", "plugins", False),
    "doctor": ("info", "doctor", False),
    "serve": ("serve", "serve", False),
    "mcp": ("mcp", "mcp", False),
}


def command_name(target, name: str | None) -> str:
    """The CLI name a registered command gets: its given name, a Typer app's name, or the function's."""
    if name:
        return name
    info = getattr(target, "info", None)
    return getattr(info, "name", None) or target.__name__.replace("_", "-")


def _catalog_names() -> set[str]:
    from .modelstore.catalog import builtin_entries

    return {n for e in builtin_entries().values() for n in (e["name"], *e.get("aliases", ()))}


_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = PluginLoader().load()
    return _REGISTRY


def reset() -> None:
    global _REGISTRY
    _REGISTRY = None
