"""The LoRA training loop of `nlpsuite tune`: seeded batches, AdamW with warm-up and linear decay, a checkpoint
(adapters, optimizer moments, RNG state, position) every ``save_every_s`` and on Ctrl-C, resumed by the same
command; at the end the adapters are merged and the model saved as a Hugging Face folder (written whole, then
renamed into place)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

from .display import Reporter
from .loop import _load, _save, graceful_stop, optimizer_tensors, restore_optimizer
from .tune_config import TuneConfig, steps_per_epoch, tuned_dir

LAST = "adapters.safetensors"
WARMUP_STEPS = 10


def _batches(n: int, cfg: TuneConfig, epoch: int) -> list[list[int]]:
    """An epoch's batches of example indices: a seeded order, nothing else (a resumed run takes the same steps)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    return [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]


def _rate(cfg: TuneConfig, step: int, total: int) -> float:
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    return cfg.lr * warm * max(0.0, 1.0 - step / max(total, 1))


def train_adapters(suite, examples, cfg: TuneConfig, work: Path, reporter: Reporter) -> Path:
    """Train adapters on ``examples`` (resuming from ``work``'s checkpoint), merge them, and save the model to
    tuned_dir(the work folder's name); returns that folder. A finished run's folder is returned as it is."""
    from ..modelstore.resolve import source_files
    from .lora import adapter_state, add_lora, example_loss, load_source

    out = tuned_dir(work.name)
    if (work / "merged").is_file() and out.is_dir():
        return out
    threads = os.environ.get("NLPSUITE_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    torch.manual_seed(cfg.seed)
    location, gguf_file, _ = source_files(suite.source)
    model, tokenizer, generation = load_source(location, gguf_file)
    adapters = add_lora(model, cfg.rank, cfg.alpha)
    params = [p for a in adapters.values() for p in (a.lora_a, a.lora_b)]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    state = _restore(work / LAST, adapters, optimizer) or {"epoch": 0, "batch": 0, "step": 0, "history": [],
                                                            "loss_sum": 0.0, "loss_count": 0}  # fmt: skip
    per_epoch = steps_per_epoch(len(examples), cfg.batch_size)
    reporter.start(
        {
            "arch": f"LoRA rank {cfg.rank} on {suite.source.key}",
            "params": sum(p.numel() for p in params),
            "train_tokens": sum(len(c) for e in examples for _, c in e.alternatives),
            "val_tokens": 0,
            "tokenizer": "the model's",
            "vocab_size": suite.backbone.vocab_size,
            "steps_per_epoch": per_epoch,
            "resumed_from_step": state["step"],
        }
    )
    stop = {"asked": False}
    last_save = time.monotonic()
    pad = suite.tokenizer.pad_token_id
    model.train()
    try:
        with graceful_stop(lambda: stop["asked"], lambda: stop.update(asked=True)):
            while state["epoch"] < cfg.epochs:
                batches = _batches(len(examples), cfg, state["epoch"])
                started = time.monotonic()
                for index in range(state["batch"], len(batches)):
                    loss, count = example_loss(model, [examples[i] for i in batches[index]], pad)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    for group in optimizer.param_groups:
                        group["lr"] = _rate(cfg, state["step"], cfg.epochs * per_epoch)
                    optimizer.step()
                    state["loss_sum"] += loss.item() * count
                    state["loss_count"] += count
                    state.update(batch=index + 1, step=state["step"] + 1)
                    reporter.step(state["epoch"], index + 1, len(batches), loss.item())
                    if stop["asked"] or time.monotonic() - last_save >= cfg.save_every_s:
                        _checkpoint(work / LAST, adapter_state(adapters), optimizer, state)
                        last_save = time.monotonic()
                    if stop["asked"]:
                        reporter.note(
                            f"stopped at step {state['step']}; checkpoint saved: run the same command to resume"
                        )
                        raise KeyboardInterrupt
                record = {
                    "epoch": state["epoch"] + 1, "step": state["step"],
                    "train_loss": state["loss_sum"] / max(state["loss_count"], 1),
                    "val_loss": float("nan"), "lr": _rate(cfg, state["step"], cfg.epochs * per_epoch),
                    "seconds": time.monotonic() - started, "best": False,
                }  # fmt: skip
                state["history"].append(record)
                reporter.epoch(record)
                state.update(epoch=state["epoch"] + 1, batch=0, loss_sum=0.0, loss_count=0)
                _checkpoint(work / LAST, adapter_state(adapters), optimizer, state)
    finally:
        reporter.close()
    return _merged(model, tokenizer, generation, out, work)


def _merged(model, tokenizer, generation, out: Path, work: Path) -> Path:
    """The adapters merged into the weights, saved whole to ``out`` (never a half-written folder there)."""
    from .lora import merge_lora, save_merged

    merge_lora(model)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_merged(model.eval(), tokenizer, generation, tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (work / "merged").write_text(str(out), encoding="utf-8")
    return out


def _checkpoint(path: Path, adapters: dict, optimizer, state: dict) -> None:
    tensors = {f"adapter/{k}": v for k, v in adapters.items()}
    _save(path, {**tensors, **optimizer_tensors(optimizer)}, state)


def _restore(path: Path, adapters: dict, optimizer) -> dict | None:
    from .lora import load_adapter_state

    if not path.is_file():
        return None
    tensors, state = _load(path)
    load_adapter_state(adapters, {k[8:]: v for k, v in tensors.items() if k.startswith("adapter/")})
    restore_optimizer(optimizer, tensors)
    return state
