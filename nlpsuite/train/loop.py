"""The training loop of the neural models: AdamW, clipping, validation, early stopping, checkpoints.

A checkpoint is one safetensors file (weights, optimizer moments, torch's RNG state) whose metadata
holds the loop's position as JSON, written to a temporary name and renamed: a kill at any moment
leaves either the old checkpoint or the new one. The batch order of an epoch depends only on the
seed and the epoch, so a resumed run takes the same steps as one that was never interrupted.
Ctrl-C (or SIGTERM) finishes the current step, saves and stops.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import Interrupted
from ..eval.lm import window_spans
from .config import TrainConfig
from .display import Reporter
from .models import build_model, count_parameters

LAST, BEST = "last.safetensors", "best.safetensors"
WARMUP_STEPS = 50


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), {"trainer": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
        meta = json.loads((fh.metadata() or {})["trainer"])
    return tensors, meta


def optimizer_tensors(optimizer) -> dict[str, torch.Tensor]:
    """An optimizer's moments and the torch RNG, as checkpoint tensors (``restore_optimizer`` reads them back)."""
    tensors = {"rng/torch": torch.get_rng_state()}
    for index, values in optimizer.state_dict()["state"].items():
        tensors.update({f"optim/{index}/{k}": v for k, v in values.items() if torch.is_tensor(v)})
    return tensors


def restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], lr: float | None = None) -> None:
    """Put back what ``optimizer_tensors`` saved (and the learning rate, where given)."""
    moments: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            moments.setdefault(int(index), {})[name] = value
    groups = optimizer.state_dict()["param_groups"]
    for group in groups if lr is not None else ():
        group["lr"] = lr
    optimizer.load_state_dict({"state": moments, "param_groups": groups})
    torch.set_rng_state(tensors["rng/torch"])


