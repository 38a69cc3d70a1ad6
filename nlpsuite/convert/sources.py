"""Read a source model's weights one tensor at a time, under Hugging Face names, never the whole model at once,
and a big matrix a slice of rows at a time (``Rows``), so quantizing it never holds it whole in float32.

Safetensors files are opened per read and GGUF tensors are read with ``pread``: a memory map left open
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


class Rows:
    """One [N, K] source matrix read lazily: ``rows[a:b]`` reads and returns just those rows in float32. This is
    what quantize_rows takes, so a big matrix (a 150k-token embedding: 0.5 GB of float32) is quantized a slice
    at a time and never held whole."""

    def __init__(self, weights, name: str) -> None:
        self.weights, self.name = weights, name
        self.shape = tuple(weights.shape(name))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise IndexError("Rows reads contiguous row ranges only")
        return self.weights.get(self.name, start, stop)


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

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def get(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """One tensor, or its rows ``start:stop``, in float32 (bf16 and fp16 sources too)."""
        with self._open(self.files[name], "pt") as f:
            return f.get_slice(name)[start:stop].float().numpy()

    def blocks(self, name: str, bits: int):
        return None


def hf_name(gguf_name: str) -> str | None:
    """A GGUF tensor's Hugging Face name (``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``),
    or None for a tensor the graph does not read."""
    if m := LAYER_TENSOR.match(gguf_name):
        part = GGUF_LAYER.get(m.group(2))
        return f"model.layers.{m.group(1)}.{part}.{m.group(3)}" if part else None
    return GGUF_GLOBAL.get(gguf_name)


class GGUFWeights:
    """The tensors of a GGUF file under Hugging Face names; Llama's query/key rows back in Hugging Face order."""

    def __init__(self, path: Path, num_heads: int, num_kv_heads: int) -> None:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        self.path = Path(path)
        arch = reader.fields["general.architecture"].contents()
        # llama.cpp interleaves the rotary halves of Llama's q/k rows (its other architectures it leaves alone)
        self._heads = {"self_attn.q_proj": num_heads, "self_attn.k_proj": num_kv_heads} if arch == "llama" else {}
        self.tensors = {name: t for t in reader.tensors if (name := hf_name(t.name))}

    def has(self, name: str) -> bool:
        return name in self.tensors

    def numel(self) -> int:
        return sum(int(t.n_elements) for t in self.tensors.values())

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in reversed(self.tensors[name].shape))  # GGUF lists the innermost axis first

    def _raw(self, name: str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, object]:
        """The stored bytes of a tensor (of a matrix: its rows ``start:stop``, one row of bytes each)."""
        t = self.tensors[name]
        rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
        row_bytes = int(t.n_bytes) // rows
        stop = rows if stop is None else min(stop, rows)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, (stop - start) * row_bytes, int(t.data_offset) + start * row_bytes)
        finally:
            os.close(fd)
        raw = np.frombuffer(data, np.uint8)
        return raw.reshape(stop - start, row_bytes) if len(t.shape) > 1 else raw, t.tensor_type

    def _head_rows(self, name: str) -> int:
        """The rows per head of a matrix whose rotary halves llama.cpp interleaved (Llama's q/k), else 1."""
        heads = next((n for part, n in self._heads.items() if f".{part}." in name), None)
        return 1 if heads is None else self.shape(name)[0] // heads

    def _rows_in_hf_order(self, name: str, array: np.ndarray) -> np.ndarray:
        """``array``: whole heads' rows of ``name`` in GGUF order."""
        size = self._head_rows(name)
        if size == 1:
            return array
        return array.reshape(-1, size // 2, 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)

    def _by_rows(self, name: str, convert, start: int = 0, stop: int | None = None):
        """``convert`` (stored rows, their type) -> arrays with a row axis first, or None where it does not apply)
        over a matrix's rows ``start:stop`` (a non-empty range), a few rows at a time, into whole arrays in Hugging
        Face's row order: only the rows asked for are read, and no temporary is bigger than a few rows'."""
        n, k = self.shape(name)
        stop = n if stop is None else min(stop, n)
        size = self._head_rows(name)  # reordered rows come from the same head's rows: read whole heads
        first, end = start // size * size, -(-stop // size) * size
        out = None
        step = max(1, DEQUANTIZE_VALUES // k)
        for at in range(first, end, step):
            part = convert(*self._raw(name, at, min(at + step, end)))
            if part is None:
                return None
            if out is None:
                out = tuple(np.empty((end - first, *a.shape[1:]), a.dtype) for a in part)
            for whole, rows in zip(out, part, strict=True):
                whole[at - first : at - first + len(rows)] = rows
        return tuple(self._rows_in_hf_order(name, a)[start - first : stop - first] for a in out)

    def get(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """One tensor, or a matrix's rows ``start:stop``, dequantized to float32 by the gguf package, in Hugging
        Face's shape and row order. A K-quant dequantized whole makes several temporaries of its float32 size
        (a 150k x 896 embedding: ~1 GB beside its 0.5 GB); a few rows at a time, only a few rows' worth."""
        from gguf.quants import dequantize

        if len(self.tensors[name].shape) == 1:
            raw, qtype = self._raw(name)
            return np.asarray(dequantize(raw, qtype), np.float32)[start:stop]
        return self._by_rows(name, lambda raw, qtype: (np.asarray(dequantize(raw, qtype), np.float32),), start, stop)[0]

    def blocks(self, name: str, bits: int):
        """The tensor's own Q8_0 / Q4_0 blocks in MatMulNBits layout when they fit ``bits`` exactly, else None;
        converted a few rows at a time, so only the blocks are ever held whole (not the stored bytes besides)."""
        from .quantize import gguf_blocks

        if len(self.tensors[name].shape) == 1:
            return None
        return self._by_rows(name, lambda raw, qtype: gguf_blocks(raw, qtype, bits))


class Wrapped:
    """A source read through another: every read passes to ``weights`` unless a subclass says otherwise."""

    def __init__(self, weights) -> None:
        self.weights = weights

    def has(self, name: str) -> bool:
        return self.weights.has(name)

    def numel(self) -> int:
        return self.weights.numel()

    def shape(self, name: str) -> tuple[int, ...]:
        return self.weights.shape(name)

    def get(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self.weights.get(name, start, stop)

    def blocks(self, name: str, bits: int):
        return self.weights.blocks(name, bits)


class FusedRows(Wrapped):
    """Phi-3's fused ``qkv_proj`` and ``gate_up_proj`` read as the Llama family's separate matrices (row slices)."""

    def __init__(self, weights, config) -> None:
        super().__init__(weights)
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

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.parts:
            return self.weights.shape(name)
        fused, first, end = self.parts[name]
        return (end - first, *self.weights.shape(fused)[1:])

    def get(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        if name not in self.parts:
            return self.weights.get(name, start, stop)
        fused, first, end = self.parts[name]  # only the part's rows are read, not the fused matrix
        return self.weights.get(fused, first + start, end if stop is None else min(first + stop, end))

    def blocks(self, name: str, bits: int):
        return None if name in self.parts else self.weights.blocks(name, bits)


class OffsetNorms(Wrapped):
    """Gemma's RMSNorm weights read as the multipliers they are: Gemma scales by (1 + weight)."""

    def get(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        w = self.weights.get(name, start, stop)
        return w + np.float32(1.0) if name.endswith("norm.weight") else w
