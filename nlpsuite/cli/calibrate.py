"""`nlpsuite calibrate NAME DATA`: a subcommand per task whose score calibrate can fit (label tasks and tasks with
a confidence recipe), by eval name and by task name; `--reset` removes what was fitted."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from ..errors import NlpsuiteError
from ..eval import calibrate as calibrating
from ..eval import run as evaluation
from ..plugins import registry
from . import options as opt
from .eval import BatchSize, Bins, Head, _number
from .progress import progress_bar
from .taskcommand import chosen_options, option_parameter

Data = Annotated[
    Path | None, typer.Argument(help="Labelled data: .jsonl, .csv, .tsv or .parquet, as `nlpsuite eval` reads it.")
]
Holdout = Annotated[float, typer.Option("--holdout", help="Share of the data held out to measure on.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the fit/held-out split.")]
Limit = Annotated[int | None, typer.Option("--limit", help="Use only the first N examples.")]
Reset = Annotated[bool, typer.Option("--reset", help="Remove the saved calibration instead of fitting one.")]
Labels = Annotated[
    str | None, typer.Option("--labels", help="Comma-separated labels (default: the task's, or the data's).")
]


def _unknown(name: str) -> None:
    names = sorted(calibrating.calibrated_tasks(registry().tasks))
    raise NlpsuiteError(f"calibrate works on {', '.join(names)}, not {name!r}")


def calibrate_app() -> typer.Typer:
    app = typer.Typer(
        cls=opt.task_group(_unknown),
        no_args_is_help=True,
        help="Fit a task's scores to probabilities on labelled data; later runs of the task use them.",
    )
    for name, task in calibrating.calibrated_tasks(registry().tasks).items():
        command = _label_command(task) if task.scores is not None else _confidence_command(task)
        app.command(name)(command)
    return app


def _label_command(task):
    def command(
        data: Data = None,
        model: opt.Model = None,
        device: opt.Device = "auto",
        precision: opt.Precision = "fp32",
        json_out: opt.Json = False,
        quiet: opt.Quiet = False,
        labels: Labels = None,
        head: Head = None,
        holdout: Holdout = 0.5,
        seed: Seed = 0,
        limit: Limit = None,
        batch_size: BatchSize = 8,
        bins: Bins = 10,
        reset: Reset = False,
    ) -> None:
        label_list = [label.strip() for label in labels.split(",")] if labels is not None else None
        if reset:
            _reset(task.name, model, precision, json_out, quiet, labels=label_list, head=head)
            return
        if data is None:
            raise NlpsuiteError("give the labelled data to fit on (or --reset to remove a saved calibration)")
        given = {"model": model, "device": device, "precision": precision, "quiet": quiet}
        with progress_bar(f"scoring {task.name}", quiet) as bar:
            result = calibrating.calibrate(
                task, data, opt.opener(given), label_list, head, holdout, seed, batch_size, bins,
                progress=bar, limit=limit,
            )  # fmt: skip
        if json_out:
            opt.print_json(result)
            return
        bias = "" if result["bias"] is None else ", bias " + ", ".join(f"{b:+.3f}" for b in result["bias"])
        _print(result, f"{result['method']}: temperature {result['temperature']:.3f}{bias} "
               f"(labels: {', '.join(result['labels'])})")  # fmt: skip

    command.__doc__ = f"Fit {task.name}'s temperature (and a label bias) on labelled data (text, label)."
    return command


COMMON = (
    ("data", Data, None),
    ("model", opt.Model, None),
    ("device", opt.Device, "auto"),
    ("precision", opt.Precision, "fp32"),
    ("json_out", opt.Json, False),
    ("quiet", opt.Quiet, False),
    ("holdout", Holdout, 0.5),
    ("seed", Seed, 0),
    ("limit", Limit, None),
    ("batch_size", BatchSize, 8),
    ("bins", Bins, 10),
    ("reset", Reset, False),
)


def _confidence_command(task):
    options = [o for o in evaluation.eval_options(task) if o.name not in {o.name for o in evaluation.LABEL_OPTIONS}]
    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in COMMON]
    params += [option_parameter(o, f"option_{o.name}") for o in options]

    def command(**given) -> None:
        chosen = chosen_options(options, given)
        checked = evaluation.check_options(task, chosen)
        if given["reset"]:
            _reset(task.name, given["model"], given["precision"], given["json_out"], given["quiet"], options=checked)
            return
        if given["data"] is None:
            raise NlpsuiteError("give the labelled data to fit on (or --reset to remove a saved calibration)")
        with progress_bar(f"measuring {task.name}", given["quiet"]) as bar:
            result = calibrating.calibrate_confidence(
                task, given["data"], opt.opener(given), checked, given["holdout"], given["seed"], given["batch_size"],
                given["bins"], progress=bar, limit=given["limit"],
            )  # fmt: skip
        if given["json_out"]:
            opt.print_json(result)
            return
        _print(result, f"score: the probability that {result['meaning']}")

    names = ", ".join([*task.eval.columns.values(), task.eval.gold])
    command.__doc__ = f"Fit what {task.name}'s score means (the probability that its result is right) on ({names})."
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def _print(result: dict, fitted: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{result['task']}: fitted on {result['n_fit']} {result['rows']}, measured on {result['n_heldout']} held out",
        highlight=False,
    )
    table = Table()
    for column in ("held out", "before", "after"):
        table.add_column(column, justify="right" if column != "held out" else "left")
    for metric in ("ece", "accuracy", "nll"):
        table.add_row(metric, _number(result["before"][metric]), _number(result["after"][metric]))
    console.print(table)
    console.print(fitted, highlight=False, soft_wrap=True)
    console.print(f"saved to {result['saved']}", highlight=False, soft_wrap=True)


def _reset(task: str, model, precision: str, json_out: bool, quiet: bool, labels=None, head=None, options=None):
    from ..eval import calibration
    from ..modelstore.resolve import resolve

    key = resolve(model, registry().models).key
    if options is not None:
        from ..eval.confidence import store_name

        name = store_name(task, registry().tasks[task].confidence, options)
        removed = calibration.remove(key, precision, name, exact=True)
    else:
        removed = calibration.remove(key, precision, task, labels, head)
    if json_out:
        opt.print_json({"removed": [str(p) for p in removed]})
    elif not quiet:
        opt.err(f"removed {len(removed)} saved calibration(s) of {task}; the built-in defaults apply again")
