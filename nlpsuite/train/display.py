"""Progress of a training run: a step bar and a table of loss and perplexity per epoch (rich, on stderr)."""

from __future__ import annotations

import math


def _ppl(loss: float) -> str:
    return f"{math.exp(loss):.2f}" if loss < 50 else "inf"


class Reporter:
    """Silent by default; the CLI's RichReporter shows what happens."""

    def start(self, info: dict) -> None: ...

    def step(self, epoch: int, batch: int, batches: int, loss: float) -> None: ...

    def epoch(self, record: dict) -> None: ...

    def note(self, message: str) -> None: ...

    def close(self) -> None: ...


class RichReporter(Reporter):
    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.live = None

    def start(self, info: dict) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        resumed = f", resuming at step {info['resumed_from_step']}" if info.get("resumed_from_step") else ""
        self.console.print(
            f"[bold]{info['arch']}[/bold]: {info['params']:,} parameters, {info['train_tokens']:,} training and "
            f"{info['val_tokens']:,} validation tokens ({info['tokenizer']}, vocabulary {info['vocab_size']}){resumed}"
        )
        self.table = Table("epoch", "train loss", "train ppl", "val loss", "val ppl", "lr", "time", "")
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task = self.progress.add_task("train", total=info["steps_per_epoch"], epoch=1, loss="-")
        self.live = Live(Group(self.table, self.progress), console=self.console, refresh_per_second=4)
        self.live.start()

    def step(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        self.progress.update(self.task, completed=batch, total=batches, epoch=epoch + 1, loss=f"{loss:.3f}")

    def epoch(self, record: dict) -> None:
        self.table.add_row(
            str(record["epoch"]),
            f"{record['train_loss']:.4f}",
            _ppl(record["train_loss"]),
            *(
                ("-", "-")
                if math.isnan(record["val_loss"])
                else (f"{record['val_loss']:.4f}", _ppl(record["val_loss"]))
            ),
            f"{record['lr']:.2g}",
            f"{record['seconds']:.0f}s",
            "best" if record["best"] else "",
        )
        self.progress.update(self.task, completed=0)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{message}[/dim]")

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self.table, refresh=True)  # the finished table stays, the step bar goes
            self.live.stop()
            if not self.console.is_terminal:
                self.console.line()
            self.live = None
