"""`nlpsuite train`: language models trained from scratch and exported as backbones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import NlpsuiteError
from . import options as opt

# Per-architecture defaults for the options left unset: small enough to train in minutes on 2 CPU cores.
DEFAULTS = {
    "ngram": {"order": 5},
    "rnn": {"hidden": 256, "layers": 2, "lr": 3e-3, "batch_size": 32},
    "lstm": {"hidden": 256, "layers": 2, "lr": 3e-3, "batch_size": 32},
    "gru": {"hidden": 256, "layers": 2, "lr": 3e-3, "batch_size": 32},
    "transformer": {"hidden": 128, "layers": 4, "lr": 3e-3, "batch_size": 16},
}


def train(
    corpus: Annotated[Path, typer.Argument(help="A UTF-8 text file to learn from.")],
    arch: Annotated[str, typer.Option("--arch", help="ngram | rnn | lstm | gru | transformer.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model (usable as --model OUT).")],
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="char | bpe (trained on the corpus).")] = "char",
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="BPE vocabulary size.")] = 1024,
    order: Annotated[int | None, typer.Option("--order", help="n-gram order (default 5).")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Most passes over the training text.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed for initialization, batch order and dropout.")] = 0,
    hidden: Annotated[int | None, typer.Option("--hidden", help="Hidden size (default 256; transformer 128).")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Layers (default 2; transformer 4).")] = None,
    heads: Annotated[int, typer.Option("--heads", help="Transformer attention heads.")] = 4,
    context: Annotated[int, typer.Option("--context", help="Tokens per training window (and eval window).")] = 128,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Windows per step (32; transformer 16).")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="AdamW learning rate (default 3e-3).")] = None,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout probability.")] = 0.0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Held-out tail of the corpus.")] = 0.1,
    patience: Annotated[int, typer.Option("--patience", help="Stop after this many epochs without progress.")] = 3,
    save_every: Annotated[float, typer.Option("--save-every", help="Seconds between checkpoints.")] = 60.0,
    restart: Annotated[bool, typer.Option("--restart", help="Discard OUT's checkpoint and start over.")] = False,
    json: opt.Json = False,
    quiet: opt.Quiet = False,
) -> None:
    """Train a language model on CORPUS and export it to OUT; rerun the same command to resume."""
    from ..train.config import TrainConfig
    from ..train.run import train as run_training
    from .progress import training_reporter

    if arch not in DEFAULTS:
        raise NlpsuiteError(f"unknown architecture {arch!r}: choose one of {', '.join(DEFAULTS)}")
    given = {"order": order, "hidden": hidden, "layers": layers, "lr": lr, "batch_size": batch_size}
    chosen = {k: v for k, v in given.items() if v is not None}
    config = TrainConfig(
        arch=arch,
        tokenizer=tokenizer,
        vocab_size=vocab_size,
        epochs=epochs,
        seed=seed,
        heads=heads,
        context=context,
        dropout=dropout,
        val_fraction=val_fraction,
        patience=patience,
        save_every_s=save_every,
        **{**DEFAULTS[arch], **chosen},
    )
    result = run_training(config, corpus, out, training_reporter(quiet), restart=restart)
    if json:
        opt.print_json(result)
        return
    print(
        f"{result['arch']}: validation perplexity {result['val_perplexity']:.2f} "
        f"({result['val_loss']:.4f} nats/token, {result['val_bits_per_char']:.3f} bits/char), "
        f"{result['params']:,} parameters, saved to {result['out']}"
    )
    if not quiet:
        opt.err(f"[dim]try: nlpsuite generate --model {result['out']} --raw 'Some text' --max-tokens 100[/dim]")
