"""Source model (config, tokenizer, weights read tensor by tensor) -> ONNX backbone. The only package that imports
transformers (for configs, tokenizers and generation defaults; never to instantiate a model), and it needs no
torch: the rotary tables are computed here (rope.py)."""

from __future__ import annotations

import datetime as _dt
import os
from importlib import metadata
from pathlib import Path

from ..artefacts import MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from ..errors import NlpsuiteError
from ..fsutil import check_free

# transformers says on import that it found no torch: conversion needs none (the rotary tables are computed here)
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

# each has a parity test in tests/test_parity.py; gemma3_text is Gemma 3's text-only model (1B, 270M)
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3_text")
# why the others close to them are refused, said in the one-line error
REFUSED = {
    "gemma3": "Gemma 3 4B+ is a vision-language model (gemma3); its text-only sizes (gemma3_text) are supported",
    "gemma3n": "Gemma 3n has per-layer embeddings and AltUp, which this graph does not compute",
}


def unsupported(model_type) -> NlpsuiteError:
    why = f" ({REFUSED[model_type]})" if model_type in REFUSED else ""
    return NlpsuiteError(f"architecture {model_type!r} is not supported yet{why}; supported: {', '.join(SUPPORTED)}")


def versions(*names: str) -> dict[str, str]:
    """The installed versions of the packages named (those not installed are left out), for manifests."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def save_graph(model, out: Path) -> None:
    """Write model.onnx with every weight in one external file (no 2 GB protobuf limit)."""
    import onnx

    onnx.save_model(
        model,
        str(out / MODEL_FILE),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )


def check_folder(source: str) -> dict:
    """A local folder's config.json (``{}`` if it has none), refused before transformers reads it when only its
    own Python code (``auto_map``) could load its architecture: nlpsuite never runs code from model files."""
    import json

    config_file = Path(source) / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NlpsuiteError(f"{config_file} is not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise NlpsuiteError(f"{config_file} does not hold a JSON object")
    model_type = config.get("model_type")
    if model_type in SUPPORTED:
        return config  # transformers' own class for it loads the weights; any shipped code is ignored
    supported = ", ".join(SUPPORTED)
    if config.get("auto_map"):
        raise NlpsuiteError(
            f"{source} needs its own Python code (custom code, 'auto_map' in config.json) to load "
            f"{model_type!r} models, and nlpsuite never runs code from model files; supported: {supported}"
        )
    raise unsupported(model_type)


def check_source(source: str, gguf_file: str | None) -> None:
    """Refuse in one line a damaged GGUF file, or a config whose numbers disagree with its weights' shapes."""
    if os.path.isdir(source):
        _checked_weights(source, gguf_file)


def _checked_weights(source: str, gguf_file: str | None):
    """The weights' shapes held against the config's numbers (checks.py) before transformers reads the config:
    a folder's safetensors (returned, to be read later), or a GGUF file's layout (None: read by GGUFWeights)."""
    from .checks import check_config, gguf_config, gguf_layout
    from .sources import SafetensorsWeights, hf_name

    if gguf_file:
        metadata, shapes = gguf_layout(Path(source) / gguf_file)
        if metadata.get("general.architecture") in SUPPORTED:  # the others are refused by name, once read
            named = {name: shape for gguf_name, shape in shapes.items() if (name := hf_name(gguf_name))}
            check_config(gguf_config(metadata), named.__contains__, named.__getitem__, gguf_file)
        return None
    config = check_folder(source)
    weights = SafetensorsWeights(Path(source))
    check_config(config, weights.has, weights.shape, source)
    return weights


def _config_and_tokenizer(source: str, gguf_file: str | None):
    if gguf_file:  # read here: transformers reads a GGUF file only with torch (gguf_source.py)
        from .gguf_source import open_gguf

        return open_gguf(Path(source) / gguf_file)
    from transformers import AutoConfig, AutoTokenizer

    # Never a model's own Python code: False (not None) also keeps transformers from asking the user.
    kwargs = {"trust_remote_code": False, "local_files_only": True}
    config = AutoConfig.from_pretrained(source, **kwargs)
    if config.model_type not in SUPPORTED:
        raise unsupported(config.model_type)
    return config, AutoTokenizer.from_pretrained(source, **kwargs)


