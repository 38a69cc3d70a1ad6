"""`nlpsuite tune TASK DATA`: a subcommand per task that declares how it is trained (nlpsuite.tasks.Tune), with
the task's own options; LoRA on the user's examples, kept as catalog model BASE+tuned-NAME when not worse."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from ..errors import NlpsuiteError
from ..plugins import registry
from . import options as opt
from .progress import training_reporter
from .taskcommand import chosen_options, option_parameter

Data = Annotated[Path, typer.Argument(help="Records in the task's batch format (.jsonl, .csv, .tsv, .parquet), each "
                                           "with the gold output field.")]  # fmt: skip
COMMON = (
    ("data", Data, inspect.Parameter.empty),
    ("model", opt.Model, None),
    ("device", opt.Device, "auto"),
    ("json_out", opt.Json, False),
    ("quiet", opt.Quiet, False),
    ("name", Annotated[str | None, typer.Option("--name", help="The tuned model is BASE+tuned-NAME (default: the "
                                                "data file's name).")], None),  # fmt: skip
    ("epochs", Annotated[int, typer.Option("--epochs", help="Passes over the training part.")], 2),
    ("lr", Annotated[float, typer.Option("--lr", help="AdamW learning rate of the adapters.")], 3e-4),
    ("rank", Annotated[int, typer.Option("--rank", help="LoRA rank.")], 8),
    ("alpha", Annotated[float, typer.Option("--alpha", help="LoRA alpha (the adapters are scaled by alpha/rank).")],
     16.0),
    ("batch_size", Annotated[int, typer.Option("--batch-size", help="Examples per step.")], 8),
    ("holdout", Annotated[float, typer.Option("--holdout", help="Share of the records held out to compare on.")],
     0.25),
    ("seed", Annotated[int, typer.Option("--seed", help="Seed of the split, the adapters and the batch order.")], 0),
    ("limit", Annotated[int | None, typer.Option("--limit", help="Use only the first N records.")], None),
    ("save_every", Annotated[float, typer.Option("--save-every", help="Seconds between checkpoints.")], 60.0),
    ("restart", Annotated[bool, typer.Option("--restart", help="Discard the run's checkpoint and start over.")],
     False),
)  # fmt: skip


def _unknown(name: str) -> None:
    names = sorted(t.name for t in registry().tasks.values() if t.tune)
    raise NlpsuiteError(f"tune works on {', '.join(names)}, not {name!r}")


def tune_app() -> typer.Typer:
    app = typer.Typer(
        cls=opt.task_group(_unknown), no_args_is_help=True, help="Fine-tune the model for a task on your own examples."
    )
    for task in registry().tasks.values():
        if task.tune is not None:
            app.command(task.name)(_command(task))
    return app


def _command(task):
    options = [o for o in task.options if o.name != "index"]
    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in COMMON]
    params += [option_parameter(o, f"option_{o.name}") for o in options]

    def command(**given) -> None:
        from ..modelstore.resolve import resolve
        from ..train.tune import TuneConfig, tune, tuned_name

        chosen = chosen_options(options, given)
        checked = task.check_options(chosen, {}, batch=True)
        cfg = TuneConfig(given["epochs"], given["lr"], given["rank"], given["alpha"], given["batch_size"],
                         given["holdout"], given["seed"], given["limit"], given["save_every"])  # fmt: skip
        name = tuned_name(resolve(given["model"], registry().models).key, given["name"], given["data"])

        def open_suite(model):
            return opt.open_suite(model, given["device"], "fp32", given["quiet"])

        say = (lambda _m: None) if given["quiet"] else opt.err
        reporter = training_reporter(given["quiet"])
        result = tune(
            task, given["data"], checked, cfg, open_suite, given["model"], name, reporter, say, given["restart"]
        )
        if given["json_out"]:
            opt.print_json(result)
            return
        metric = result["metric"]
        print(f"{task.name}: {metric} {result['before'][metric]:.4g} -> {result['after'][metric]:.4g} on "
              f"{result['n_heldout']} held-out examples; saved as {result['model']}")  # fmt: skip
        if not given["quiet"]:
            opt.err(f"[dim]try: nlpsuite {task.name} --model {result['model']} ...[/dim]")

    command.__doc__ = f"Fine-tune the model for {task.name} on records with the gold '{task.tune.gold}' field."
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
