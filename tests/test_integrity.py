"""Cached weights are verified by content (sha256), not size; non-finite numbers never reach the output."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone

IDS = np.array([[5, 17, 42, 99, 7, 3]], np.int64)


def logits(backbone):
    mask, pos = np.ones_like(IDS), np.arange(IDS.shape[1])[None]
    return backbone.forward(IDS, mask, pos, backbone.empty_state(1), num_logits=IDS.shape[1]).logits


def corrupt(path, length=4096):
    """Overwrite bytes in the middle of a file, keeping its size and (as tampering would) its mtime."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(st.st_size // 2)
        fh.write(np.random.default_rng(0).bytes(min(length, st.st_size // 4)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def test_same_size_corruption_of_the_weights_is_detected_and_rebuilt(tiny_llama):
    source = Catalog().resolve(str(tiny_llama))
    folder = ensure_model(source)
    good = logits(Backbone(folder, "cpu"))
    corrupt(folder / "model.onnx.data")
    said = []
    folder = ensure_model(source, report=said.append)
    assert any("damaged; rebuilding (model.onnx.data changed)" in line for line in said)
    np.testing.assert_allclose(logits(Backbone(folder, "cpu")), good, atol=1e-5)


def test_no_packed_copy_is_built_from_damaged_weights(tiny_llama):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    corrupt(folder / "model.onnx.data")
    with pytest.raises(NlpsuiteError, match=r"damaged \(content differs .*\): model.onnx.data; .*nlpsuite models rm"):
        Backbone(folder, "cpu", packed_copy=True)
    assert not list(folder.glob("cpu-*"))


def test_same_size_corruption_of_the_packed_copy_is_rebuilt(tiny_llama):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    good = logits(Backbone(folder, "cpu"))
    Backbone(folder, "cpu", packed_copy=True)
    (copy,) = folder.glob("cpu-*")
    corrupt(copy / "model.onnx.data", length=1 << 20)
    np.testing.assert_allclose(logits(Backbone(folder, "cpu", packed_copy=True)), good, atol=1e-5)


def test_a_verified_entry_is_not_hashed_again_until_a_file_changes(tiny_llama, monkeypatch):
    from nlpsuite.modelstore import integrity

    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    integrity._STAMPS.clear()  # as a new process: only the stamp file remembers
    hashed = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    Backbone(folder, "cpu")
    assert hashed == []
    tokenizer = folder / "tokenizer.json"
    os.utime(tokenizer, ns=(tokenizer.stat().st_atime_ns, tokenizer.stat().st_mtime_ns + 1))
    Backbone(folder, "cpu")
    assert hashed == ["tokenizer.json"]


def test_models_verify_says_which_file_is_damaged(tiny_llama, cli):
    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    Backbone(folder, "cpu", packed_copy=True)
    result = cli(["models", "verify", str(tiny_llama), "--json"])
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["ok"] and [e["precision"] for e in report["entries"]] == ["fp32"]
    names = set(report["entries"][0]["files"])
    assert {"model.onnx", "model.onnx.data", "tokenizer.json"} <= names
    assert any(n.startswith("cpu-") for n in names)
    missing = cli(["models", "verify", str(tiny_llama), "--precision", "int8"])
    assert missing.code == 1 and "(int8) is not in the cache" in missing.err
    corrupt(folder / "model.onnx.data")
    result = cli(["models", "verify", str(tiny_llama)])
    assert result.code == 1
    assert "damaged: model.onnx.data" in result.out
    (line,) = result.err.strip().splitlines()
    assert "damaged (content differs from the sha256 recorded when written): fp32/model.onnx.data;" in line


@pytest.fixture
def nan_llama(make_tiny_llama, tmp_path):
    """A tiny model with a NaN in its final norm: it converts, then every forward pass gives NaN."""
    from safetensors.numpy import load_file, save_file

    folder = make_tiny_llama(tmp_path / "nan-llama", context=4096)  # room for the tasks' prompts
    tensors = load_file(folder / "model.safetensors")
    tensors["model.norm.weight"][3] = np.nan
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.mark.parametrize("command", [["sentiment", "A fine film.", "--json"], ["generate", "hello", "-n", "4"]])
def test_non_finite_logits_are_an_error_naming_the_model_and_the_fix(nan_llama, cli, command):
    result = cli([*command, "--model", str(nan_llama), "--device", "cpu", "-q"])
    assert result.code == 1 and result.out == ""
    (line,) = result.err.strip().splitlines()
    assert "non-finite" in line and "nlpsuite models verify" in line and "nlpsuite models rm" in line


def test_json_output_refuses_nan():
    from nlpsuite.cli.options import print_json

    with pytest.raises(NlpsuiteError, match="non-finite"):
        print_json({"label": "positive", "score": float("nan")})
