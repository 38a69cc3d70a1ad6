"""The `nlpsuite` command: a generated command per task, the non-task command groups, and every plugin's
commands, with one-line errors."""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from .. import __version__
from ..errors import Interrupted, NlpsuiteError, closest
from ..fsutil import os_error_line
from ..plugins import CORE_COMMANDS, command_name, registry

Loader = Callable[[], object]  # -> a click command, or None where there is none to offer
# What a Ctrl-C leaves when the command says nothing more: writes are whole or not at all (atomic, resumable)
AFTER_CTRL_C = "nothing half-done was kept; run the same command to start again"


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
            self.commands[cmd_name] = tidy(command)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx, args):
        word = args[0] if args else ""
        if word and not word.startswith("-") and word not in self.list_commands(ctx):
            match = closest(word, self.list_commands(ctx))  # Typer's own suggestion sees loaded commands only
            if match:
                ctx.fail(f"No such command {word!r}. Did you mean {match!r}?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # Typer would exit 130 without a word: every Ctrl-C says how to carry on
            _interrupted(exc)
            raise typer.Exit(130) from None


KINDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "list[str]": "TEXT"}


def tidy(command):
    """``command`` (and its subcommands) with help that reads right: a switch shows no value (Typer wrote
    ``--json <bool>``, as if it took one), a value option the kind of value in words (TEXT, INTEGER, NUMBER,
    PATH), an argument just its name; and brackets in help are text, not markup that eats "[default: ...]"."""
    command.help = _literal(command.help)
    for param in command.params:
        param.help = _literal(getattr(param, "help", None))
        if isinstance(param, TyperOption):
            if param.is_flag:
                param.metavar = ""
            elif param.metavar is None:
                kind = param.bare_type()
                param.metavar = KINDS.get(kind, kind.upper())
        elif isinstance(param, TyperArgument):
            param.display_type_rich = lambda ctx: None  # the argument's name says what it is
    command.get_help_option = functools.partial(_help_option, command.get_help_option)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


def _literal(text: str | None) -> str | None:
    return re.sub(r"(?<!\\)\[", r"\\[", text) if text else text


def _help_option(make, ctx):
    option = make(ctx)
    if option is not None:
        option.metavar = ""  # --help is a switch too
    return option


def _single(name: str, function):
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name)(function)
    return typer.main.get_command(app)


def _command(target, name: str):
    """The click command of a Typer app (a group) or of a command function."""
    return typer.main.get_group(target) if isinstance(target, typer.Typer) else _single(name, target)


def _from(module: str, attribute: str, factory: bool = False) -> Loader:
    """A loader of ``nlpsuite.cli.<module>.<attribute>``: a command function, a Typer app, or a factory of one."""

    def load():
        target = getattr(importlib.import_module(f".{module}", __package__), attribute)
        if factory:
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
    loaders.update({name: _from(*where) for name, where in CORE_COMMANDS.items()})
    for target, name, _plugin in reg.commands:  # names were checked for clashes when loaded
        command = command_name(target, name)
        loaders[command] = functools.partial(_command, target, command)
    group = typer.main.get_command(app)
    group.loaders = loaders
    return tidy(group)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Click's standalone mode reports usage errors itself (a usage line, exit 2); our own
    errors get one line and exit 1."""
    try:
        build_command().main(args=argv, prog_name="nlpsuite", standalone_mode=True)
    except NlpsuiteError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # disk full or read-only wherever it happens: one line, not a traceback
        if (message := os_error_line(exc)) is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
        sys.exit(130)


def _one_line(message: str) -> str:
    """An error as one printable line: a line break becomes a space, and a run of other control characters (NUL
    bytes read from a damaged file...) one U+FFFD, never raw bytes on the terminal."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]+", "\ufffd", re.sub(r"\s*[\r\n]+\s*", " ", message))


def _interrupted(exc: KeyboardInterrupt) -> None:
    said = str(exc) if isinstance(exc, Interrupted) and str(exc) else AFTER_CTRL_C
    print(f"interrupted: {said}", file=sys.stderr)
