"""Generation for one caller at a time: the prompts of a call decode as one batch (the CLI, ``Suite``, the REPL).

The loop itself is batching.py's (the server's engine steps the same one); it never looks inside the state,
so it drives transformers (KV cache) and recurrent backbones (hidden/cell state) alike. Greedy rows on a KV
cache also feed tokens guessed from their prompt (drafting.py) and keep those the model would have chosen
itself, so a step may yield several.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import NlpsuiteError
from .backbone import Backbone
from .batching import PREFILL_CHUNK, DecodeBatch
from .prompt_cache import PromptCache
from .sampling import SamplingParams
from .sequence import Completion, Constraint, OnText
from .tokenizer import Tokenizer


class Decoder(Protocol):
    """What the generation head decodes with: ``Generator`` here, the server's engine there."""

    def generate(
        self,
        prompts: list[list[int]],
        params: SamplingParams,
        on_text: OnText | None = None,
        constraints: list[Constraint | None] | None = None,
    ) -> list[Completion]:
        """One completion per token-id prompt; ``on_text(index, delta)`` gets each prompt's text as it is final;
        ``constraints``: one per prompt (or None), what its output must match."""


class Generator:
    """Generates continuations of token-id prompts on one backbone, reusing the prompt cache's prefixes."""

    def __init__(
        self,
        backbone: Backbone,
        tokenizer: Tokenizer,
        cache: PromptCache | None = None,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.cache = cache
        self.prefill_chunk = prefill_chunk

    def generate(
        self,
        prompts: list[list[int]],
        params: SamplingParams,
        on_text: OnText | None = None,
        constraints: list[Constraint | None] | None = None,
    ) -> list[Completion]:
        if not prompts:
            raise NlpsuiteError("empty prompt")
        batch = DecodeBatch(self.backbone, self.tokenizer, self.cache, self.prefill_chunk)
        rows = [
            batch.sequence(prompt, params, constraint)
            for prompt, constraint in zip(prompts, constraints or [None] * len(prompts), strict=True)
        ]
        index = {id(row): i for i, row in enumerate(rows)}
        batch.add(rows)
        try:
            while batch.size:
                for row, delta in batch.step():
                    if delta and on_text:
                        on_text(index[id(row)], delta)
        except KeyboardInterrupt:
            if on_text is None:  # nobody is watching a stream: Ctrl-C stops the whole command, nothing half-done
                raise
            for i, row in enumerate(rows):  # a streamed reply keeps what was shown (the REPL stays in chat)
                if delta := row.finish("interrupted"):
                    on_text(i, delta)
        return [row.completion() for row in rows]
