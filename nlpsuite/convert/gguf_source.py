"""A GGUF file's config and tokenizer, built from its metadata as transformers builds them, without torch.

transformers reads a GGUF file only with torch installed (its reader imports torch even to read metadata), so
conversion reads the metadata itself with the gguf package and gives it to transformers' own GGUF mapping
tables and tokenizer builder, which need no torch: the result is what ``AutoConfig``/``AutoTokenizer`` with
``gguf_file`` give (tests/test_gguf_source.py checks it against them).
"""

from __future__ import annotations

from pathlib import Path


def read_metadata(path: Path) -> tuple[dict, tuple[str, ...]]:
    """({metadata key: value}, tensor names) of a GGUF file; no tensor data is read."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    metadata = {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    return metadata, tuple(tensor.name for tensor in reader.tensors)


def config_fields(metadata: dict, tensor_names: tuple[str, ...]) -> dict:
    """The transformers config fields of a GGUF file, by transformers' table of GGUF keys (``GGUF_CONFIG_MAPPING``).

    As transformers does: a ``llama`` file named ``mistral`` is a Mistral; the head is tied when the file has no
    ``output.weight``; the vocabulary size is the token count when the file does not give it."""
    from transformers.integrations.ggml import GGUF_CONFIG_DEFAULTS_MAPPING, GGUF_CONFIG_MAPPING

    written = metadata["general.architecture"]
    architecture = "mistral" if written == "llama" and metadata.get("general.name") == "mistral" else written
    if architecture not in GGUF_CONFIG_MAPPING:
        from . import unsupported

        raise unsupported(architecture)
    fields = {"tie_word_embeddings": "output.weight" not in tensor_names}
    fields.update(GGUF_CONFIG_DEFAULTS_MAPPING.get(architecture, {}))
    for key, value in metadata.items():  # "<prefix>.<rest>": general.*, tokenizer.* and the architecture's own
        prefix, _, rest = key.replace(written, architecture).partition(".")
        name = GGUF_CONFIG_MAPPING.get(prefix, {}).get(rest)
        if name is not None and name != -1:
            fields[name] = value.replace(written, architecture) if isinstance(value, str) else value
    if fields.get("model_type") == "gemma3":  # a GGUF holds Gemma 3's text model only
        fields["model_type"] = "gemma3_text"
    if "vocab_size" not in fields and "tokenizer.ggml.tokens" in metadata:
        fields["vocab_size"] = len(metadata["tokenizer.ggml.tokens"])
    return fields


def tokenizer_parts(metadata: dict) -> tuple[dict, dict]:
    """(the tokenizer's fields, its settings) under transformers' names (``GGUF_TOKENIZER_MAPPING``), with the
    special tokens spelled out: what transformers' GGUF tokenizer builder and a tokenizer class take."""
    try:
        from transformers.integrations.gguf import GGUF_TOKENIZER_MAPPING
    except ImportError:  # transformers before 5.20 keeps its GGUF tables in one module
        from transformers.integrations.ggml import GGUF_TOKENIZER_MAPPING

    groups = {
        group: {name: metadata[f"tokenizer.{key}"] for key, name in names.items() if f"tokenizer.{key}" in metadata}
        for group, names in GGUF_TOKENIZER_MAPPING.items()
    }
    fields, settings = groups["tokenizer"], groups["tokenizer_config"]
    if fields.get("tokenizer_type") == "llama":  # llama.cpp adds BOS to a sentencepiece vocabulary unless told not
        settings.setdefault("add_bos_token", True)
    for token, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")):
        found = metadata.get(f"tokenizer.ggml.{key}_token_id")
        settings[f"{token}_token"] = fields["tokens"][found] if found is not None else None
    return fields, settings


def open_gguf(path: Path):
    """(transformers config, fast tokenizer) of a GGUF file."""
    from transformers import AutoConfig, PreTrainedTokenizerFast

    try:
        from transformers.integrations.gguf import convert_gguf_tokenizer
    except ImportError:  # before 5.20
        from transformers.integrations.ggml import convert_gguf_tokenizer

    metadata, tensor_names = read_metadata(path)
    config = AutoConfig.for_model(**config_fields(metadata, tensor_names))
    fields, settings = tokenizer_parts(metadata)
    backend, more = convert_gguf_tokenizer(metadata["general.architecture"], fields)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **settings, **more)
    return config, tokenizer
