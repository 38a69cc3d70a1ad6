"""Model files are checked against themselves before anything is built or cached from them: a damaged GGUF file
is one line in plain words (never a parser's message or NUL bytes), a config that disagrees with its weights is
refused before transformers reads it, and a failed conversion leaves no folder behind (fault matrix MF01-MF09)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from test_convert_stream import write_gguf


def text(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def header(tensors: int, entries: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, entries)


ARCH = text("general.architecture") + struct.pack("<I", 8) + text("llama")
HANDMADE = {  # the fault matrix's files, built as its second/mkgguf.py built them
    "str2p40": header(0, 1) + text("general.architecture") + struct.pack("<IQ", 8, 2**40) + b"llama",  # MF04
    "kv2p40": header(0, 2**40),  # MF05
    "arr2p40": header(0, 1) + text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**40),  # MF05
    "tensors2p40": header(2**40, 1) + ARCH,  # MF03
    "dims": header(1, 1) + ARCH + text("token_embd.weight") + struct.pack("<IQQIQ", 2, 2**31, 2**31, 0, 0),  # MF06
}
EXPECTED = {
    "str2p40": "the metadata value 'general.architecture' at byte 64 claims 1,099,511,627,776 bytes",
    "kv2p40": "it claims 1,099,511,627,776 metadata entries",
    "arr2p40": "the metadata value 'tokenizer.ggml.tokens' claims 1,099,511,627,776 items",
    "tensors2p40": "1,099,511,627,776 tensors",
    "dims": "tensor 'token_embd.weight' claims 4,611,686,018,427,387,904 values",
    "trunc": "it is cut short: tensor ",  # MF01
    "cutmeta": "claims",  # MF02
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    files = {}
    for name, data in HANDMADE.items():
        files[name] = folder / f"{name}.gguf"
        files[name].write_bytes(data + b"\0" * 4000)
    whole = folder / "whole.gguf"
    write_gguf(whole)
    data = whole.read_bytes()
    (folder / "trunc.gguf").write_bytes(data[: len(data) * 6 // 10])  # MF01: a download cut short
    (folder / "cutmeta.gguf").write_bytes(data[:60])  # MF02: cut inside its metadata
    files.update(trunc=folder / "trunc.gguf", cutmeta=folder / "cutmeta.gguf")
    return files


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_damaged_gguf_file_is_one_plain_line_and_leaves_nothing(cli, damaged, case, isolated_home):
    got = cli(["generate", "Hi", "--model", str(damaged[case])])
    assert got.code == 1
    assert got.err.startswith(f"error: {case}.gguf is a damaged GGUF file: ") and EXPECTED[case] in got.err
    assert len(got.err.splitlines()) == 1 and "\0" not in got.err  # no 'converting' line before it, no NUL bytes
    assert not (isolated_home / "models").exists()  # no empty model folder, no lock file


def test_a_sound_gguf_files_layout_is_what_the_gguf_package_reads(tmp_path):
    from gguf import GGUFReader

    from nlpsuite.convert.checks import gguf_layout

    path = tmp_path / "whole.gguf"
    write_gguf(path)
    metadata, shapes = gguf_layout(path)
    reader = GGUFReader(path)
    assert metadata["general.architecture"] == "qwen2"
    assert shapes == {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors}


def test_an_error_never_prints_control_bytes():
    from nlpsuite.cli.app import _one_line

    said = "GGUF model with architecture llama" + "\0" * 4096 + " is not\nsupported yet."
    assert _one_line(said) == "GGUF model with architecture llama\ufffd is not supported yet."


CONFIGS = {  # MF08, MF09: a tiny Llama folder whose config.json disagrees with its 64-wide, 2-layer weights
    "hidden_size": (10**7, "hidden_size is 10,000,000, but the token embedding is 64 wide"),
    "num_hidden_layers": (10**9, "it says 1,000,000,000 layers, the weights hold 2"),
    "max_position_embeddings": (2**40, "a context of 1,099,511,627,776 positions, more than any model has"),
    "num_attention_heads": (0, "num_attention_heads 0: it must be a whole number above 0"),
    "intermediate_size": (4096, "mlp.gate_proj.weight has 128 rows where its numbers make 4,096"),
}


@pytest.mark.parametrize("field", sorted(CONFIGS))
def test_a_config_that_disagrees_with_its_weights_is_refused_before_it_is_read(
    cli, tiny_llama, tmp_path, field, isolated_home, monkeypatch
):
    import transformers

    folder = tmp_path / f"mismatch-{field}"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    value, said = CONFIGS[field]
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))

    def never(*_args, **_kwargs):  # 10^9 layers made transformers build lists of 10^9 entries (6 GB and rising)
        raise AssertionError("transformers read the config")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", never)
    got = cli(["generate", "Hi", "--model", str(folder), "-n", "2"])
    assert got.code == 1 and said in got.err and len(got.err.splitlines()) == 1, got.err
    assert not (isolated_home / "models").exists()  # nothing cached, no empty folder


def test_a_build_that_fails_leaves_no_model_folder(tmp_path):
    from nlpsuite.errors import NlpsuiteError
    from nlpsuite.modelstore.store import ModelStore

    store = ModelStore(tmp_path / "models")

    def refuse(_out):
        raise NlpsuiteError("this model cannot be converted")

    with pytest.raises(NlpsuiteError):
        store.build("broken", "fp32", refuse)
    assert list((tmp_path / "models").iterdir()) == []
