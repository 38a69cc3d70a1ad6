"""`nlpsuite eval NAME DATA`: one subcommand per task with an eval recipe, plus `lm`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from .. import records
from ..errors import Interrupted, NlpsuiteError
from ..eval import run as evaluation
from ..plugins import registry
from . import options as opt
from .progress import progress_bar
from .taskcommand import chosen_options, option_parameter

Data = Annotated[Path, typer.Argument(help="Labelled data: .jsonl, .csv, .tsv or .parquet with named columns.")]
Limit = Annotated[int | None, typer.Option("--limit", help="Use only the first N examples (lm: lines).")]
Head = Annotated[str | None, typer.Option("--head", help="A trained probe head by name.")]
Bins = Annotated[int, typer.Option("--bins", help="Confidence bins for ECE and the reliability diagram.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Examples run together.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")]
Predictions = Annotated[
    Path | None,
    typer.Option("--predictions", help="Keep each prediction in this JSONL file; an interrupted run resumes."),
]


class _ByEvalName(TyperGroup):
    """Subcommands by eval name; a task's own name works too."""

    def get_command(self, ctx, name):
        found = super().get_command(ctx, name)
        if found is None and name in registry().tasks and registry().tasks[name].eval:
            found = super().get_command(ctx, registry().tasks[name].eval.name)
        return found


def _unknown(name: str) -> None:
    evaluation.find(registry().tasks, name)  # raises the one-line error naming the choices


def eval_app() -> typer.Typer:
    """`nlpsuite eval`: a subcommand for every task that declares an eval recipe, and `lm`."""
    app = typer.Typer(
        cls=opt.task_group(_unknown, _ByEvalName),
        no_args_is_help=True,
        help="Score a task on labelled data: BLEU/chrF, ROUGE, EM/F1, accuracy/F1/ECE, recall/MRR/nDCG or perplexity.",
    )
    for name, task in evaluation.recipes(registry().tasks).items():
        app.command(name)(_task_command(task))
    app.command(evaluation.LM)(eval_lm)
    return app


def _task_command(task):
    options = evaluation.eval_options(task)
    params = [opt.parameter("data", Data), *opt.shared(opt.SUITE_PARAMS)]
    params += [opt.parameter(n, a, d) for n, a, d in (("limit", Limit, None), ("output", Output, None))]
    params += [opt.parameter("predictions", Predictions, None), opt.parameter("batch_size", BatchSize, 8)]
    params += [option_parameter(o, f"option_{o.name}") for o in options]

    def command(given: dict) -> None:
        chosen = chosen_options(options, given)
        if "reliability" in {o.name for o in options} and chosen.get("reliability") is None:
            out = given["output"]
            chosen["reliability"] = out.with_suffix(".png") if out else Path(f"{task.eval.name}-reliability.png")
        checked = evaluation.check_options(task, chosen)
        done = _load_predictions(given["predictions"])
        with (
            progress_bar(f"evaluating {task.eval.name}", given["quiet"]) as bar,
            _appender(given["predictions"]) as keep,
            _resumable(given["predictions"]),
        ):
            report = evaluation.evaluate(
                task,
                given["data"],
                opt.opener(given),
                checked,
                given["limit"],
                given["batch_size"],
                bar,
                done=done,
                on_batch=keep,
            )
        _report(report, given["output"], given["json"])

    doc = f"Score {task.name} on labelled data ({', '.join(task.eval.columns.values())}, {task.eval.gold})."
    return opt.generated_command(task.eval.name, doc, params, command)


def eval_lm(
    data: Annotated[Path, typer.Argument(help="A UTF-8 text file.")],
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    json_out: opt.Json = False,
    quiet: opt.Quiet = False,
    limit: Limit = None,
    output: Output = None,
    predictions: Predictions = None,
    window: Annotated[int | None, typer.Option("--window", help="Tokens per window (default 512).")] = None,
    stride: Annotated[int | None, typer.Option("--stride", help="Tokens a window moves (default: half).")] = None,
) -> None:
    """Cross-entropy (nats/token), perplexity and bits/char of the model on a text file."""
    if predictions is not None:
        raise NlpsuiteError("--predictions keeps per-example predictions: lm has none")

    suite = opt.opener({"model": model, "device": device, "precision": precision, "quiet": quiet})
    with progress_bar("evaluating lm", quiet) as bar:
        report = evaluation.evaluate_lm(data, suite, window, stride, limit, bar)
    _report(report, output, json_out)


def _report(report: dict, output: Path | None, json_out: bool) -> None:
    if output is not None:
        from ..fsutil import write_json_atomic

        write_json_atomic(output, report)
    if json_out:
        opt.print_json(report)
    else:
        _print_report(report)


def _number(value) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"


def _print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metrics = report["metrics"]
    unit = "tokens scored" if report["task"] == "lm" else "examples"
    console.print(f"{report['task']}: {report['n']} {unit}", highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    k = metrics.get("k")
    for name, value in metrics.items():
        if name in (f"recall@{k}", f"ndcg@{k}"):  # the same numbers as recall@k and ndcg@k
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            table.add_row(name, _number(value))
    console.print(table)
    if "per_class" in metrics:
        per = Table(title="per class")
        for column in ("label", "precision", "recall", "f1", "support"):
            per.add_column(column, justify="left" if column == "label" else "right")
        for label, row in metrics["per_class"].items():
            per.add_row(label, *(_number(row[c]) for c in ("precision", "recall", "f1", "support")))
        console.print(per)
        confusion = metrics["confusion_matrix"]
        console.print("confusion matrix (rows: gold labels, columns: predicted)", highlight=False)
        grid = Table()
        grid.add_column("")
        for label in confusion["labels"]:
            grid.add_column(label, justify="right")
        for label, row in zip(confusion["labels"], confusion["matrix"], strict=True):
            grid.add_row(label, *map(str, row))
        console.print(grid)
    for name, signature in metrics.get("signature", {}).items():
        console.print(f"{name} signature: {signature}", highlight=False, soft_wrap=True)
    if "reliability_png" in metrics:
        console.print(f"reliability diagram: {metrics['reliability_png']}", highlight=False, soft_wrap=True)


def _load_predictions(path: Path | None) -> list[dict]:
    """Records an interrupted run already wrote (a torn last line is cut off)."""
    return [] if path is None else records.completed_records(path)


@contextlib.contextmanager
def _resumable(path: Path | None):
    """Ctrl-C says where the predictions made so far are kept and how to resume, or how to keep them next time."""
    try:
        yield
    except Interrupted as stopped:
        if path is None:
            raise Interrupted(
                "no prediction was kept; --predictions FILE keeps them, so that a rerun resumes"
            ) from None
        raise Interrupted(f"{stopped} kept in {path}: run the same command to resume") from None


@contextlib.contextmanager
def _appender(path: Path | None):
    """``keep(inputs, predictions)`` appends durable ``{"input", "prediction"}`` lines to ``path``."""
    if path is None:
        yield None
        return
    with records.appender(path) as append:
        yield lambda inputs, new: append({"input": i, "prediction": p} for i, p in zip(inputs, new, strict=True))
