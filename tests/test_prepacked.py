"""The CPU copy with pre-packed weights: same numbers, reused, rebuilt when damaged, never in user folders."""

from __future__ import annotations

import shutil

import numpy as np

from nlpsuite.api import Suite
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone

IDS = np.array([[5, 17, 42, 99, 7, 3]], np.int64)


def logits(backbone):
    mask, pos = np.ones_like(IDS), np.arange(IDS.shape[1])[None]
    return backbone.forward(IDS, mask, pos, backbone.empty_state(1), num_logits=IDS.shape[1]).logits


def copies(folder):
    return sorted(p for p in folder.iterdir() if p.name.startswith("cpu-"))


def test_packed_copy_gives_the_same_logits_and_is_reused(tiny_llama):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    portable = logits(Backbone(folder, "cpu"))
    first = Backbone(folder, "cpu", packed_copy=True)
    (copy,) = copies(folder)
    stamp = (copy / "model.onnx").stat().st_mtime_ns
    second = Backbone(folder, "cpu", packed_copy=True)
    assert (copy / "model.onnx").stat().st_mtime_ns == stamp  # loaded, not rewritten
    np.testing.assert_allclose(logits(first), portable, atol=1e-5)
    np.testing.assert_allclose(logits(second), portable, atol=1e-5)


def test_a_damaged_packed_copy_is_replaced(tiny_llama):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    Backbone(folder, "cpu", packed_copy=True)
    (copy,) = copies(folder)
    with open(copy / "model.onnx.data", "r+b") as fh:
        fh.truncate(100)
    backbone = Backbone(folder, "cpu", packed_copy=True)
    assert len(copies(folder)) == 1 and (copies(folder)[0] / "files.json").exists()
    np.testing.assert_allclose(logits(backbone), logits(Backbone(folder, "cpu")), atol=1e-5)


def test_no_copy_is_written_into_a_users_converted_folder(tiny_llama):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    for copy in copies(folder):
        shutil.rmtree(copy)
    Suite(model=str(folder), device="cpu").backbone  # noqa: B018 - loading is the point
    assert copies(folder) == []
    Suite(model=str(tiny_llama), device="cpu").backbone  # noqa: B018 - our own cache entry gets one
    assert len(copies(folder)) == 1


def test_int8_models_load_the_same_every_time(tiny_llama):
    """ONNX Runtime's saved pre-packed MatMulNBits weights load wrong: int8 models must not use a packed copy."""
    folder = ensure_model(Catalog().resolve(str(tiny_llama)), "int8")
    portable = logits(Backbone(folder, "cpu"))
    for _ in range(2):  # the first load would write the copy, the second would read it
        np.testing.assert_allclose(logits(Backbone(folder, "cpu", packed_copy=True)), portable, atol=1e-5)


def test_models_over_the_size_rule_keep_no_packed_copy(tiny_llama, monkeypatch):
    """The copy doubles the weights on disk: above prepacked.MAX_WEIGHTS_BYTES it is not written, and one
    left by an earlier version is removed; the model loads from its portable files with the same numbers."""
    from nlpsuite.runtime import prepacked

    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    Backbone(folder, "cpu", packed_copy=True)
    assert len(copies(folder)) == 1
    monkeypatch.setattr(prepacked, "MAX_WEIGHTS_BYTES", 1000)
    backbone = Backbone(folder, "cpu", packed_copy=True)
    assert copies(folder) == []
    np.testing.assert_allclose(logits(backbone), logits(Backbone(folder, "cpu")), atol=1e-5)


def test_packed_copy_off_keeps_none_and_frees_an_old_one(tiny_llama, monkeypatch):
    """NLPSUITE_PACKED_COPY=0: the disk of the copy (twice the weights) back, the same numbers."""
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    Backbone(folder, "cpu", packed_copy=True)
    assert len(copies(folder)) == 1
    monkeypatch.setenv("NLPSUITE_PACKED_COPY", "0")
    backbone = Backbone(folder, "cpu", packed_copy=True)
    assert copies(folder) == []
    np.testing.assert_allclose(logits(backbone), logits(Backbone(folder, "cpu")), atol=1e-5)
