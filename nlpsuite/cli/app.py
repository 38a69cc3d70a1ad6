"""The `nlpsuite` command: a generated command per task, the non-task command groups, and every plugin's
commands, with one-line errors."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import NlpsuiteError
from ..fsutil import os_error_line
from ..plugins import command_name, registry

Loader = Callable[[], object]  # -> a click command, or None where there is none to offer


def _version(value: bool) -> None:
    if value:
        print(f"nlpsuite {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Seven NLP jobs on one shared ONNX language-model backbone."""


class LazyGroup(TyperGroup):
    """The root command. A subcommand's module is imported and its parameters built only when it runs or
    is listed: `nlpsuite generate` does not pay for importing `eval`'s metrics or building 20 other commands."""

    loaders: dict[str, Loader] = {}

    def list_commands(self, ctx) -> list[str]:
        return [*self.commands, *(name for name in self.loaders if name not in self.commands)]

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in self.commands and cmd_name in self.loaders:
            command = self.loaders[cmd_name]()
            if command is None:
                return None
            command.name = cmd_name
            self.commands[cmd_name] = command
        return self.commands.get(cmd_name)


def _single(name: str, function):
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name)(function)
    return typer.main.get_command(app)


def _command(target, name: str):
    """The click command of a Typer app (a group) or of a command function."""
    return typer.main.get_group(target) if isinstance(target, typer.Typer) else _single(name, target)


def _from(module: str, attribute: str, kind: str = "command") -> Loader:
    """A loader of ``nlpsuite.cli.<module>.<attribute>``: a command function, a Typer app, or a factory of one."""

    def load():
        target = getattr(importlib.import_module(f".{module}", __package__), attribute)
        if kind == "factory":
            target = target()
            if target is None:
                return None
        return _command(target, attribute)

    return load


def _task(task) -> Loader:
    def load():
        from .taskcommand import task_command

        return _single(task.name, task_command(task))

    return load


def build_command() -> LazyGroup:
    """The root click group, with a loader for every command (built on first use)."""
    app = typer.Typer(
        name="nlpsuite",
        cls=LazyGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Seven NLP jobs on one shared ONNX language-model backbone.",
    )
    app.callback()(_root)
    reg = registry()
    loaders: dict[str, Loader] = {task.name: _task(task) for task in reg.tasks.values() if task.command}
    loaders.update(
        {
            "chat": _from("chat", "command", "factory"),
            "eval": _from("eval", "eval_app", "factory"),
            "calibrate": _from("calibrate", "calibrate_app", "factory"),
            "train": _from("train", "train"),
            "tune": _from("tune", "tune_app", "factory"),
            "index": _from("index", "app"),
            "heads": _from("heads", "app"),
            "models": _from("models", "app"),
            "plugins": _from("info", "plugins"),
            "doctor": _from("info", "doctor"),
            "serve": _from("serve", "serve"),
            "mcp": _from("mcp", "mcp"),
        }
    )
    for target, name, _plugin in reg.commands:  # names were checked for clashes when loaded
        command = command_name(target, name)
        loaders[command] = functools.partial(_command, target, command)
    group = typer.main.get_command(app)
    group.loaders = loaders
    return group


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Click's standalone mode reports usage errors itself (a usage line, exit 2); our own
    errors get one line and exit 1."""
    try:
        build_command().main(args=argv, prog_name="nlpsuite", standalone_mode=True)
    except NlpsuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # disk full or read-only wherever it happens: one line, not a traceback
        if (message := os_error_line(exc)) is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