def open_source(source: str, gguf_file: str | None, quiet: bool = False):
    """(local folder, config, tokenizer, weights) of a local folder, or of a GGUF file in it; weights are read
    tensor by tensor. (A hub model's files are fetched by the model store first.) Their numbers are checked
    against each other before transformers is even imported."""
    if not os.path.isdir(source):
        raise NlpsuiteError(f"{source} is not a folder")
    weights = _checked_weights(source, gguf_file)
    from transformers.utils import logging as hf_logging

    from .sources import FusedRows, GGUFWeights, OffsetNorms

    hf_logging.set_verbosity_error()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        config, tokenizer = _config_and_tokenizer(source, gguf_file)
    except OSError as exc:
        raise NlpsuiteError(f"could not load {source}: {str(exc).splitlines()[0]}") from None
    if config.model_type not in SUPPORTED:
        raise unsupported(config.model_type)
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None)) not in (None, 1.0):
        raise NlpsuiteError(f"{config.model_type} with a partial rotary embedding is not supported yet")
    if gguf_file and config.model_type == "phi3":
        raise NlpsuiteError("Phi-3 from a GGUF file is not supported yet: use its Hugging Face folder")
    if gguf_file and config.model_type.startswith("gemma"):
        # llama.cpp stores Gemma's norms as 1 + weight and names the sandwich norms its own way: not mapped yet
        raise NlpsuiteError("Gemma from a GGUF file is not supported yet: use its Hugging Face folder")
    if gguf_file:
        heads = config.num_attention_heads
        weights = GGUFWeights(Path(source) / gguf_file, heads, getattr(config, "num_key_value_heads", None) or heads)
    if config.model_type == "phi3":
        weights = FusedRows(weights, config)
    if config.model_type.startswith("gemma"):
        weights = OffsetNorms(weights)
    return source, config, tokenizer, weights


def _generation_config(config, source: str, gguf_file: str | None):
    from transformers import GenerationConfig

    if not gguf_file and os.path.isdir(source):
        try:
            return GenerationConfig.from_pretrained(source, local_files_only=True)
        except OSError:
            pass
    return GenerationConfig.from_model_config(config)


def _special_ids(generation_config, tokenizer) -> dict:
    eos = generation_config.eos_token_id if generation_config else None
    eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else 0)
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_ids": eos,
        "pad_token_id": pad,
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
    }


def generation_defaults(config) -> dict:
    """The sampling defaults a model ships (its GenerationConfig), in SamplingParams' names: what generate and
    chat use for options left unset, as transformers does."""
    out = {}
    if config is not None and getattr(config, "do_sample", False):
        out = {k: getattr(config, k) for k in ("temperature", "top_k", "top_p") if getattr(config, k, None) is not None}
    penalty = getattr(config, "repetition_penalty", None)
    if penalty not in (None, 1.0):
        out["repetition_penalty"] = float(penalty)
    return out


BITS = {"fp32": None, "fp16": None, "int8": 8, "int4": 4}
# 8-bit matrices in blocks of up to 128 values (fitting_block: 128, 64 or 32, whichever divides a row): on the 0.5B
# model int8 decoded 1.21x faster than with blocks of 32 (36.8 against 30.3 tok/s, one run) and followed fp32 98.8%
# of the time (99.1% with 32); the default model, whose rows of 576 take 64 (the down projection's 1536: 128),
# 1.08x side by side at 95.8% (96.1%). int4's 4-bit blocks stay 32: 64 cost 1.1 points of agreement with fp32
# (87.2% -> 86.1%) for no clear speed gain (README, benchmarks/bench_precision.py).
BLOCKS = {"int8": {8: 128}, "int4": {8: 128}}
BYTES_PER_WEIGHT = {
    "fp32": 4.0,
    "fp16": 2.0,
    "int8": 1.125,
    "int4": 0.9,
}  # codes plus one fp32 scale per 32; int4 is mixed


def export(
    source: str, gguf_file: str | None, out: Path, precision: str = "fp32", progress=lambda msg: None, quiet=False
) -> dict:
    """Write model.onnx (weights streamed into model.onnx.data, one tensor at a time) and tokenizer.json at
    ``precision``; return the manifest fields."""
    from .graph import ExternalWeights, GraphWriter, kv_state_spec
    from .llama import build_graph, describe

    progress("reading the source model's config and tokenizer")
    source, config, tokenizer, weights = open_source(source, gguf_file, quiet)
    if not getattr(tokenizer, "backend_tokenizer", None):
        raise NlpsuiteError(f"{source}: no fast (tokenizers) tokenizer available for this model")
    check_free(out.parent, int(BYTES_PER_WEIGHT[precision] * weights.numel()), "converting to ONNX")
    progress(f"writing the ONNX graph and its {precision} weights, one tensor at a time")
    g = GraphWriter(weights=ExternalWeights(out / WEIGHTS_FILE))
    # int4 keeps q/k/v, the down projection and the head at 8 bits: with every matrix at 4 bits the default
    # model's next token agreed with fp32 76% of the time, with these at 8 bits 87% (benchmarks/bench_precision.py)
    wide_bits = 8 if precision == "int4" else None
    try:
        graph = build_graph(config, weights, g, BITS[precision], wide_bits, precision == "fp16", BLOCKS.get(precision))
    finally:
        g.weights.close()
    save_graph(graph, out)
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    arch = describe(config)
    generation = _generation_config(config, source, gguf_file)
    return {
        "architecture": arch,
        "state": kv_state_spec(
            arch["num_layers"], arch["num_kv_heads"], arch["head_dim"], "float16" if precision == "fp16" else "float32"
        ),
        "special_tokens": _special_ids(generation, tokenizer),
        "chat_template": tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None,
        "generation": generation_defaults(generation),
        "precision": precision,
        "exporter": {
            "nlpsuite": versions("nlpsuite").get("nlpsuite", "dev"),
            **versions("torch", "transformers", "onnx", "gguf", "safetensors"),
        },
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
