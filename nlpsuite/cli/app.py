"""The `nlpsuite` command: core commands plus every plugin's, with one-line errors."""

from __future__ import annotations

import sys

import typer

from ..errors import NlpsuiteError
from ..plugins import registry
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
    taken = {"models", "plugins", "doctor"}
    for target, name, _plugin in registry().commands:
        if isinstance(target, typer.Typer):
            cmd_name = name or target.info.name
            if cmd_name in taken:
                continue
            app.add_typer(target, name=cmd_name)
        else:
            cmd_name = name or target.__name__.replace("_", "-")
            if cmd_name in taken:
                continue
            app.command(cmd_name)(target)
        taken.add(cmd_name)
    return app


def main(argv: list[str] | None = None) -> None:
    import click

    try:
        command = typer.main.get_command(build_app())
        code = command.main(args=argv, prog_name="nlpsuite", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        code = 130
    except NlpsuiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
