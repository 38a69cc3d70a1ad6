"""Training language models: each architecture learns, exports to the backbone contract with torch's
logits, generates through the CLI, and resumes after an interruption; Kneser-Ney is a distribution."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nlpsuite.train.config import TrainConfig
from nlpsuite.train.display import Reporter

NEURAL = ("rnn", "lstm", "gru", "transformer")
SMALL = dict(hidden=32, layers=2, heads=4, context=32, batch_size=8, lr=1e-2, dropout=0.0, epochs=2, patience=5)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("NLPSUITE_THREADS", "1")  # torch's default threads fight over small machines


class Losses(Reporter):
    def __init__(self) -> None:
        self.steps: list[float] = []

    def step(self, epoch, batch, batches, loss) -> None:
        self.steps.append(loss)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_corpus) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(tiny_corpus) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """Each architecture trained once on the tiny corpus: (folder, summary, per-step losses)."""
    from nlpsuite.train.run import train

    def make(arch: str):
        if arch not in cache:
            out = tmp_path_factory.mktemp(arch)
            losses = Losses()
            config = TrainConfig(arch=arch, **(SMALL if arch != "ngram" else {"order": 3, "context": 32}))
            cache[arch] = (out, train(config, corpus, out, losses), losses.steps)
        return cache[arch]

    cache: dict = {}
    return make


def _torch_model(out: Path):
    import torch
    from safetensors.torch import load_file

    from nlpsuite.train.models import build_model

    cfg = json.loads((out / "manifest.json").read_text())["training"]
    vocab = json.loads((out / "manifest.json").read_text())["architecture"]["vocab_size"]
    model = build_model(cfg["arch"], vocab, cfg["hidden"], cfg["layers"], cfg["heads"], cfg["context"], 0.0)
    model.load_state_dict(load_file(str(out / "checkpoint" / "best.safetensors")))
    return model.eval(), torch


def _run(backbone, ids: np.ndarray, state, mask=None):
    """All positions' logits of one forward from position 0 (left padding allowed)."""
    mask = np.ones_like(ids) if mask is None else mask
    positions = np.maximum(mask.cumsum(axis=1) - 1, 0)
    return backbone.forward(ids, mask, positions, state, num_logits=ids.shape[1])


@pytest.mark.parametrize("arch", NEURAL)
def test_each_architecture_learns_and_its_onnx_logits_match_torch(trained, arch):
    from nlpsuite.runtime.backbone import Backbone

    out, summary, steps = trained(arch)
    assert np.mean(steps[-5:]) < steps[0] - 0.3, steps  # the loss falls
    assert summary["val_loss"] < np.log(summary["vocab_size"]) - 0.3  # better than guessing uniformly
    assert set(summary) >= {"arch", "params", "train_loss", "val_loss", "val_perplexity", "tokenizer"}
    assert summary["val_perplexity"] == pytest.approx(np.exp(summary["val_loss"]), rel=1e-3)
    # The loss measured on the exported graph is the torch validation loss of the best epoch.
    history = json.loads((out / "training.json").read_text())["history"]
    assert summary["val_loss"] == pytest.approx(min(r["val_loss"] for r in history), abs=1e-3)

    model, torch = _torch_model(out)
    backbone = Backbone(out, "cpu")
    ids = np.random.default_rng(0).integers(2, summary["vocab_size"], size=(2, 24))
    with torch.no_grad():
        reference = model(torch.from_numpy(ids))[0].numpy()
    whole = _run(backbone, ids, backbone.empty_state(2))
    np.testing.assert_allclose(whole.logits, reference, atol=1e-4)
    # The state carried from one call into the next gives the same logits as one long call.
    first = _run(backbone, ids[:, :10], backbone.empty_state(2))
    second = backbone.forward(
        ids[:, 10:], np.ones((2, 24), np.int64), np.tile(np.arange(10, 24), (2, 1)), first.state, num_logits=14
    )
    np.testing.assert_allclose(np.concatenate([first.logits, second.logits], axis=1), reference, atol=1e-4)
    # Left padding leaves a shorter row's logits as if it ran alone.
    padded, mask = ids.copy(), np.ones_like(ids)
    padded[1, :7], mask[1, :7] = 0, 0
    with torch.no_grad():
        alone = model(torch.from_numpy(ids[1:, 7:]))[0].numpy()[0]
    np.testing.assert_allclose(_run(backbone, padded, backbone.empty_state(2), mask).logits[1, 7:], alone, atol=1e-4)


