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

from ..batch import Layout
from ..errors import Interrupted, NlpsuiteError
from ..tasks import FRONT_END_OPTIONS, Input, Option, Task
from . import options as opt

# The parameters every task command has besides the task's own: the front-end names (tasks.FRONT_END_OPTIONS)
# but run()'s streaming callback.
COMMON = tuple(name for name in FRONT_END_OPTIONS if name != "on_text")


def _help(option: Option) -> str:
    shown, said = option.default, option.help
    if option.type is list and option.separator is None:
        said = f"{said} (repeatable)"  # the flag once per value
    if shown is None or shown is False or option.required:
        return said
    return f"{said} \\[default: {','.join(shown) if isinstance(shown, list) else shown}]"  # \\[: not markup


def option_parameter(option: Option, name: str | None = None) -> inspect.Parameter:
    """A Typer parameter for a declared option (values are checked by the declaration, not by Typer)."""
    name = name or option.name
    if option.argument:
        return opt.parameter(name, Annotated[str | None, typer.Argument(help=option.help, show_default=False)], None)
    decls = [option.cli_flag, *([option.short] if option.short else [])]
    if option.type is bool:
        if option.default:  # a switch on by default is turned off by --no-NAME
            decls[0] = f"{option.cli_flag}/--no-{option.cli_flag[2:]}"
        return opt.parameter(name, Annotated[bool, typer.Option(*decls, help=option.help)], bool(option.default))
    if option.type is list and option.separator is None:
        kind: Any = list[str] | None
    else:
        kind = {int: int, float: float, Path: Path}.get(option.type, str) | None
    return opt.parameter(name, Annotated[kind, typer.Option(*decls, help=_help(option), show_default=False)], None)


def _input_parameter(field: Input) -> inspect.Parameter:
    what = f"{field.help or field.name}: text, a file, or - for stdin." if field.file else field.help or field.name
    return opt.parameter(field.name, Annotated[str | None, typer.Option(f"--{field.name}", help=what)], None)


def signature(task: Task) -> list[inspect.Parameter]:
    head, *rest = task.inputs
    text_help = f"{head.help or 'The text'}; read from stdin when omitted or '-'."
    params = [option_parameter(o) for o in task.options if o.argument]
    text = Annotated[str | None, typer.Argument(help=text_help, show_default=False)]
    params.append(opt.parameter(head.name, text, None))
    params += [_input_parameter(i) for i in rest]
    params += [option_parameter(o) for o in task.options if not o.argument]
    return [*params, *opt.shared(COMMON, batch_size=task.batch_size)]


def task_command(task: Task):
    """A function Typer turns into ``nlpsuite TASK``."""
    return opt.generated_command(task.name, task.description, signature(task), lambda given: run_command(task, given))


def run_command(task: Task, given: dict) -> None:
    head, *rest = task.inputs
    text = given[head.name]
    shared = {i.name: text_or_file(given[i.name], i) for i in rest if given[i.name] is not None}
    # a switch left off is not given (its default stands), unless it turns off one that is on by default
    chosen = {
        o.name: text_or_file(given[o.name], o)
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
    layout = Layout(given["text_column"], given["output_prefix"], given["on_error"])
    if not batch and (layout != Layout() or given["wait"]):
        raise NlpsuiteError("--text-column, --output-prefix, --on-error and --wait are for batch mode: give --input")
    pool = opt.ray_pool(given["ray"], given["workers"], given["model"], given["device"], given["precision"])
    if pool:  # the actors load the model; this process only reads and writes records
        _run_on_ray(task, pool, given, shared, options, layout)
        return
    quiet = given["quiet"]
    if batch:
        _run_batch(task, opt.open_suite(given["model"], given["device"], given["precision"], quiet, load=False),
                   given, shared, options, layout)  # fmt: skip
        return
    value = opt.read_text(text, what=head.name, file=given["file"], stdin_taken="-" in shared)
    suite = opt.open_suite(given["model"], given["device"], given["precision"], quiet)
    from .progress import progress_bar
    from .render import show

    streamed = task.stream and not given["json"]
    extra = {"on_text": _write} if streamed else {}
    with progress_bar(task.progress_label or task.name, quiet) as advance:
        suite.progress = advance
        (result,) = task.run(suite, task.records(value, shared).records, **options, **extra)
    if given["json"]:
        said = getattr(suite, "warnings", None)  # a stand-in suite (tests, other front-ends) may say nothing
        opt.print_json({**result, "warnings": said} if said else result)
    elif streamed:
        sys.stdout.write("\n")
    else:
        show(result, task.value, quiet)
    if result.get("finish_reason") == "interrupted":
        raise Interrupted("the text above is as far as it got")


def _write(_row: int, delta: str) -> None:
    sys.stdout.write(delta)
    sys.stdout.flush()


def _run_batch(task: Task, suite, given: dict, shared: dict, options: dict, layout: Layout) -> None:
    from .. import batch
    from .batch import run_batch

    def process(records: list[dict]) -> list[dict]:
        return batch.run_records(task, opt.loaded(suite), records, shared, options, layout)

    output = given["output"]
    summary = run_batch(
        Path(given["input"]),
        output,
        process,
        layout.added(batch.output_names(task)),
        layout,
        given["batch_size"],
        given["quiet"],
        task.progress_label or task.name,
        force=given["force"],
        wait=given["wait"],
    )
    _summary(task, given, options, summary, suite.source.key, layout)


def _summary(task: Task, given: dict, options: dict, summary, model: str, layout: Layout) -> None:
    """What a batch run says at its end: records skipped (on stderr), and with --json its summary on stdout."""
    if summary.skipped:
        opt.err(f"skipped {summary.skipped} of {summary.written} records: each holds an '{layout.error_field}' field")
    output = given["output"]
    if given["json"] and str(output) != "-":
        arguments = {o.name: options[o.name] for o in task.options if o.argument}
        report = {"output": str(output), "written": summary.written, "skipped": summary.skipped, "model": model}
        opt.print_json({**report, **arguments})


def _run_on_ray(task: Task, pool, given: dict, shared: dict, options: dict, layout: Layout) -> None:
    from .. import distributed
    from .progress import progress_bar

    with progress_bar(task.progress_label or task.name, given["quiet"], transient=False) as bar:
        summary = distributed.run_task(
            task, given["input"], given["output"], pool, shared, options, given["batch_size"], given["force"], bar,
            layout=layout, wait=given["wait"],
        )  # fmt: skip
    _summary(task, given, options, summary, pool.model_key(), layout)


def chosen_options(options, given: dict) -> dict:
    """The options given to a command whose parameters are ``option_NAME`` (eval, calibrate, tune): a file option's
    value read as the task's own command reads it (extract's --schema FILE)."""
    return {
        o.name: text_or_file(given[f"option_{o.name}"], o) for o in options if given[f"option_{o.name}"] is not None
    }


def text_or_file(value, field: Input | Option):
    """A later input given once, or an option: its text, or for a file input (option) a UTF-8 file's contents or
    stdin ('-')."""
    if not field.file or not isinstance(value, str):
        return value
    if value == "-":
        return opt.read_text(None, what=field.name)
    if len(value) > 1024 or "\n" in value:
        return value  # text, not a path
    try:
        path = Path(value)
        if path.is_file():
            return opt.read_utf8(path)
        missing = path.suffix in (".txt", ".md", ".json", ".lark", ".gbnf") and not path.exists()
    except (OSError, ValueError):  # e.g. a sentence longer than a file name may be
        return value
    if missing:
        raise NlpsuiteError(f"cannot read {value}: no such file")
    return value
