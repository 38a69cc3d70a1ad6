"""The `nlpsuite` command: a generated command per task, the non-task command groups, and every plugin's
commands, with one-line errors."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import NlpsuiteError
from ..fsutil import os_error_line
from ..plugins import command_name, registry
from . import chat, heads, index, info, models, serve, train
from . import eval as evaluate
from .taskcommand import task_command


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


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="nlpsuite",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Seven NLP jobs on one shared ONNX language-model backbone.",
    )
    app.callback()(_root)
    reg = registry()
    for task in reg.tasks.values():
        if task.command:
            app.command(task.name)(task_command(task))
    repl = chat.command()
    if repl is not None:
        app.command("chat")(repl)
    app.add_typer(evaluate.eval_app(), name="eval")
    app.command("calibrate")(evaluate.calibrate)
    app.command("train")(train.train)
    app.add_typer(index.app, name="index")
    app.add_typer(heads.app, name="heads")
    app.add_typer(models.app, name="models")
    app.command("plugins")(info.plugins)
    app.command("doctor")(info.doctor)
    app.command("serve")(serve.serve)
    for target, name, _plugin in reg.commands:  # names were checked for clashes when loaded
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=command_name(target, name))
        else:
            app.command(command_name(target, name))(target)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Click's standalone mode reports usage errors itself (a usage line, exit 2); our own
    errors get one line and exit 1."""
    try:
        command = typer.main.get_command(build_app())
        command.main(args=argv, prog_name="nlpsuite", standalone_mode=True)
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
