"""Model files checked before anything is built from them.

A GGUF file's layout is walked first: every length and count within the file, every tensor's bytes inside
it, so a damaged or cut file is one line in plain words, never a parser's message or a huge allocation. A
config (a folder's config.json, a GGUF file's metadata) is then held against the shapes of the weights it
comes with, before transformers reads it (a config of 10^9 layers makes it build lists of 10^9 entries).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from pathlib import Path

from ..errors import NlpsuiteError

MAX_CONTEXT = 1 << 24  # positions: beyond any model's context window (Llama 4 Scout's is 10M)
_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> size
_SCALAR_FORMAT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 4


class _Reader:
    """Little-endian reads from a mapped file that refuse to run past its end."""

    def __init__(self, data, name: str) -> None:
        self.data, self.name, self.at = data, name, 0

    def damaged(self, why: str) -> NlpsuiteError:
        return NlpsuiteError(f"{self.name} is a damaged GGUF file: {why}; download or copy it again")

    def take(self, size: int, what: str) -> int:
        if size > len(self.data) - self.at:
            raise self.damaged(
                f"{what} at byte {self.at:,} claims {size:,} bytes, more than the {len(self.data):,}-byte file holds"
            )
        start, self.at = self.at, self.at + size
        return start

    def number(self, fmt: str, what: str):
        return struct.unpack_from("<" + fmt, self.data, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        size = self.number("Q", what)
        start = self.take(size, what)
        return bytes(self.data[start : start + size]).decode("utf-8", errors="replace")

    def value(self, kind: int, what: str, depth: int = 0):
        if kind in _SCALAR_FORMAT:
            return self.number(_SCALAR_FORMAT[kind], what)
        if kind == _STRING:
            return self.string(what)
        if kind != _ARRAY or depth > 1:
            raise self.damaged(f"{what} has the unknown value type {kind}")
        item, count = self.number("I", what), self.number("Q", what)
        if item in _SCALAR_BYTES:
            self.take(count * _SCALAR_BYTES[item], what)  # skipped: only its length matters here
        elif count * 8 > len(self.data) - self.at:  # each string or array is 8 bytes at least
            raise self.damaged(f"{what} claims {count:,} items, more than the {len(self.data):,}-byte file holds")
        else:
            for _ in range(count):
                self.value(item, what, depth + 1)
        return count  # an array stands for its length


def gguf_layout(path: Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """(metadata: scalars and strings, arrays as their length; tensors: name -> shape, outermost axis first) of a
    GGUF file whose every length, count and tensor lies within it; else one line saying what is damaged."""
    from gguf import GGML_QUANT_SIZES

    with open(path, "rb") as fh:
        try:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise NlpsuiteError(f"{path.name} is empty, not a GGUF file") from None
    with data:
        r = _Reader(data, path.name)
        if bytes(data[:4]) != b"GGUF":
            raise NlpsuiteError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")
        r.at = 4
        version = r.number("I", "the version")
        if version not in (2, 3):
            raise NlpsuiteError(f"{path.name} is GGUF version {version}; versions 2 and 3 are supported")
        tensors, entries = r.number("Q", "the tensor count"), r.number("Q", "the metadata count")
        if entries * 13 + tensors * 29 > len(data):  # the smallest entry and tensor header: 13 and 29 bytes
            raise r.damaged(f"it claims {entries:,} metadata entries and {tensors:,} tensors, more than it holds")
        metadata = {}
        for _ in range(entries):
            key = r.string("a metadata key")
            metadata[key] = r.value(r.number("I", f"the type of {key!r}"), f"the metadata value {key!r}")
        shapes, extents = {}, []
        for _ in range(tensors):
            name = r.string("a tensor name")
            dims = r.number("I", f"tensor {name!r}")
            if not 1 <= dims <= _MAX_DIMS:
                raise r.damaged(f"tensor {name!r} claims {dims} dimensions")
            shape = [r.number("Q", f"tensor {name!r}") for _ in range(dims)]
            kind, offset = r.number("I", f"tensor {name!r}"), r.number("Q", f"tensor {name!r}")
            if kind not in GGML_QUANT_SIZES:
                raise r.damaged(f"tensor {name!r} has the unknown type {kind}")
            values, (block, size) = 1, GGML_QUANT_SIZES[kind]
            for d in shape:
                values *= d
            if values * size // block > len(data):
                raise r.damaged(f"tensor {name!r} claims {values:,} values, more than the file holds")
            shapes[name] = tuple(reversed(shape))  # GGUF lists the innermost axis first
            extents.append((name, offset, values * size // block))
        alignment = metadata.get("general.alignment", 32)
        start = -(-r.at // alignment) * alignment if isinstance(alignment, int) and alignment > 0 else r.at
        for name, offset, size in extents:
            if start + offset + size > len(data):
                raise r.damaged(
                    f"it is cut short: tensor {name!r} ends at byte {start + offset + size:,}, the file holds "
                    f"{len(data):,} (an incomplete download?)"
                )
    return metadata, shapes


GGUF_NUMBERS = {  # what config.json calls the numbers a GGUF file's metadata holds under "<architecture>."
    "hidden_size": "embedding_length",
    "num_hidden_layers": "block_count",
    "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv",
    "intermediate_size": "feed_forward_length",
    "max_position_embeddings": "context_length",
    "head_dim": "attention.key_length",
}


def gguf_config(metadata: dict) -> dict:
    """A GGUF file's architecture numbers under config.json's names."""
    arch = metadata.get("general.architecture")
    numbers = {name: metadata[f"{arch}.{key}"] for name, key in GGUF_NUMBERS.items() if f"{arch}.{key}" in metadata}
    if "tokenizer.ggml.tokens" in metadata:
        numbers["vocab_size"] = metadata["tokenizer.ggml.tokens"]  # an array stands for its length
    return numbers


def check_config(config: dict, has: Callable[[str], bool], shape: Callable[[str], tuple], source: str) -> None:
    """Refuse, in one line and before anything is built from it, a config whose numbers are no sizes or do not
    match the shapes of the weights (names as Hugging Face's Llama family calls them)."""

    def wrong(why: str) -> NlpsuiteError:
        return NlpsuiteError(f"{source}: its config does not match its weights: {why}; is it another model's config?")

    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                "num_key_value_heads", "head_dim", "max_position_embeddings"):  # fmt: skip
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise NlpsuiteError(f"{source}: its config says {key} {value!r}: it must be a whole number above 0")
    if config.get("max_position_embeddings", 0) > MAX_CONTEXT:
        raise NlpsuiteError(
            f"{source}: its config says a context of {config['max_position_embeddings']:,} positions, more than any "
            f"model has (at most {MAX_CONTEXT:,})"
        )
    hidden, layers, heads = (config.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads"))
    if None in (hidden, layers, heads):
        return  # transformers says what is missing
    kv = config.get("num_key_value_heads") or heads
    if heads % kv:
        raise wrong(f"{heads} attention heads cannot share {kv} key-value heads evenly")
    head_dim = config.get("head_dim") or hidden // heads
    embed = "model.embed_tokens.weight"
    if not has(embed):
        raise NlpsuiteError(f"{source} holds no token embedding ({embed})")
    rows, width = shape(embed)[:2]
    if width != hidden:
        raise wrong(f"hidden_size is {hidden:,}, but the token embedding is {width:,} wide")
    if config.get("vocab_size") not in (None, rows):
        raise wrong(f"vocab_size is {config['vocab_size']:,}, but the token embedding has {rows:,} rows")
    held = next(i for i in range(layers + 1) if i == layers or not has(f"model.layers.{i}.input_layernorm.weight"))
    if held != layers or has(f"model.layers.{layers}.input_layernorm.weight"):
        found = held if held != layers else f"more than {layers}"
        raise wrong(f"it says {layers:,} layers, the weights hold {found}")
    expected = {
        "model.layers.0.self_attn.q_proj.weight": heads * head_dim,
        "model.layers.0.self_attn.k_proj.weight": kv * head_dim,
        "model.layers.0.self_attn.qkv_proj.weight": (heads + 2 * kv) * head_dim,
        "model.layers.0.mlp.gate_proj.weight": config.get("intermediate_size"),
        "model.layers.0.mlp.gate_up_proj.weight": 2 * config["intermediate_size"] if "intermediate_size" in config
        else None,
    }  # fmt: skip
    for name, want in expected.items():
        if want is not None and has(name) and shape(name)[0] != want:
            raise wrong(f"{name} has {shape(name)[0]:,} rows where its numbers make {want:,}")
