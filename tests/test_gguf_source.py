"""A GGUF file's config and tokenizer as conversion reads them without torch (convert/gguf_source.py), against
what transformers' AutoConfig and AutoTokenizer read from the same file (with torch, from the test extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlpsuite.convert.gguf_source import open_gguf

pytest.importorskip("torch")  # transformers reads a GGUF file only with torch: the reference needs it
CHAT = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def _byte_level_vocabulary(make_tiny_llama, tmp_path: Path) -> dict:
    """A byte-level BPE vocabulary trained here (the kind SmolLM, Qwen and Llama 3 files hold)."""
    import json

    folder = make_tiny_llama(tmp_path / "hf")
    model = json.loads((folder / "tokenizer.json").read_text())["model"]
    tokens = sorted(model["vocab"], key=model["vocab"].get)
    merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    types = [3 if t.startswith("<") and t.endswith(">") else 1 for t in tokens]  # 3: control
    return {"model": "gpt2", "tokens": tokens, "merges": merges, "types": types, "bos": 1, "eos": 4}


def _sentencepiece_vocabulary() -> dict:
    """A sentencepiece-style vocabulary with scores and byte fallback (the kind Llama 2 and Mistral files hold)."""
    pieces = ["▁the", "▁a", "▁dog", "▁cat", "he", "th", "▁t", "▁d", "og", "at", "▁c", "▁", "t", "h", "e", "a", "d"]
    pieces += ["o", "g", "c"]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = [2, 3, 3, *[6] * 256, *[1] * len(pieces)]  # 2 unknown, 3 control, 6 byte, 1 normal
    scores = [0.0, 0.0, 0.0, *[0.0] * 256, *(-float(i) for i in range(len(pieces)))]
    return {"model": "llama", "tokens": tokens, "scores": scores, "types": types, "bos": 1, "eos": 2}


def write_gguf(path: Path, arch: str, vocab: dict, name: str = "tiny", untied: bool = False) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(16)
    writer.add_rope_freq_base(50000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model(vocab["model"])
    if vocab["model"] == "gpt2":
        writer.add_tokenizer_pre("qwen2" if arch == "qwen2" else "smollm")
        writer.add_token_merges(vocab["merges"])
    else:
        writer.add_token_scores(vocab["scores"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_bos_token_id(vocab["bos"])
    writer.add_eos_token_id(vocab["eos"])
    writer.add_chat_template(CHAT)
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.normal(size=(len(vocab["tokens"]), 64)).astype(np.float32))
    if untied:
        writer.add_tensor("output.weight", rng.normal(size=(len(vocab["tokens"]), 64)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _same_as_transformers(path: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config, tokenizer = open_gguf(path)
    theirs = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    ours, reference = config.to_dict(), theirs.to_dict()
    for fields in (ours, reference):
        fields.pop("_name_or_path", None)
    assert ours == reference
    expected = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    assert tokenizer.backend_tokenizer.to_str() == expected.backend_tokenizer.to_str()
    for name in ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template"):
        assert getattr(tokenizer, name) == getattr(expected, name), name
    text = "the dog and the cat: 東京, naïve café 🙂"
    assert tokenizer(text)["input_ids"] == expected(text)["input_ids"]


@pytest.mark.parametrize(
    ("arch", "name", "untied"), [("llama", "tiny", False), ("qwen2", "tiny", True), ("llama", "mistral", False)]
)
def test_a_byte_level_gguf_reads_as_transformers_reads_it(make_tiny_llama, tmp_path, arch, name, untied):
    vocabulary = _byte_level_vocabulary(make_tiny_llama, tmp_path)
    _same_as_transformers(write_gguf(tmp_path / "m.gguf", arch, vocabulary, name, untied))


def test_a_sentencepiece_gguf_reads_as_transformers_reads_it(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "llama", _sentencepiece_vocabulary())
    _same_as_transformers(path)
    config, tokenizer = open_gguf(path)
    assert tokenizer("the dog")["input_ids"][0] == 1  # llama.cpp's sentencepiece vocabularies begin with BOS


@pytest.mark.parametrize("arch", ["mamba", "rwkv6"])  # one transformers reads, one it does not
def test_a_gguf_of_another_architecture_is_refused_in_one_line(tmp_path, arch):
    from nlpsuite.convert import open_source
    from nlpsuite.errors import NlpsuiteError

    write_gguf(tmp_path / "m.gguf", arch, _sentencepiece_vocabulary())
    with pytest.raises(NlpsuiteError, match=f"'{arch}' is not supported yet; supported: llama,"):
        open_source(str(tmp_path), "m.gguf")


@pytest.mark.e2e
def test_the_default_models_gguf_reads_as_transformers_reads_it(real_home, monkeypatch):
    from nlpsuite.api import Suite

    monkeypatch.setenv("NLPSUITE_HOME", str(real_home))
    _same_as_transformers(Path(Suite(device="cpu").backbone.manifest["source"]["gguf"]))
