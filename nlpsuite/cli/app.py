"""The `nlpsuite` command: core commands plus every plugin's, with one-line errors."""

from __future__ import annotations

import sys

import typer

from ..errors import NlpsuiteError
from ..fsutil import os_error_line
from ..plugins import command_name, registry
from . import info, models


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="nlpsuite",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        help="Seven NLP jobs on one shared ONNX language-model backbone.",
    )
    app.add_typer(models.app, name="models")
    app.command("plugins")(info.plugins)
    app.command("doctor")(info.doctor)
    for target, name, _plugin in registry().commands:  # names were checked for clashes when loaded
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
