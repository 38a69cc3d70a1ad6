"""Options every command shares, declared once, plus the small I/O helpers commands use.

Plugin authors may import from here: it is part of the public plugin API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import read_utf8  # noqa: F401 - part of the plugin API (opt.read_utf8)
from .flags import DEVICE_FLAG, MODEL_FLAGS, PRECISION_FLAG, RAY_FLAG

Model = Annotated[
    str | None,
    typer.Option(
        *MODEL_FLAGS,
        envvar="NLPSUITE_MODEL",
        show_envvar=True,
        help=f"Catalog name, .gguf file, Hugging Face folder or hub id \\[default: {config.DEFAULT_MODEL}].",
    ),
]
Device = Annotated[
    str, typer.Option(DEVICE_FLAG, envvar="NLPSUITE_DEVICE", show_envvar=True, help="auto | cpu | cuda.")
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")]
Precision = Annotated[str, typer.Option(PRECISION_FLAG, help="fp32 | int8 | int4 | fp16 (CUDA only) weights.")]
InputFile = Annotated[Path | None, typer.Option("--file", "-f", help="Read the text from this file.")]
BatchInput = Annotated[  # a string: with --ray it may be a URL (s3://...), which a Path would mangle
    str | None,
    typer.Option(
        "--input",
        help="Batch mode: a .jsonl (or .csv/.tsv/.parquet) file of records with 'text'; with --ray, a URL too.",
    ),
]
BatchOutput = Annotated[
    Path | None,
    typer.Option("--output", help="Batch mode: the .jsonl file to write (resumes if it exists; - for stdout)."),
]
Force = Annotated[bool, typer.Option("--force", help="Batch mode: overwrite an --output that is not this run's.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Batch mode: records run together.")]
Ray = Annotated[
    str | None,
    typer.Option(
        RAY_FLAG,
        metavar="ADDRESS",
        help="Run on a Ray cluster: auto (the one 'ray start' made), local (start one here) or host:port.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="With --ray: actors, each loading the model once and running NLPSUITE_THREADS threads (default 1) "
        "[default: the cluster's CPUs / threads].",
    ),
]


def ray_pool(ray: str | None, workers: int | None, model: str | None, device: str, precision: str):
    """The actor pool that --ray asks for, connected (None without --ray); --workers alone is refused."""
    if ray is None:
        if workers is not None:
            raise NlpsuiteError("--workers needs --ray")
        return None
    if workers is not None and workers < 1:
        raise NlpsuiteError("--workers must be at least 1")
    from .. import distributed

    pool = distributed.Pool(model=model, device=device, precision=precision, workers=workers)
    pool.thread_count()  # a bad NLPSUITE_THREADS fails before any cluster starts
    distributed.connect(ray)
    return pool


def err(message: str) -> None:
    """A status line on stderr (never mixed into results on stdout)."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message)  # one message, one line


def print_json(data) -> None:
    """Valid JSON or a one-line error: NaN and infinity are not JSON, and a score that is NaN means nothing."""
    try:
        text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False)
    except ValueError:
        raise NlpsuiteError(
            "the result holds a non-finite number (NaN or infinity): the model or a saved calibration is damaged; "
            "check the model with 'nlpsuite models verify'"
        ) from None
    sys.stdout.write(text + "\n")


def read_text(argument: str | None, what: str = "prompt", file: Path | None = None, stdin_taken: bool = False) -> str:
    """The argument, else ``file``, else stdin when the argument is '-' or absent and stdin is piped.

    Text from a file or stdin loses its trailing line break, so it means what the same argument would.
    """
    if argument is not None and file is not None:
        raise NlpsuiteError(f"give the {what} as an argument or with --file, not both")
    if file is not None:
        text = read_utf8(file).rstrip("\r\n")
    elif argument is not None and argument != "-":
        text = argument
    elif stdin_taken:
        raise NlpsuiteError(f"stdin is already read for another input: give the {what} as an argument")
    elif not sys.stdin.isatty():
        try:
            text = sys.stdin.buffer.read().decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise NlpsuiteError(f"the {what} on stdin is not valid UTF-8 text") from None
    else:
        raise NlpsuiteError(f"no {what}: pass it as an argument or pipe it on stdin")
    if not text.strip():
        raise NlpsuiteError(f"empty {what}")
    return text


def batch_paths(input_path: str | None, output_path: Path | None, argument: str | None) -> bool:
    """Whether batch mode is asked for, and consistently."""
    if input_path is None and output_path is None:
        return False
    if input_path is None or output_path is None:
        raise NlpsuiteError("batch mode needs both --input and --output")
    if argument is not None:
        raise NlpsuiteError("give either a text argument or --input, not both")
    if output_path.suffix.lower() == ".parquet":  # Parquet is read, not written: JSONL under that name would mislead
        raise NlpsuiteError(f"--output {output_path}: batch mode writes JSONL; name the file .jsonl")
    return True


def reporter(quiet: bool):
    """Where conversion progress goes: dim status lines on stderr, or nowhere with --quiet."""
    return (lambda _msg: None) if quiet else (lambda msg: err(f"[dim]{msg}[/dim]"))


def open_suite(model: str | None, device: str, precision: str = "fp32", quiet: bool = False):
    """A Suite that reports conversion progress and the device it really runs on (unless quiet)."""
    from ..api import Suite

    def warn(message: str) -> None:  # even with --quiet
        from rich.markup import escape

        err(f"[yellow]warning: {escape(message)}[/yellow]")

    suite = Suite(model=model, device=device, precision=precision, report=reporter(quiet), quiet=quiet)
    suite.on_warning = warn
    backbone = suite.backbone
    if backbone.device_warning and not quiet:
        err(f"[yellow]{backbone.device_note}[/yellow]")
    return suite