@pytest.mark.parametrize("arch", ["ngram", *NEURAL])
def test_generate_runs_on_a_trained_model(trained, cli, arch):
    out, _, _ = trained(arch)
    result = cli(["generate", "the quick", "--model", str(out), "-n", "12", "--ignore-eos", "--json"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["usage"]["completion_tokens"] == 12 and data["text"]


@pytest.mark.parametrize("arch", ["ngram", "gru", "transformer"])
def test_padded_batches_generate_what_single_prompts_do(trained, arch):
    """Left padding must not disturb an RNN's state or an n-gram's history (greedy, batch of two)."""
    from nlpsuite.runtime.backbone import Backbone
    from nlpsuite.runtime.generation import Generator
    from nlpsuite.runtime.sampling import SamplingParams
    from nlpsuite.runtime.tokenizer import Tokenizer

    out, _, _ = trained(arch)
    backbone = Backbone(out, "cpu")
    generator = Generator(backbone, Tokenizer(out, backbone.manifest["special_tokens"]))
    prompts = [generator.tokenizer.encode("the quick brown fox"), generator.tokenizer.encode("a")]
    params = SamplingParams(max_tokens=10, ignore_eos=True)
    together = [c.token_ids for c in generator.generate(prompts, params)]
    assert together == [generator.generate([p], params)[0].token_ids for p in prompts]


def test_kneser_ney_is_a_distribution_and_its_graph_agrees(trained, corpus):
    from nlpsuite.runtime.backbone import Backbone
    from nlpsuite.runtime.tokenizer import Tokenizer
    from nlpsuite.train.ngram import KneserNey
    from nlpsuite.train.run import split_corpus

    rng = np.random.default_rng(1)
    ids = rng.integers(0, 12, size=400)
    ids[::7] = 3  # some structure, so that orders and discounts differ
    model = KneserNey.fit(ids, 4, vocab_size=15)  # ids 12..14 never occur
    for history in ([], [3], [3, 5], list(ids[:50]), [14, 13, 12], [0, 3, 3]):
        dist = model.distribution(history)
        assert dist.sum() == pytest.approx(1.0, abs=1e-12) and (dist > 0).all()
    seq = ids[:60]
    expected = [np.log(model.distribution(list(seq[:t]))[seq[t]]) for t in range(1, len(seq))]
    np.testing.assert_allclose(model.log_probs(seq), expected, rtol=1e-12)
    assert model.distribution([1, 2, 3])[12] < model.distribution([1, 2, 3])[3]

    # The exported graph gives the numpy model's probabilities (refitted here on the same training split).
    out, summary, _ = trained("ngram")
    backbone = Backbone(out, "cpu")
    tokenizer = Tokenizer(out, backbone.manifest["special_tokens"])
    assert backbone.state_spec[0]["grow_axis"] is None
    text = corpus.read_text(encoding="utf-8")
    refit = KneserNey.fit(np.array(tokenizer.encode(split_corpus(text, 0.1)[0])), 3, summary["vocab_size"])
    assert refit.size == summary["params"]
    tokens = np.array(tokenizer.encode(text[-300:]))
    step = _run(backbone, tokens[None], backbone.empty_state(1))
    assert np.exp(step.logits[0]).sum(axis=-1) == pytest.approx(np.ones(len(tokens)), abs=1e-5)
    graph = step.logits[0, np.arange(len(tokens) - 1), tokens[1:]]
    np.testing.assert_allclose(graph, refit.log_probs(tokens), atol=1e-5)


def test_cross_entropy_windows_equal_a_direct_computation(trained, corpus):
    """n-gram: windows that keep order-1 tokens of context give exactly the full-history numbers.
    Transformer: each windowed token's log-probability is that of a forward over its own window."""
    from nlpsuite.eval.lm import _log_softmax_at, cross_entropy, window_spans
    from nlpsuite.runtime.backbone import Backbone
    from nlpsuite.runtime.tokenizer import Tokenizer

    spans = window_spans(50, 8, 3)
    scored = [t for _, e, f in spans for t in range(f, e)]
    assert scored == list(range(1, 50))
    assert all(f - b >= 5 for b, e, f in spans[1:])

    text = corpus.read_text(encoding="utf-8")[:400]
    out, _, _ = trained("ngram")
    backbone = Backbone(out, "cpu")
    tokenizer = Tokenizer(out, backbone.manifest["special_tokens"])
    ids = tokenizer.encode(text, add_special_tokens=False)
    direct = _run(backbone, np.array([ids]), backbone.empty_state(1)).logits[0]
    direct_nats = -np.mean([direct[t - 1, ids[t]] for t in range(1, len(ids))])
    windowed = cross_entropy(backbone, tokenizer, text, window=16, stride=8)
    assert windowed["tokens"] == len(ids) - 1
    assert windowed["nats_per_token"] == pytest.approx(direct_nats, rel=1e-5)
    assert windowed["perplexity"] == pytest.approx(np.exp(direct_nats), rel=1e-5)
    assert windowed["bits_per_char"] == pytest.approx(direct_nats * (len(ids) - 1) / np.log(2) / (len(text) - 1))

    out, _, _ = trained("transformer")
    backbone = Backbone(out, "cpu")
    tokenizer = Tokenizer(out, backbone.manifest["special_tokens"])
    text = text[:40]
    ids = tokenizer.encode(text)
    total = 0.0
    for begin, end, first in window_spans(len(ids), 12, 5):
        for t in range(first, end):
            logits = _run(backbone, np.array([ids[begin:t]]), backbone.empty_state(1)).logits[0, -1:]
            total -= float(_log_softmax_at(logits, np.array([ids[t]]))[0])
    result = cross_entropy(backbone, tokenizer, text, window=12, stride=5, batch_size=2)
    assert result["tokens"] == len(ids) - 1
    assert result["nats_per_token"] == pytest.approx(total / (len(ids) - 1), rel=1e-5)
    whole = cross_entropy(backbone, tokenizer, text, window=64, stride=64)
    assert whole["nats_per_token"] != pytest.approx(result["nats_per_token"], rel=1e-6)  # less context, other loss


def _resume_config(tmp_path: Path) -> TrainConfig:
    return TrainConfig(arch="lstm", **{**SMALL, "dropout": 0.2, "layers": 1}, save_every_s=0.0)


def test_resume_after_interrupt_restores_the_step_and_the_result(corpus, tmp_path):
    import torch
    from safetensors.torch import load_file

    from nlpsuite.train.run import train

    cfg = _resume_config(tmp_path)
    reference = train(cfg, corpus, tmp_path / "straight")

    def stop_at(n):
        def hook(trainer, step):
            if step == n:
                trainer.request_stop()  # what Ctrl-C or SIGTERM does

        return hook

    def crash_at(n):
        def hook(trainer, step):
            if step == n:
                raise RuntimeError("killed")  # no chance to save: like kill -9

        return hook

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, corpus, out, on_step=stop_at(5))
    with pytest.raises(RuntimeError):
        train(cfg, corpus, out, on_step=crash_at(9))  # resumes at 5, saves after each step, dies in step 9
    resumed = train(cfg, corpus, out)
    assert resumed["resumed_from_step"] == 8  # the last step saved before the kill
    assert resumed["steps"] == reference["steps"]
    assert resumed["val_loss"] == reference["val_loss"] and resumed["train_loss"] == reference["train_loss"]
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "best.safetensors"))
    b = load_file(str(out / "checkpoint" / "best.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)

    again = train(replace(cfg, epochs=3), corpus, out)  # more epochs continue the same run
    assert again["resumed_from_step"] == reference["steps"] and again["steps"] > reference["steps"]


def test_train_cli_json_and_one_line_errors(cli, corpus, tmp_path):
    out = tmp_path / "model"
    result = cli(["train", str(corpus), "--arch", "ngram", "--out", str(out), "--order", "3", "--json"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {"arch", "params", "train_loss", "val_loss", "val_perplexity", "tokenizer"} <= set(data)
    assert data["arch"] == "ngram" and data["tokenizer"] == "char"
    assert (out / "training.json").is_file()

    changed = cli(["train", str(corpus), "--arch", "ngram", "--out", str(out), "--order", "4"])
    assert changed.code == 1 and "different --order" in changed.err and "--restart" in changed.err
    assert len(changed.err.strip().splitlines()) == 1
    fresh = cli(["train", str(corpus), "--arch", "ngram", "--out", str(out), "--order", "4", "--restart", "--json"])
    assert fresh.code == 0 and json.loads(fresh.out)["val_loss"] != data["val_loss"]

    for args, message in (
        (["--arch", "cnn"], "error: unknown architecture 'cnn'"),
        (["--arch", "lstm", "--tokenizer", "word"], "error: unknown tokenizer 'word'"),
        (["--arch", "transformer", "--hidden", "30"], "error: --hidden must be a multiple of --heads"),
        (["--arch", "lstm", "--context", "100000"], "error: the training text has"),
    ):
        bad = cli(["train", str(corpus), "--out", str(tmp_path / "bad"), *args])
        assert bad.code == 1 and bad.err.strip().startswith(message), bad.err
        assert len(bad.err.strip().splitlines()) == 1
    missing = cli(["train", str(tmp_path / "nope.txt"), "--arch", "ngram", "--out", str(tmp_path / "x")])
    assert missing.code == 1 and "cannot read" in missing.err


def test_a_neural_model_without_torch_asks_for_the_train_extra_in_one_line(cli, corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in an install without the train extra: import fails
    result = cli(["train", str(corpus), "--arch", "lstm", "--out", str(tmp_path / "m")])
    assert result.code == 1 and result.err.strip().splitlines() == [
        "error: training the lstm model needs torch: pip install 'nlpsuite[train]' (the n-gram model does not)"
    ]
    assert cli(["train", str(corpus), "--arch", "ngram", "--out", str(tmp_path / "n")]).code == 0


def test_bpe_tokenizer_round_trips_and_trains(corpus, tmp_path):
    from nlpsuite.runtime.backbone import Backbone
    from nlpsuite.runtime.tokenizer import Tokenizer
    from nlpsuite.train.run import train

    out = tmp_path / "bpe"
    summary = train(TrainConfig(arch="ngram", tokenizer="bpe", vocab_size=300, order=3, context=16), corpus, out)
    assert summary["tokenizer"] == "bpe" and summary["vocab_size"] == 300
    tokenizer = Tokenizer(out, Backbone(out, "cpu").manifest["special_tokens"])
    text = "naïve café 東京 🙂 unseen words"
    assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.mark.parametrize("arch", ["ngram", "lstm"])
def test_scoring_and_embedding_heads_run_on_trained_models(trained, arch):
    """The label scorer repeats the prompt's state along its batch axis and right-pads the labels."""
    from nlpsuite import Suite
    from nlpsuite.heads.scoring import log_softmax

    out, _, _ = trained(arch)
    suite = Suite(model=str(out), device="cpu")
    prompt = suite.tokenizer.encode("the quick brown")
    labels = ["fox", "dog jumps", "z"]
    scores = suite.head("scoring").log_likelihoods(prompt, labels)
    for label, score in zip(labels, scores, strict=True):
        ids = prompt + suite.tokenizer.encode(label)
        logp = log_softmax(_run(suite.backbone, np.array([ids]), suite.backbone.empty_state(1)).logits[0])
        direct = sum(logp[t - 1, ids[t]] for t in range(len(prompt), len(ids)))
        assert score == pytest.approx(direct, abs=1e-4)
    vectors = suite.head("embedding")(["the quick brown fox", "a"])
    assert vectors.shape[0] == 2 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
