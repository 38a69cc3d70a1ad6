"""What the built-in plugins' tests share: the tiny random model with room for the tasks' prompts, and scripted
models for the span head."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_cases import NULL_REPLY

from nlpsuite.api import Suite


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_tiny_llama):
    """The tiny random model with room for the tasks' prompts (few-shot examples, long contexts)."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-tasks"), context=4096)


@pytest.fixture
def suite(tiny):
    return Suite(model=str(tiny), device="cpu")


@pytest.fixture
def spans_only(monkeypatch):
    """Keeps the null out of the running where span mechanics are tested: the random model may prefer it."""
    from nlpsuite.heads import span

    monkeypatch.setattr(span, "NULL_PRIOR", -1e9)


@pytest.fixture
def null_likelier(monkeypatch):
    """Scripts a model sure of the null reply: the span head's null candidate is certain, and a generated answer
    ("Paris") is far less likely to the scorer than the null reply."""
    from nlpsuite.heads.scoring import LabelScorer
    from nlpsuite.heads.span import SpanHead
    from nlpsuite.runtime.generation import Generator
    from nlpsuite.runtime.sequence import Completion

    # raising=False: before the null candidate existed, this scripted nothing and the span won
    monkeypatch.setattr(SpanHead, "_null_logp", lambda self, step, past: 0.0, raising=False)
    monkeypatch.setattr(
        Generator, "generate", lambda self, prompts, params, on_text=None: [Completion("Paris", [], 0, "stop")]
    )
    scripted = {NULL_REPLY: -1.0, "Paris": -30.0}
    monkeypatch.setattr(
        LabelScorer, "log_likelihoods", lambda self, ids, labels, prefix=None: np.array([scripted[x] for x in labels])
    )


@pytest.fixture
def model_args(tiny):
    return ["--model", str(tiny), "--device", "cpu", "-q"]
