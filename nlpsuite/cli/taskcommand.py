"""The CLI command of any task, generated from its declaration (nlpsuite.tasks): written once for every task.

Text from the argument, stdin (``-``) or ``--file``; the task's options with their types and ranges;
``--json``; batch mode (``--input`` JSONL/CSV/TSV, ``--output`` JSONL, progress, resume); and
``--model/--device/--precision/--quiet``.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import NlpsuiteError
from ..tasks import Input, Option, Task
from . import options as opt

# The options every task command has, by parameter name; a task may not declare these names itself.
COMMON = {
    "file": (opt.InputFile, None),
    "json": (opt.Json, False),
    "input": (opt.BatchInput, None),
    "output": (opt.BatchOutput, None),
    "batch_size": (None, None),  # its default is the task's batch size, set per command
    "force": (opt.Force, False),
    "model": (opt.Model, None),
    "device": (opt.Device, "auto"),
    "precision": (opt.Precision, "fp32"),
    "quiet": (opt.Quiet, False),
    "ray": (opt.Ray, None),
    "workers": (opt.Workers, None),
}


def _param(name: str, annotation, default) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _help(option: Option) -> str:
    shown = option.default
    if shown is None or shown is False or option.required:
        return option.help
    return f"{option.help} \\[default: {','.join(shown) if isinstance(shown, list) else shown}]"  # \\[: not markup


def option_parameter(option: Option, name: str | None = None) -> inspect.Parameter:
    """A Typer parameter for a declared option (values are checked by the declaration, not by Typer)."""
    name = name or option.name
    if option.argument:
        return _param(name, Annotated[str | None, typer.Argument(help=option.help, show_default=False)], None)
    decls = [option.cli_flag, *([option.short] if option.short else [])]
    if option.type is bool:
        if option.default:  # a switch on by default is turned off by --no-NAME
            decls[0] = f"{option.cli_flag}/--no-{option.cli_flag[2:]}"
        return _param(name, Annotated[bool, typer.Option(*decls, help=option.help)], bool(option.default))
    if option.type is list and option.separator is None:
        kind: Any = list[str] | None
    else:
        kind = {int: int, float: float, Path: Path}.get(option.type, str) | None
    return _param(name, Annotated[kind, typer.Option(*decls, help=_help(option), show_default=False)], None)


def _input_parameter(field: Input) -> inspect.Parameter:
    what = f"{field.help or field.name}: text, a file, or - for stdin." if field.file else field.help or field.name
    return _param(field.name, Annotated[str | None, typer.Option(f"--{field.name}", help=what)], None)


def signature(task: Task) -> list[inspect.Parameter]:
    head, *rest = task.inputs
    text_help = f"{head.help or 'The text'}; read from stdin when omitted or '-'."
    params = [option_parameter(o) for o in task.options if o.argument]
    params.append(_param(head.name, Annotated[str | None, typer.Argument(help=text_help, show_default=False)], None))
    params += [_input_parameter(i) for i in rest]
    params += [option_parameter(o) for o in task.options if not o.argument]
    for name, (annotation, default) in COMMON.items():
        if name == "batch_size":
            annotation = Annotated[int, typer.Option("--batch-size", help="Batch mode: records run together.")]
            default = task.batch_size
        params.append(_param(name, annotation, default))
    return params


def task_command(task: Task):
    """A function Typer turns into ``nlpsuite TASK``."""
    params = signature(task)

    def command(**given) -> None:
        run_command(task, given)

    command.__name__ = task.name.replace("-", "_")
    command.__doc__ = task.description
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def run_command(task: Task, given: dict) -> None:
    head, *rest = task.inputs
    text = given[head.name]
    shared = {i.name: text_or_file(given[i.name], i) for i in rest if given[i.name] is not None}
    # a switch left off is not given (its default stands), unless it turns off one that is on by default
    chosen = {
        o.name: given[o.name]
        for o in task.options
        if given[o.name] is not None and (given[o.name] is not False or o.default)
    }
    batch = opt.batch_paths(given["input"], given["output"], text)
    if given["batch_size"] < 1:
        raise NlpsuiteError("--batch-size must be at least 1")
    options = task.check_options(chosen, shared, batch)
    if given["ray"] is not None and not batch:
        raise NlpsuiteError("--ray runs batch mode: give --input and --output")
    if batch and given["ray"] is None and "://" in given["input"]:
        raise NlpsuiteError(f"--input {given['input']}: a URL is read on a Ray cluster (add --ray); here, give a file")
    pool = opt.ray_pool(given["ray"], given["workers"], given["model"], given["device"], given["precision"])
    if pool:  # the actors load the model; this process only reads and writes records
        _run_on_ray(task, pool, given, shared, options)
        return
    value = None if batch else opt.read_text(text, what=head.name, file=given["file"], stdin_taken="-" in shared)
    quiet = given["quiet"]
    suite = opt.open_suite(given["model"], given["device"], given["precision"], quiet)
    if batch:
        _run_batch(task, suite, given, shared, options)
        return
    from .progress import progress_bar
    from .render import show

    streamed = task.stream and not given["json"]
    extra = {"on_text": _write} if streamed else {}
    with progress_bar(task.progress_label or task.name, quiet) as advance:
        suite.progress = advance
        (result,) = task.run(suite, [{head.name: value, **shared}], **options, **extra)
    if given["json"]:
        said = getattr(suite, "warnings", None)  # a stand-in suite (tests, other front-ends) may say nothing
        opt.print_json({**result, "warnings": said} if said else result)
    elif streamed:
        sys.stdout.write("\n")
    else:
        show(result, task.value)
    if result.get("finish_reason") == "interrupted":
        raise typer.Exit(130)


def _write(_row: int, delta: str) -> None:
    sys.stdout.write(delta)
    sys.stdout.flush()


def _run_batch(task: Task, suite, given: dict, shared: dict, options: dict) -> None:
    from .batch import run_batch

    def process(records: list[dict]) -> list[dict]:
        results = task.run(suite, task.batch_inputs(records, shared), **options)
        if any(r.get("finish_reason") == "interrupted" for r in results):
            raise KeyboardInterrupt  # a record cut short is never written: a resume redoes it
        return [task.batch_fields(r) for r in results]

    label = task.progress_label or task.name
    output, quiet = given["output"], given["quiet"]
    written = run_batch(Path(given["input"]), output, process, given["batch_size"], quiet, label, force=given["force"])
    if given["json"] and str(output) != "-":
        arguments = {o.name: options[o.name] for o in task.options if o.argument}
        opt.print_json({"output": str(output), "written": written, "model": suite.source.key, **arguments})


def _run_on_ray(task: Task, pool, given: dict, shared: dict, options: dict) -> None:
    from .. import distributed
    from .progress import progress_bar

    output = given["output"]
    with progress_bar(task.progress_label or task.name, given["quiet"], transient=False) as bar:
        written = distributed.run_task(
            task, given["input"], output, pool, shared, options, given["batch_size"], given["force"], bar
        )
    if given["json"] and str(output) != "-":
        arguments = {o.name: options[o.name] for o in task.options if o.argument}
        opt.print_json({"output": str(output), "written": written, "model": pool.model_key(), **arguments})


def text_or_file(value: str, field: Input) -> str:
    """A later input given once: its text, or for a file input a UTF-8 file's contents or stdin ('-')."""
    if not field.file:
        return value
    if value == "-":
        return opt.read_text(None, what=field.name)
    if len(value) > 1024 or "\n" in value:
        return value  # text, not a path
    try:
        path = Path(value)
        if path.is_file():
            return opt.read_utf8(path)
        missing = path.suffix in (".txt", ".md") and not path.exists()
    except (OSError, ValueError):  # e.g. a sentence longer than a file name may be
        return value
    if missing:
        raise NlpsuiteError(f"cannot read {value}: no such file")
    return value
