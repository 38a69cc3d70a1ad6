"""Names of the files and graph inputs/outputs that make up a converted backbone."""

from __future__ import annotations

MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 3  # 2: source records its GGUF path; 3: every file's sha256; older entries are rebuilt

PRECISIONS = ("fp32", "int8", "int4", "fp16")  # fp16: for the CUDA execution provider only


def io_names(num_layers: int) -> list[tuple[str, str, str, str]]:
    """(past key, past value, present key, present value) names for each layer."""
    return [
        (f"past_key_values.{i}.key", f"past_key_values.{i}.value", f"present.{i}.key", f"present.{i}.value")
        for i in range(num_layers)
    ]
