"""Shared fixtures: an isolated NLPSUITE_HOME per test and a tiny random Llama built in the tests."""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path

import pytest

# A runner started in the background (`nohup ... &` from a script) hands pytest SIGINT ignored, and every child
# inherits that: the Ctrl-C tests would send SIGINT to processes that cannot hear it. Ctrl-C means here what it
# means at a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: it reads this once

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model speaks in short sentences",
    "hello world, this is a tiny test corpus",
    "numbers like 1 2 3 and words like cat dog bird",
    "Ünïcödé text: naïve café, 東京, emoji 🙂",
] * 20
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


TINY_EOS = 4  # <|im_end|>, the tiny models' end of turn


def train_tiny_tokenizer():
    """The tiny models' byte-level BPE tokenizer (300 tokens, any text encodable), trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    return tok


def build_tiny_llama(
    folder: Path,
    layers: int = 2,
    kv_heads: int = 2,
    seed: int = 0,
    context: int = 128,
    arch: str = "llama",
    hidden: int = 64,
    **config_fields,
) -> Path:
    """A random decoder of the Llama family (``arch``: llama, mistral, qwen2, qwen3, phi3, gemma, gemma2,
    gemma3_text; ``config_fields`` override its config) with a BPE tokenizer trained here, saved as a Hugging
    Face folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = train_tiny_tokenizer()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>", unk_token="<unk>", pad_token="</s>"
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = AutoConfig.for_model(
        arch,
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=context,
        head_dim=16,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        **config_fields,
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    for name, param in model.named_parameters():  # random norms and biases, so skipping one would show
        if name.endswith(("norm.weight", ".bias")):
            param.data.normal_(1.0 if name.endswith("norm.weight") else 0.0, 0.2)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def lstm_folder(tmp_path_factory):
    """A random two-layer LSTM written through the training exporter: its state is [layers, batch, hidden]."""
    import torch

    from nlpsuite.train.models import build_model
    from nlpsuite.train.neural_graph import build_recurrent_graph, recurrent_state_spec
    from nlpsuite.train.run import write_backbone
    from nlpsuite.train.vocab import special_tokens, train_tokenizer

    out = tmp_path_factory.mktemp("lstm")
    tokenizer_file = out.parent / f"{out.name}-tokenizer.json"
    train_tokenizer("char", "abcdefghijklmnopqrstuvwxyz0123456789 ,.").save(str(tokenizer_file))
    torch.manual_seed(0)
    model = build_model("lstm", 60, 16, 2, 1, 32, 0.0)
    weights = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    manifest = {
        "architecture": {"model_type": "nlpsuite-lstm", "vocab_size": 60, "hidden_size": 16, "context_length": 64},
        "state": recurrent_state_spec("lstm", 2, 16),
        "special_tokens": special_tokens(),
        "precision": "fp32",
    }
    write_backbone(out, build_recurrent_graph("lstm", weights, 2, 16), tokenizer_file, manifest)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """The tiny models' tokenizer alone (no model), as nlpsuite's Tokenizer over its tokenizer.json."""
    from nlpsuite.runtime.tokenizer import Tokenizer

    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    train_tiny_tokenizer().save(str(folder / "tokenizer.json"))
    return Tokenizer(folder, {"eos_token_ids": [TINY_EOS], "pad_token_id": 2})


@pytest.fixture(scope="session")
def tiny_corpus() -> list[str]:
    """The lines the tiny models' tokenizer was trained on."""
    return CORPUS


@pytest.fixture(scope="session")
def make_tiny_llama():
    return build_tiny_llama


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A cache shared by tests that only read converted tiny models (conversion runs once)."""
    return tmp_path_factory.mktemp("nlpsuite-home")


@pytest.fixture(scope="session")
def real_home(tmp_path_factory) -> Path:
    """The cache for end-to-end tests (NLPSUITE_TEST_HOME reuses one across runs)."""
    override = os.environ.get("NLPSUITE_TEST_HOME")
    return Path(override) if override else tmp_path_factory.mktemp("nlpsuite-real")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch, request):
    """Each test gets its own NLPSUITE_HOME unless it asks for a shared cache (tiny or real model)."""
    if "e2e" in request.keywords:
        home = request.getfixturevalue("real_home")
    elif "shared_cache" in request.keywords:
        home = request.getfixturevalue("tiny_cache")
    else:
        home = tmp_path / "home"
    monkeypatch.setenv("NLPSUITE_HOME", str(home))
    for var in ("NLPSUITE_MODEL", "NLPSUITE_DEVICE", "NLPSUITE_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from nlpsuite import plugins

    plugins.reset()
    yield home
    plugins.reset()


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the nlpsuite CLI in-process: cli(["generate", ...], stdin=b"...") -> CliResult."""
    from nlpsuite.cli.app import main

    def run(args: list[str], stdin: bytes | None = None) -> CliResult:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def pytest_configure(config):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
