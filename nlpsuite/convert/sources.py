"""Read a source model's weights one tensor at a time, under Hugging Face names, never the whole model at once.

Safetensors files are opened per tensor and GGUF tensors are read with ``pread``: a memory map left open
over the whole source would keep every page read in the process's resident memory until the end.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import NlpsuiteError

GGUF_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
GGUF_LAYER = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|bias)$")
DEQUANTIZE_VALUES = 1 << 22  # values dequantized per step (16 MB of float32)


class SafetensorsWeights:
    """The tensors of a Hugging Face folder's ``*.safetensors`` files."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open

        self._open = safe_open
        self.files: dict[str, Path] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for path in sorted(Path(folder).glob("*.safetensors")):
            with safe_open(path, "pt") as f:
                for name in f.keys():  # noqa: SIM118 - a safe_open handle is not a mapping
                    self.files[name] = path
                    self.shapes[name] = tuple(f.get_slice(name).get_shape())
        if not self.files:
            raise NlpsuiteError(f"{folder} holds no .safetensors weights (pickled .bin files are never loaded)")

    def has(self, name: str) -> bool:
        return name in self.files

    def numel(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes.values())

    def get(self, name: str) -> np.ndarray:
        """One tensor in float32 (bf16 and fp16 sources too)."""
        with self._open(self.files[name], "pt") as f:
            return f.get_tensor(name).float().numpy()

    def blocks(self, name: str, bits: int):
        return None


class GGUFWeights:
    """The tensors of a GGUF file under Hugging Face names; Llama's query/key rows back in Hugging Face order."""

    def __init__(self, path: Path, num_heads: int, num_kv_heads: int) -> None:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        self.path = Path(path)
        arch = reader.fields["general.architecture"].contents()
        # llama.cpp interleaves the rotary halves of Llama's q/k rows (its other architectures it leaves alone)
        self._heads = {"self_attn.q_proj": num_heads, "self_attn.k_proj": num_kv_heads} if arch == "llama" else {}
        self.tensors = {}
        for t in reader.tensors:
            name = GGUF_GLOBAL.get(t.name)
            if m := LAYER_TENSOR.match(t.name):
                part = GGUF_LAYER.get(m.group(2))
                name = f"model.layers.{m.group(1)}.{part}.{m.group(3)}" if part else None
            if name:
                self.tensors[name] = t

    def has(self, name: str) -> bool:
        return name in self.tensors

    def numel(self) -> int:
        return sum(int(t.n_elements) for t in self.tensors.values())

    def _raw(self, name: str) -> tuple[np.ndarray, object]:
        t = self.tensors[name]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, int(t.n_bytes), int(t.data_offset))
        finally:
            os.close(fd)
        raw = np.frombuffer(data, np.uint8)
        rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1  # GGUF shapes list the innermost axis first
        return raw.reshape(rows, -1) if len(t.shape) > 1 else raw, t.tensor_type

    def _rows_in_hf_order(self, name: str, array: np.ndarray) -> np.ndarray:
        heads = next((n for part, n in self._heads.items() if f".{part}." in name), None)
        if heads is None:
            return array
        half = array.shape[0] // heads // 2
        return array.reshape(heads, half, 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)

    def get(self, name: str) -> np.ndarray:
        """One tensor dequantized to float32 by the gguf package, shaped as Hugging Face shapes it."""
        from gguf.quants import dequantize

        raw, qtype = self._raw(name)
        if raw.ndim == 1:
            return np.asarray(dequantize(raw, qtype), np.float32)
        # A few rows at a time: dequantizing a K-quant makes several temporaries of its whole float32 size
        # (a 150k x 896 embedding: ~1 GB of them beside its 0.5 GB result), a row slice only its own.
        t = self.tensors[name]
        out = np.empty((raw.shape[0], int(t.shape[0])), np.float32)
        step = max(1, DEQUANTIZE_VALUES // out.shape[1])
        for start in range(0, len(out), step):
            out[start : start + step] = dequantize(raw[start : start + step], qtype)
        return self._rows_in_hf_order(name, out)

    def blocks(self, name: str, bits: int):
        """The tensor's own Q8_0 / Q4_0 blocks in MatMulNBits layout when they fit ``bits`` exactly, else None."""
        from .quantize import gguf_blocks

        raw, qtype = self._raw(name)
        found = gguf_blocks(raw, qtype, bits) if raw.ndim == 2 else None
        if found is None:
            return None
        return tuple(self._rows_in_hf_order(name, a) for a in found)


class FusedRows:
    """Phi-3's fused ``qkv_proj`` and ``gate_up_proj`` read as the Llama family's separate matrices (row slices)."""

    def __init__(self, weights, config) -> None:
        self.weights = weights
        nh = config.num_attention_heads
        hd = getattr(config, "head_dim", None) or config.hidden_size // nh
        q, kv, inter = nh * hd, (getattr(config, "num_key_value_heads", None) or nh) * hd, config.intermediate_size
        self.parts = {}
        for i in range(config.num_hidden_layers):
            att, mlp = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
            qkv, gate_up = att + "qkv_proj.weight", mlp + "gate_up_proj.weight"
            self.parts[att + "q_proj.weight"] = (qkv, 0, q)
            self.parts[att + "k_proj.weight"] = (qkv, q, q + kv)
            self.parts[att + "v_proj.weight"] = (qkv, q + kv, q + 2 * kv)
            self.parts[mlp + "gate_proj.weight"] = (gate_up, 0, inter)
            self.parts[mlp + "up_proj.weight"] = (gate_up, inter, 2 * inter)

    def has(self, name: str) -> bool:
        return name in self.parts or self.weights.has(name)

    def numel(self) -> int:
        return self.weights.numel()

    def get(self, name: str) -> np.ndarray:
        if name not in self.parts:
            return self.weights.get(name)
        fused, start, end = self.parts[name]
        return np.ascontiguousarray(self.weights.get(fused)[start:end])

    def blocks(self, name: str, bits: int):
        return None if name in self.parts else self.weights.blocks(name, bits)


class OffsetNorms:
    """Gemma's RMSNorm weights read as the multipliers they are: Gemma scales by (1 + weight)."""

    def __init__(self, weights) -> None:
        self.weights = weights

    def has(self, name: str) -> bool:
        return self.weights.has(name)

    def numel(self) -> int:
        return self.weights.numel()

    def get(self, name: str) -> np.ndarray:
        w = self.weights.get(name)
        return w + np.float32(1.0) if name.endswith("norm.weight") else w

    def blocks(self, name: str, bits: int):
        return self.weights.blocks(name, bits)
