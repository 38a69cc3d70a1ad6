"""8-bit block quantization: the maths, and int8 logits staying close to fp32 on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.convert.quantize import BLOCK, dequantize_blocks, quantize_blocks
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone


def test_block_quantization_error_is_at_most_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(70, 9)).astype(np.float32)  # K not a multiple of the block size
    q, scale = quantize_blocks(w)
    assert q.shape == (9, 3, BLOCK) and scale.shape == (27,)
    back = dequantize_blocks(q, scale, 70)
    step = np.repeat(scale.reshape(9, 3), BLOCK, axis=1)[:, :70].T
    assert np.all(np.abs(back - w) <= step / 2 + 1e-6)


def test_all_zero_blocks_survive():
    q, scale = quantize_blocks(np.zeros((32, 2), np.float32))
    assert np.all(dequantize_blocks(q, scale, 32) == 0)


@pytest.mark.shared_cache
def test_int8_backbone_stays_close_to_fp32(tiny_llama):
    """'Close' on the tiny model: logits within 5% of their spread and 95% of argmaxes equal."""
    source = Catalog().resolve(str(tiny_llama))
    fp32 = Backbone(ensure_model(source, "fp32"), device="cpu")
    int8 = Backbone(ensure_model(source, "int8"), device="cpu")
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 250, size=(4, 24))
    mask, pos = np.ones_like(ids), np.tile(np.arange(24), (4, 1))
    a = fp32.forward(ids, mask, pos, fp32.empty_state(4), num_logits=24).logits
    b = int8.forward(ids, mask, pos, int8.empty_state(4), num_logits=24).logits
    assert np.abs(a - b).max() < 0.05 * (a.max() - a.min())
    assert (a.argmax(-1) == b.argmax(-1)).mean() >= 0.95
    assert int8.manifest["precision"] == "int8"


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_rows_that_no_block_size_divides_still_make_a_working_model(make_tiny_llama, tmp_path, precision):
    """Hidden size 72: no block of 32 or more divides a row, so the embedding's last block is padded (fault matrix
    MF12: int8 and int4 were cached, then ONNX Runtime refused every load)."""
    source = Catalog().resolve(str(make_tiny_llama(tmp_path / "odd72", hidden=72)))
    fp32 = Backbone(ensure_model(source, "fp32"), device="cpu")
    quantized = Backbone(ensure_model(source, precision), device="cpu")
    ids = np.random.default_rng(2).integers(5, 250, size=(2, 16))
    mask, pos = np.ones_like(ids), np.tile(np.arange(16), (2, 1))
    a = fp32.forward(ids, mask, pos, fp32.empty_state(2), num_logits=16).logits
    b = quantized.forward(ids, mask, pos, quantized.empty_state(2), num_logits=16).logits
    assert b.shape == a.shape and np.isfinite(b).all()
    assert np.abs(a - b).max() < (0.05 if precision == "int8" else 0.25) * (a.max() - a.min())
