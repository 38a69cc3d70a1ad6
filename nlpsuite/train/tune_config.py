"""What a tuning run is (its settings) and where it keeps its files: shared by the run and its training loop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..errors import NlpsuiteError


@dataclass
class TuneConfig:
    epochs: int = 2
    lr: float = 3e-4
    rank: int = 8
    alpha: float = 16.0
    batch_size: int = 8
    holdout: float = 0.25
    seed: int = 0
    limit: int | None = None
    save_every_s: float = 60.0

    def check(self) -> None:
        for name in ("epochs", "rank", "batch_size"):
            if getattr(self, name) < 1:
                raise NlpsuiteError(f"--{name.replace('_', '-')} must be at least 1")
        if not 0 < self.holdout < 1:
            raise NlpsuiteError("--holdout must be between 0 and 1 (the share of the data held out)")
        if not self.lr > 0 or not self.alpha > 0:
            raise NlpsuiteError("--lr and --alpha must be positive")
        if self.limit is not None and self.limit < 2:
            raise NlpsuiteError("--limit must be at least 2")


def workdir(name: str) -> Path:
    return config.home() / "tuning" / name


def tuned_dir(name: str) -> Path:
    return config.home() / "tuned" / name


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))
