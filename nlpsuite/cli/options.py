"""Options every command shares, declared once, plus the small I/O helpers commands use.

Plugin authors may import from here: it is part of the public plugin API.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import read_utf8  # noqa: F401 - part of the plugin API (opt.read_utf8)
from ..text import blank
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
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the result (and errors): no progress, notes or warnings.")
]
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
CacheMb = Annotated[
    float | None,
    typer.Option(
        "--cache-mb",
        help="Prompt cache budget in MiB, reused across turns/requests (0: off; default: "
        "an eighth of free memory, 64-1024).",
    ),  # fmt: skip
]
PrefillChunk = Annotated[
    int | None, typer.Option("--prefill-chunk", help="Tokens per prefill pass (long prompts go in chunks; 256).")
]
Force = Annotated[bool, typer.Option("--force", help="Batch mode: overwrite an --output that is not this run's.")]
TextColumn = Annotated[
    str, typer.Option("--text-column", metavar="NAME", help="Batch mode: the field that holds the text.")
]
OutputPrefix = Annotated[
    str,
    typer.Option(
        "--output-prefix",
        metavar="P",
        help="Batch mode: name the fields the task adds P + field (pred_ gives pred_label); an input field is "
        "never overwritten.",
    ),
]
OnError = Annotated[
    str,
    typer.Option(
        "--on-error",
        metavar="stop|skip",
        help="Batch mode: a record the task refuses (empty text...) stops the run, or is skipped: written with an "
        "'error' field and counted at the end.",
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Batch mode: if another run is writing --output, wait for it to end.")
]
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
        "\\[default: the cluster's CPUs / threads].",
    ),
]


# Every shared parameter of a generated command (a task's, chat, eval): {name: (Typer annotation, default)}. A task
# command has those of nlpsuite.tasks.FRONT_END_OPTIONS (the names a task may not take), chat and eval SUITE_PARAMS.
PARAMETERS = {
    "file": (InputFile, None),
    "json": (Json, False),
    "input": (BatchInput, None),
    "output": (BatchOutput, None),
    "batch_size": (BatchSize, 8),
    "force": (Force, False),
    "text_column": (TextColumn, "text"),
    "output_prefix": (OutputPrefix, ""),
    "on_error": (OnError, "stop"),
    "wait": (Wait, False),
    "model": (Model, None),
    "device": (Device, "auto"),
    "precision": (Precision, "fp32"),
    "quiet": (Quiet, False),
    "ray": (Ray, None),
    "cache_mb": (CacheMb, None),
    "prefill_chunk": (PrefillChunk, None),
    "workers": (Workers, None),
}
SUITE_PARAMS = ("model", "device", "precision", "json", "quiet")  # the suite a command opens, and how it reports


def parameter(name: str, annotation, default=inspect.Parameter.empty) -> inspect.Parameter:
    """One keyword parameter of a generated command."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def shared(names, **defaults) -> list[inspect.Parameter]:
    """The PARAMETERS of these names, with another default where one is given."""
    return [parameter(n, PARAMETERS[n][0], defaults.get(n, PARAMETERS[n][1])) for n in names]


def generated_command(name: str, doc: str, params: list[inspect.Parameter], body: Callable[[dict], None]):
    """A function Typer turns into a command with these parameters; ``body`` receives them as one dict."""

    def command(**given) -> None:
        body(given)

    command.__name__ = name.replace("-", "_")
    command.__doc__ = doc
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def task_group(unknown: Callable[[str], None], base: type | None = None) -> type:
    """The Click group of a command whose subcommands are tasks (eval, calibrate, tune): ``unknown(name)`` raises
    the one-line error for a name that is none of them (exit 1, no usage screen)."""
    from typer.core import TyperGroup

    class TaskGroup(base or TyperGroup):
        def resolve_command(self, ctx, args):
            if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
                unknown(args[0])
            return super().resolve_command(ctx, args)

    return TaskGroup


def opener(given: dict) -> Callable[[], object]:
    """``open_suite`` with a command's model, device, precision and quiet, for work that opens it only if needed."""
    return functools.partial(open_suite, given["model"], given["device"], given["precision"], given["quiet"])


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
    if blank(text):
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


def open_suite(
    model: str | None, device: str, precision: str = "fp32", quiet: bool = False, load: bool = True, **options
):
    """A Suite that reports conversion progress and the device it really runs on (unless quiet). An unknown model
    name fails now; ``load=False`` leaves the model to ``loaded`` (a batch loads it once its input is checked);
    ``options``: Suite's other keywords (cache_mb, prefill_chunk)."""
    from ..api import Suite

    def warn(message: str) -> None:
        from rich.markup import escape

        if not quiet:
            err(f"[yellow]warning: {escape(message)}[/yellow]")

    suite = Suite(model=model, device=device, precision=precision, report=reporter(quiet), quiet=quiet, **options)
    suite.on_warning = warn
    if load:
        return loaded(suite)
    from ..runtime.device import check_precision, plan

    check_precision(precision, plan(device).providers)  # an unusable device or precision fails now...
    suite.source  # noqa: B018 - ...and so does a model name that names nothing, before any input is read
    return suite


def loaded(suite):
    """``suite`` with its model loaded, said once if it does not run on the device asked for."""
    backbone = getattr(suite, "backbone", None)  # a stand-in suite (tests, other front-ends) may have none
    if backbone is not None and backbone.device_warning and not suite.quiet and not getattr(suite, "device_said", 0):
        from rich.markup import escape

        err(f"[yellow]{escape(backbone.device_note)}[/yellow]")
        suite.device_said = True
    return suite
