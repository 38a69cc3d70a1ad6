"""One training run end to end: corpus -> tokenizer -> model -> ONNX backbone in OUT -> its measured loss.

OUT ends up as a converted-model folder (model.onnx, tokenizer.json, manifest.json) that
``--model OUT`` loads like any other backbone, plus ``training.json`` (what was measured) and
``checkpoint/`` (what a rerun resumes from). The reported validation loss is measured on the
exported graph through ONNX Runtime, with ``lm_eval.cross_entropy``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..artefacts import MANIFEST_FILE, MANIFEST_VERSION, MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from ..convert import save_graph, versions
from ..errors import NlpsuiteError
from ..fsutil import read_utf8, write_json_atomic
from ..modelstore.integrity import hash_files
from ..text import blank
from .config import TrainConfig
from .display import Reporter
from .vocab import CONTINUATION_TEMPLATE, load_tokenizer, special_tokens, train_tokenizer

RESULT_FILE = "training.json"
CHECKPOINTS = "checkpoint"
UNBOUNDED_CONTEXT = 1 << 20  # recurrent and n-gram models read any length; this only bounds the decoding loop


def split_corpus(text: str, fraction: float) -> tuple[str, str]:
    """The last ``fraction`` of the text is held out, cut at a line break when one is near."""
    cut = int(len(text) * (1 - fraction))
    newline = text.find("\n", cut, cut + 2000)
    if newline != -1 and newline + 1 < len(text):
        cut = newline + 1
    return text[:cut], text[cut:]


def write_backbone(out: Path, graph, tokenizer_file: Path, manifest: dict) -> dict:
    """Write the graph, tokenizer and (last, so a half-written folder is never trusted) the manifest."""
    for name in (MANIFEST_FILE, MODEL_FILE, WEIGHTS_FILE):  # onnx appends to an existing weights file
        (out / name).unlink(missing_ok=True)
    save_graph(graph, out)
    tmp = out / f".{TOKENIZER_FILE}.tmp"
    shutil.copyfile(tokenizer_file, tmp)
    os.replace(tmp, out / TOKENIZER_FILE)
    files = [n for n in (MODEL_FILE, WEIGHTS_FILE, TOKENIZER_FILE) if (out / n).is_file()]
    manifest = {**manifest, "format_version": MANIFEST_VERSION, "files": {n: (out / n).stat().st_size for n in files}}
    manifest["sha256"] = hash_files(out, files)
    write_json_atomic(out / MANIFEST_FILE, manifest)
    return manifest


def _prepare(cfg: TrainConfig, text: str, ckpt: Path, restart: bool):
    """Check (or record) which run the checkpoint folder belongs to; the tokenizer, trained once."""
    identity = {"config": cfg.identity(), "corpus_sha256": hashlib.sha256(text.encode()).hexdigest()}
    run_file = ckpt / "run.json"
    if restart and ckpt.exists():
        shutil.rmtree(ckpt)
    if run_file.is_file():
        prior = json.loads(run_file.read_text(encoding="utf-8"))
        if prior != identity:
            changed = sorted(k for k in identity["config"] if prior.get("config", {}).get(k) != identity["config"][k])
            what = ("the corpus" if prior.get("corpus_sha256") != identity["corpus_sha256"] else "") or ", ".join(
                f"--{k.replace('_', '-')}" for k in changed
            )
            raise NlpsuiteError(
                f"{ckpt.parent} holds a run with a different {what}; pass --restart to start over or use another --out"
            )
    else:
        ckpt.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_file, identity)
    train_text, val_text = split_corpus(text, cfg.val_fraction)
    tok_file = ckpt / TOKENIZER_FILE
    if tok_file.is_file():
        tokenizer = load_tokenizer(tok_file)
    else:
        tokenizer = train_tokenizer(cfg.tokenizer, train_text, cfg.vocab_size)
        tmp = ckpt / f".{TOKENIZER_FILE}.tmp"
        tokenizer.save(str(tmp))
        os.replace(tmp, tok_file)
    return tokenizer, tok_file, train_text, val_text


def _numpy_weights(weights) -> dict[str, np.ndarray]:
    return {k: v.detach().float().numpy() for k, v in weights.items()}


def train(
    cfg: TrainConfig,
    corpus: Path,
    out: Path,
    reporter: Reporter | None = None,
    restart: bool = False,
    on_step: Callable | None = None,
) -> dict:
    """Train ``cfg.arch`` on the UTF-8 text file ``corpus`` and export it to ``out``; returns the summary."""
    from filelock import FileLock, Timeout

    cfg.check()
    if cfg.arch != "ngram":
        try:
            import torch  # noqa: F401 - the neural trainers' one dependency beyond the base install
        except ImportError:
            raise NlpsuiteError(
                f"training the {cfg.arch} model needs torch: pip install 'nlpsuite[train]' (the n-gram model does not)"
            ) from None
    started = time.monotonic()
    text = read_utf8(Path(corpus))
    if blank(text):
        raise NlpsuiteError(f"{corpus} is empty")
    out = Path(out)
    ckpt = out / CHECKPOINTS
    try:
        ckpt.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NlpsuiteError(f"cannot write to {out}: {exc.strerror or exc}") from None
    reporter = reporter or Reporter()
    try:
        with FileLock(str(out / ".train.lock"), timeout=0):
            result = _train_locked(cfg, Path(corpus), text, out, ckpt, reporter, restart, on_step)
    except Timeout:
        raise NlpsuiteError(f"another training run is writing to {out}") from None
    result["seconds"] = round(time.monotonic() - started, 1)
    write_json_atomic(out / RESULT_FILE, result)
    return {k: v for k, v in result.items() if k != "history"}


def _train_locked(cfg, corpus: Path, text: str, out: Path, ckpt: Path, reporter, restart, on_step) -> dict:
    tokenizer, tok_file, train_text, val_text = _prepare(cfg, text, ckpt, restart)
    vocab = tokenizer.get_vocab_size()
    train_ids = np.array(tokenizer.encode(train_text).ids, np.int64)
    val_ids = np.array(tokenizer.encode(val_text).ids, np.int64)
    if len(val_ids) < 2:
        raise NlpsuiteError("the validation split has fewer than two tokens: raise --val-fraction or add text")
    arch: dict = {"model_type": f"nlpsuite-{cfg.arch}", "vocab_size": vocab, "trained_context": cfg.context}
    summary: dict = {"history": [], "steps": 0, "resumed_from_step": 0, "stopped_early": False}
    if cfg.arch == "ngram":
        from .ngram import KneserNey
        from .ngram_graph import build_ngram_graph, ngram_state_spec

        reporter.note(f"counting {cfg.order}-grams of {len(train_ids):,} tokens")
        model = KneserNey.fit(train_ids, cfg.order, vocab)
        graph, state = build_ngram_graph(model), ngram_state_spec(cfg.order)
        params, train_loss = model.size, float(-model.log_probs(train_ids).mean())
        arch.update(num_layers=0, hidden_size=vocab, context_length=UNBOUNDED_CONTEXT, order=cfg.order)
    else:
        from ..convert.graph import kv_state_spec
        from .loop import Trainer
        from .neural_graph import build_recurrent_graph, build_transformer_graph, recurrent_state_spec

        done = Trainer(cfg, vocab, train_ids, val_ids, ckpt, reporter, on_step).run()
        weights = _numpy_weights(done["weights"])
        params, train_loss = done["params"], done["best"]["train_loss"] if done["best"] else math.nan
        summary.update({k: done[k] for k in ("history", "steps", "resumed_from_step", "stopped_early")})
        arch.update(num_layers=cfg.layers, hidden_size=cfg.hidden)
        if cfg.arch == "transformer":
            graph = build_transformer_graph(weights, cfg.layers, cfg.heads)
            state = kv_state_spec(cfg.layers, cfg.heads, cfg.hidden // cfg.heads)
            arch.update(num_heads=cfg.heads, head_dim=cfg.hidden // cfg.heads, context_length=cfg.context)
        else:
            graph = build_recurrent_graph(cfg.arch, weights, cfg.layers, cfg.hidden)
            state = recurrent_state_spec(cfg.arch, cfg.layers, cfg.hidden)
            arch.update(context_length=UNBOUNDED_CONTEXT)
    manifest = {
        "name": out.resolve().name,
        "architecture": arch,
        "state": state,
        "special_tokens": special_tokens(),
        "chat_template": CONTINUATION_TEMPLATE,
        "precision": "fp32",
        "source": {
            "kind": "trained",
            "location": str(corpus.resolve()),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        },
        "training": asdict(cfg),
        "exporter": versions("nlpsuite", "torch", "onnx", "tokenizers"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest = write_backbone(out, graph, tok_file, manifest)
    reporter.note("measuring the exported model on the validation text (ONNX Runtime)")
    measured = evaluate(out, manifest, val_text, cfg.context)
    return {
        "arch": cfg.arch,
        "params": int(params),
        "train_loss": round(train_loss, 4),
        "val_loss": round(measured["nats_per_token"], 4),
        "val_perplexity": round(measured["perplexity"], 3),
        "tokenizer": cfg.tokenizer,
        "vocab_size": vocab,
        "val_bits_per_char": round(measured["bits_per_char"], 4),
        "val_tokens": measured["tokens"],
        "epochs": len(summary["history"]),
        **{k: summary[k] for k in ("steps", "resumed_from_step", "stopped_early", "history")},
        "out": str(out),
    }


def evaluate(out: Path, manifest: dict, text: str, context: int) -> dict:
    """Cross-entropy of the exported backbone on ``text``, in windows of the training context."""
    from ..eval.lm import cross_entropy
    from ..runtime.backbone import Backbone
    from ..runtime.tokenizer import Tokenizer

    backbone = Backbone(out, "cpu")
    tokenizer = Tokenizer(out, manifest["special_tokens"])
    return cross_entropy(backbone, tokenizer, text, window=context, stride=max(1, context // 2))