@contextlib.contextmanager
def graceful_stop(requested: Callable[[], bool], request: Callable[[], None]):
    """SIGINT/SIGTERM ask a loop to stop after its step (``request``); a second Ctrl-C stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(signum, _frame):
        if requested() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request()

    previous = {s: signal.signal(s, ask) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Trainer:
    """Trains one model on token ids; ``run()`` returns the best weights and what happened."""

    def __init__(
        self,
        config: TrainConfig,
        vocab_size: int,
        train_ids: np.ndarray,
        val_ids: np.ndarray,
        checkpoints: Path,
        reporter: Reporter | None = None,
        on_step: Callable[[Trainer, int], None] | None = None,
    ) -> None:
        self.cfg, self.vocab = config, vocab_size
        self.train_ids = torch.from_numpy(np.asarray(train_ids, np.int64))
        self.val_ids = np.asarray(val_ids, np.int64)
        self.dir = checkpoints
        self.reporter = reporter or Reporter()
        self.on_step = on_step
        self.stop_requested = False
        if len(self.train_ids) < config.context + 1:
            from ..errors import NlpsuiteError

            raise NlpsuiteError(
                f"the training text has {len(self.train_ids)} tokens, fewer than --context {config.context} + 1"
            )

    def request_stop(self) -> None:
        """Stop after the current step, saving a checkpoint (what Ctrl-C does)."""
        self.stop_requested = True

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """Window starts for each batch of ``epoch``: a seeded offset and order, nothing else."""
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        context = self.cfg.context
        offset = int(torch.randint(0, context, (1,), generator=gen)) if len(self.train_ids) > 2 * context else 0
        starts = torch.arange(offset, len(self.train_ids) - context, context)
        starts = starts[torch.randperm(len(starts), generator=gen)]
        return list(starts.split(self.cfg.batch_size))

    def _windows(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + torch.arange(self.cfg.context + 1)
        chunk = self.train_ids[idx]
        return chunk[:, :-1], chunk[:, 1:]

    @torch.no_grad()
    def validate(self, model) -> float:
        """Mean nats per token on the validation ids, in the same sliding windows as lm_eval.cross_entropy."""
        model.eval()
        context = self.cfg.context
        spans = window_spans(len(self.val_ids), context, max(1, context // 2))
        total, count = 0.0, 0
        groups: dict[int, list] = {}
        for span in spans:
            groups.setdefault(span[1] - span[0], []).append(span)
        for group in groups.values():
            for at in range(0, len(group), 64):
                batch = group[at : at + 64]
                ids = torch.from_numpy(np.stack([self.val_ids[b:e] for b, e, _ in batch]))
                logp = torch.log_softmax(model(ids)[0].double(), dim=-1)
                for row, (begin, end, first) in enumerate(batch):
                    targets = torch.from_numpy(self.val_ids[first:end])
                    picked = logp[row, first - 1 - begin : end - 1 - begin].gather(1, targets[:, None])
                    total -= float(picked.sum())
                    count += end - first
        return total / count

    def _checkpoint(self, model, optimizer, state: dict) -> None:
        tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
        _save(self.dir / LAST, {**tensors, **optimizer_tensors(optimizer)}, state)
        self._last_save = time.monotonic()

    def _restore(self, model, optimizer) -> dict | None:
        if not (self.dir / LAST).is_file():
            return None
        tensors, state = _load(self.dir / LAST)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
        restore_optimizer(optimizer, tensors, state["lr"])
        return state

    def _graceful_stop(self):
        return graceful_stop(lambda: self.stop_requested, self.request_stop)

    def run(self) -> dict:
        cfg = self.cfg
        threads = os.environ.get("NLPSUITE_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # the same knob as ONNX Runtime's; 1 avoids oversubscription
            torch.set_num_threads(int(threads))
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.arch, self.vocab, cfg.hidden, cfg.layers, cfg.heads, cfg.context, cfg.dropout)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._restore(model, optimizer) or {
            "epoch": 0,
            "batch": 0,
            "step": 0,
            "best_val": math.inf,
            "bad_epochs": 0,
            "lr": cfg.lr,
            "loss_sum": 0.0,
            "loss_count": 0,
            "epoch_seconds": 0.0,
            "history": [],
            "stopped_early": False,
        }
        resumed_from = state["step"]
        self.reporter.start(
            {
                "arch": cfg.arch,
                "params": count_parameters(model),
                "train_tokens": len(self.train_ids),
                "val_tokens": len(self.val_ids),
                "tokenizer": cfg.tokenizer,
                "vocab_size": self.vocab,
                "steps_per_epoch": len(self._batches(state["epoch"])),
                "resumed_from_step": resumed_from,
            }
        )
        self._last_save = time.monotonic()
        try:
            with self._graceful_stop():
                self._train(model, optimizer, state)
        finally:
            self.reporter.close()
        best = self.dir / BEST
        weights = _load(best)[0] if best.is_file() else {k: v for k, v in model.state_dict().items()}
        best_record = min(state["history"], key=lambda r: r["val_loss"]) if state["history"] else None
        return {
            "weights": weights,
            "params": count_parameters(model),
            "history": state["history"],
            "best": best_record,
            "steps": state["step"],
            "resumed_from_step": resumed_from,
            "stopped_early": state["stopped_early"],
        }

    def _train(self, model, optimizer, state: dict) -> None:
        cfg = self.cfg
        while not state["stopped_early"] and state["epoch"] < cfg.epochs:
            batches = self._batches(state["epoch"])
            started = time.monotonic() - state["epoch_seconds"]
            model.train()
            for index in range(state["batch"], len(batches)):
                x, y = self._windows(batches[index])
                logits, _ = model(x)
                loss = F.cross_entropy(logits.reshape(-1, self.vocab), y.reshape(-1))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                for group in optimizer.param_groups:  # linear warm-up, then the (plateau-halved) rate
                    group["lr"] = state["lr"] * min(1.0, (state["step"] + 1) / WARMUP_STEPS)
                optimizer.step()
                value = loss.item()
                state["loss_sum"] += value * y.numel()
                state["loss_count"] += y.numel()
                state["batch"], state["step"] = index + 1, state["step"] + 1
                state["epoch_seconds"] = time.monotonic() - started
                self.reporter.step(state["epoch"], index + 1, len(batches), value)
                if self.on_step:
                    self.on_step(self, state["step"])
                if self.stop_requested:
                    self._checkpoint(model, optimizer, state)
                    step = state["step"]
                    raise Interrupted(f"stopped at step {step}; checkpoint saved: run the same command to resume")
                if time.monotonic() - self._last_save >= cfg.save_every_s:
                    self._checkpoint(model, optimizer, state)
            self._end_epoch(model, optimizer, state, time.monotonic() - started)

    def _end_epoch(self, model, optimizer, state: dict, seconds: float) -> None:
        cfg = self.cfg
        val = self.validate(model)
        improved = val < state["best_val"] - 1e-4
        record = {
            "epoch": state["epoch"] + 1,
            "step": state["step"],
            "train_loss": state["loss_sum"] / max(state["loss_count"], 1),
            "val_loss": val,
            "lr": state["lr"],
            "seconds": seconds,
            "best": improved,
        }
        state["history"].append(record)
        self.reporter.epoch(record)
        if improved:
            state["best_val"], state["bad_epochs"] = val, 0
            _save(self.dir / BEST, dict(model.state_dict()), record)
        else:  # a plateau: halve the learning rate, and stop after `patience` epochs without progress
            state["bad_epochs"] += 1
            state["lr"] /= 2
            state["stopped_early"] = state["bad_epochs"] >= cfg.patience
        state.update(epoch=state["epoch"] + 1, batch=0, loss_sum=0.0, loss_count=0, epoch_seconds=0.0)
        self._checkpoint(model, optimizer, state)
