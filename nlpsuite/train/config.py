"""What a training run is: its settings, and which of them a resumed run must share with the first."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import NlpsuiteError
from . import ARCHS, TOKENIZERS

# A rerun may change these and still resume: they only decide how long training goes on.
RESUMABLE_CHANGES = ("epochs", "patience", "save_every_s")


@dataclass
class TrainConfig:
    arch: str
    tokenizer: str = "char"
    vocab_size: int = 1024  # bpe only
    order: int = 5  # ngram only
    epochs: int = 10
    seed: int = 0
    hidden: int = 256
    layers: int = 2
    heads: int = 4  # transformer only
    context: int = 128
    batch_size: int = 32
    lr: float = 3e-3
    dropout: float = 0.0
    weight_decay: float = 0.01
    clip: float = 1.0
    val_fraction: float = 0.1
    patience: int = 3
    save_every_s: float = 60.0

    def check(self) -> None:
        if self.arch not in ARCHS:
            raise NlpsuiteError(f"unknown architecture {self.arch!r}: choose one of {', '.join(ARCHS)}")
        if self.tokenizer not in TOKENIZERS:
            raise NlpsuiteError(f"unknown tokenizer {self.tokenizer!r}: choose char or bpe")
        for name in ("epochs", "hidden", "layers", "heads", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise NlpsuiteError(f"--{name.replace('_', '-')} must be at least 1")
        if self.context < 2:
            raise NlpsuiteError("--context must be at least 2 tokens")
        if not 0 < self.val_fraction < 1:
            raise NlpsuiteError("--val-fraction must be between 0 and 1")
        if not 0 <= self.dropout < 1:
            raise NlpsuiteError("--dropout must be in [0, 1)")
        if self.lr <= 0:
            raise NlpsuiteError("--lr must be positive")
        if self.arch == "transformer" and self.hidden % self.heads:
            raise NlpsuiteError("--hidden must be a multiple of --heads")

    def identity(self) -> dict:
        """The settings a checkpoint is only valid for."""
        return {k: v for k, v in asdict(self).items() if k not in RESUMABLE_CHANGES}
