"""Built-in plugin: `nlpsuite eval` (score a task on labelled data) and `nlpsuite calibrate`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from nlpsuite import records
from nlpsuite.cli import options as opt
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl

TASK_HELP = "translation | summarization | qa | sentiment | classification | retrieval | lm"
Task = Annotated[str, typer.Argument(help=TASK_HELP)]
Data = Annotated[Path, typer.Argument(help="Labelled data: .jsonl, .csv or .tsv with named columns (lm: a text file).")]
Limit = Annotated[int | None, typer.Option("--limit", help="Use only the first N examples (lm: lines).")]
Head = Annotated[str | None, typer.Option("--head", help="Classification: a trained probe head by name.")]
Bins = Annotated[int, typer.Option("--bins", help="Confidence bins for ECE and the reliability diagram.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Examples run together.")]


class _ProgressBar:
    """A rich progress bar on stderr (stdout stays clean for --json), shown from the first ``start(total)``
    call on, so that errors in the input come before any bar; it vanishes when the work ends."""

    def __init__(self, quiet: bool, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        self.progress = Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=True)
        self.started = False

    def start(self, total: int):
        """Show the bar for ``total`` steps (0: unknown) and return its ``advance(n)``."""
        self.progress.start()
        self.started = True
        task = self.progress.add_task("", total=total or None)
        return lambda n: self.progress.update(task, advance=n)

    def follow(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` (for work that reports where it is rather than steps)."""
        if not self.started:
            self.progress.start()
            self.started = True
            self.task = self.progress.add_task("", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            self.progress.stop()


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


def eval_command(
    task: Task,
    data: Data,
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    json_out: opt.Json = False,
    quiet: opt.Quiet = False,
    limit: Limit = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")] = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Keep each prediction in this JSONL file; an interrupted run resumes."),
    ] = None,
    batch_size: BatchSize = 8,
    to: Annotated[str | None, typer.Option("--to", help="Translation: the references' language.")] = None,
    source_lang: Annotated[str | None, typer.Option("--from", help="Translation: the sources' language.")] = None,
    max_words: Annotated[int | None, typer.Option("--max-words", help="Summarization: summary length.")] = None,
    head: Head = None,
    docs: Annotated[Path | None, typer.Option("--docs", help="Retrieval: JSONL of documents ('id', 'text').")] = None,
    k: Annotated[int, typer.Option("--k", help="Retrieval: rank cut-off for recall@k, MRR and nDCG@k.")] = 10,
    window: Annotated[int | None, typer.Option("--window", help="lm: tokens per window (default 512).")] = None,
    stride: Annotated[int | None, typer.Option("--stride", help="lm: tokens a window moves (default: half).")] = None,
    reliability: Annotated[
        Path | None,
        typer.Option("--reliability", help="Sentiment/classification: the reliability diagram PNG to write."),
    ] = None,
    bins: Bins = 10,
) -> None:
    """Score a task on labelled data: BLEU/chrF, ROUGE, EM/F1, accuracy/F1/ECE, recall/MRR/nDCG or perplexity."""
    from nlpsuite import evaluation

    if task in ("sentiment", "classification") and reliability is None:
        reliability = output.with_suffix(".png") if output else Path(f"{task}-reliability.png")
    options = evaluation.Options(
        to=to,
        source_lang=source_lang,
        max_words=max_words,
        head=head,
        docs=docs,
        k=k,
        window=window,
        stride=stride,
        reliability=reliability,
        bins=bins,
    )
    evaluation.check_options(task, options)
    if task == "lm" and predictions is not None:
        raise NlpsuiteError("--predictions keeps per-example predictions: lm has none")

    def open_suite():
        return opt.open_suite(model, device, precision, quiet)

    with _ProgressBar(quiet, f"evaluating {task}") as bar:
        if task == "lm":
            report = evaluation.evaluate_lm(data, open_suite, options, limit, bar.follow)
        else:
            done = _load_predictions(predictions)
            with _appender(predictions) as keep:
                report = evaluation.evaluate(
                    task, data, open_suite, options, limit, batch_size, bar.start, done=done, on_batch=keep
                )
    if output is not None:
        from nlpsuite.fsutil import write_json_atomic

        write_json_atomic(output, report)
    if json_out:
        opt.print_json(report)
    else:
        _print_report(report)


@contextlib.contextmanager
def _appender(path: Path | None):
    """``keep(inputs, predictions)`` appends durable ``{"input", "prediction"}`` lines to ``path``."""
    if path is None:
        yield None
        return
    with records.appender(path) as append:
        yield lambda inputs, new: append({"input": i, "prediction": p} for i, p in zip(inputs, new, strict=True))


def calibrate(
    task: Annotated[str, typer.Argument(help="sentiment | classification")],
    data: Annotated[Path, typer.Argument(help="Labelled data: .jsonl, .csv or .tsv with 'text' and 'label'.")],
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    json_out: opt.Json = False,
    quiet: opt.Quiet = False,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated labels (default: the task's, or the data's).")
    ] = None,
    head: Head = None,
    holdout: Annotated[float, typer.Option("--holdout", help="Share of the data held out to measure on.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fit/held-out split.")] = 0,
    limit: Annotated[int | None, typer.Option("--limit", help="Use only the first N examples.")] = None,
    batch_size: BatchSize = 8,
    bins: Bins = 10,
) -> None:
    """Fit temperature scaling (and a label bias) on labelled data; later sentiment/classify runs use it."""
    from nlpsuite import evaluation

    label_list = [label.strip() for label in labels.split(",")] if labels is not None else None

    def open_suite():
        return opt.open_suite(model, device, precision, quiet)

    with _ProgressBar(quiet, f"scoring {task}") as bar:
        result = evaluation.calibrate(
            task, data, open_suite, label_list, head, holdout, seed, batch_size, bins, progress=bar.start, limit=limit
        )
    if json_out:
        opt.print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{task}: fitted on {result['n_fit']} examples, measured on {result['n_heldout']} held out", highlight=False
    )
    table = Table()
    for column in ("held out", "before", "after"):
        table.add_column(column, justify="right" if column != "held out" else "left")
    for metric in ("ece", "accuracy", "nll"):
        table.add_row(metric, _number(result["before"][metric]), _number(result["after"][metric]))
    console.print(table)
    bias = "" if result["bias"] is None else ", bias " + ", ".join(f"{b:+.3f}" for b in result["bias"])
    console.print(
        f"{result['method']}: temperature {result['temperature']:.3f}{bias} (labels: {', '.join(result['labels'])})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"saved to {result['saved']}", highlight=False, soft_wrap=True)


@hookimpl
def register_commands(register):
    register(eval_command, name="eval")
    register(calibrate)
