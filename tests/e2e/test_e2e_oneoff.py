"""One-off label-task calls on the real default model: what they compute from the model alone is done once."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture
def fed(real_home, monkeypatch):
    """A fresh Suite whose forward passes are counted: the number of tokens each one was fed."""
    os.environ["NLPSUITE_HOME"] = str(real_home)
    from nlpsuite import Suite

    suite = Suite(device="cpu")
    counts: list[int] = []
    forward = suite.backbone.forward

    def counting(ids, *args, **kwargs):
        counts.append(ids.shape[0] * ids.shape[1])
        return forward(ids, *args, **kwargs)

    monkeypatch.setattr(suite.backbone, "forward", counting)
    return suite, counts


def test_sentiment_reads_its_few_shot_examples_once_per_model(fed):
    from nlpsuite_plugins.classify import LabelTasks

    suite, counts = fed
    first = LabelTasks(suite).sentiment_scores(["a lovely little film."])
    counts.clear()  # a new process: a fresh LabelTasks on the same cached model
    again = LabelTasks(suite).sentiment_scores(["a lovely little film."])
    assert sum(counts) < 20, counts  # only the text's own prompt, after the cached prefix
    np.testing.assert_allclose(again, first, atol=1e-4)
