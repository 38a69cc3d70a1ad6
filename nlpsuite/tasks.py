"""What a task is: a named job with a head, prompts and the code that runs it on a Suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    head: str  # the registered head it runs on, e.g. "generation"
    run: Callable[..., Any]  # run(suite, input, **options)
    prompts: dict[str, str] = field(default_factory=dict)
    # For label tasks: scores(suite, texts, labels=None, head=None) -> (label names, raw scores [n, labels]),
    # the scores before temperature scaling, which `nlpsuite calibrate` fits on.
    scores: Callable[..., Any] | None = None
