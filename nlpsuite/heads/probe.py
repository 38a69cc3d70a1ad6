"""The probe head: a small classifier (multinomial logistic regression) trained on the backbone's embeddings.

Probes are saved per model and precision in the user cache: ``probe.json`` (labels, feature
standardization, how it was trained, which embedding) and ``weights.npz`` (plain arrays, never pickled).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import atomic_dir_lock
from ..numeric import log_softmax, softmax

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ARRAYS = {"weights": 2, "bias": 1, "mean": 1, "scale": 1}  # name -> dimensions
MAX_META_BYTES = 1 << 20
MAX_WEIGHTS = 1 << 26  # hidden size x labels: 64M covers any backbone and label set
MAX_VALUE = 1e4  # fitted weights stay in the tens and features are standardized; beyond this logits overflow
MIN_SCALE = 1e-7  # fit adds 1e-6 to every standard deviation


def _checked_meta(meta) -> tuple[list[str], dict]:
    if not isinstance(meta, dict):
        raise ValueError("probe.json is not a JSON object")
    labels, info = meta.get("labels"), meta.get("info", {})
    if not (isinstance(labels, list) and len(labels) >= 2 and all(isinstance(x, str) and x for x in labels)):
        raise ValueError("probe.json must list at least two label names")
    if len(set(labels)) != len(labels):
        raise ValueError("probe.json repeats a label")
    if not isinstance(info, dict):
        raise ValueError("probe.json's info is not a JSON object")
    return list(labels), info


def _check_shapes(parts: dict[str, np.ndarray], labels: int) -> None:
    hidden = parts["weights"].shape[0]
    expected = {"weights": (hidden, labels), "bias": (labels,), "mean": (hidden,), "scale": (hidden,)}
    for key, shape in expected.items():
        if parts[key].shape != shape:
            raise ValueError(f"weights.npz {key} has shape {parts[key].shape}, not {shape}")
    if (parts["scale"] < MIN_SCALE).any():
        raise ValueError(f"weights.npz scale has values below {MIN_SCALE:g}")


@dataclass
class Probe:
    labels: list[str]
    weights: np.ndarray  # [hidden, labels]
    bias: np.ndarray  # [labels]
    mean: np.ndarray  # feature standardization
    scale: np.ndarray
    info: dict = field(default_factory=dict)

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return ((embeddings - self.mean) / self.scale) @ self.weights + self.bias


def fit(
    embeddings: np.ndarray, gold: np.ndarray, labels: list[str], l2: float = 1e-2, steps: int = 500, seed: int = 0
) -> Probe:
    """L2-regularized multinomial logistic regression, full-batch Adam on standardized features."""
    x = np.asarray(embeddings, np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / scale
    n, d = x.shape
    k = len(labels)
    rng = np.random.default_rng(seed)
    w, b = rng.normal(0, 0.01, (d, k)), np.zeros(k)
    onehot = np.eye(k)[gold]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    for t in range(1, steps + 1):
        p = softmax(x @ w + b)
        grads = [x.T @ (p - onehot) / n + l2 * w, (p - onehot).mean(axis=0)]
        for i, (param, g) in enumerate(zip((w, b), grads, strict=True)):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            param -= lr * (m[i] / (1 - beta1**t)) / (np.sqrt(v[i] / (1 - beta2**t)) + 1e-8)
    loss = float(-(log_softmax(x @ w + b) * onehot).sum(axis=1).mean())
    return Probe(list(labels), w.astype(np.float32), b.astype(np.float32), mean, scale, {"train_loss": loss})


class ProbeStore:
    """Trained probes of one model and precision, in the user cache."""

    def __init__(self, model_key: str, precision: str) -> None:
        self.model_key = model_key
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_key)
        self.root = config.home() / "heads" / safe / precision

    def folder(self, name: str) -> Path:
        if not NAME.match(name):
            raise NlpsuiteError(f"bad head name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return self.root / name

    def save(self, name: str, probe: Probe) -> Path:
        target = self.folder(name)
        with atomic_dir_lock(target):
            tmp = target.with_name(f".{name}.partial")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            arrays = {"weights": probe.weights, "bias": probe.bias, "mean": probe.mean, "scale": probe.scale}
            np.savez(tmp / "weights.npz", **arrays)
            meta = {"labels": probe.labels, "info": probe.info, "format_version": 1}
            (tmp / "probe.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            old = target.with_name(f".{name}.old")
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        return target

    def load(self, name: str) -> Probe:
        """A stored probe, checked as files from someone else must be: types, shapes, finite bounded values."""
        from ..arrays import read_npz

        folder = self.folder(name)
        try:
            if (folder / "probe.json").stat().st_size > MAX_META_BYTES:
                raise ValueError(f"probe.json is larger than {MAX_META_BYTES} bytes")
            meta = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
            labels, info = _checked_meta(meta)
            try:
                parts = read_npz(folder / "weights.npz", ARRAYS, MAX_VALUE, max_items=MAX_WEIGHTS)
            except (ValueError, zipfile.BadZipFile) as exc:
                raise ValueError(f"weights.npz {exc}") from None
            _check_shapes(parts, len(labels))
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none yet; train one with 'nlpsuite heads train NAME DATA'"
            raise NlpsuiteError(f"no head named {name!r} for this model (trained heads: {known})") from None
        except (OSError, ValueError) as exc:
            raise NlpsuiteError(
                f"head {name!r} is damaged ({exc}); remove it with 'nlpsuite heads rm {name}' and train it again"
            ) from None
        return Probe(labels, info=info, **parts)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "probe.json").is_file() and NAME.match(p.name))

    def remove(self, name: str) -> None:
        folder = self.folder(name)
        if not (folder / "probe.json").is_file():
            raise NlpsuiteError(f"no head named {name!r} for this model")
        with atomic_dir_lock(folder):
            shutil.rmtree(folder)


class ProbeHead:
    """Train and apply probes on the suite's embedding head."""

    def __init__(self, suite) -> None:
        self.suite = suite
        self.store = ProbeStore(suite.source.key, suite.precision)

    def train(
        self, name: str, texts: list[str], labels: list[str], holdout: float = 0.2, seed: int = 0, progress=None
    ) -> dict:
        """Fit and save a probe; ``progress`` (a records.Progress) follows the embedding of the texts."""
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise NlpsuiteError("a head needs examples of at least two labels")
        self.store.folder(name)  # check the name before the slow part
        gold = np.array([classes.index(label) for label in labels])
        embeddings = self.suite.head("embedding")(texts, progress=progress)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        held = order[: int(len(texts) * holdout)] if len(texts) >= 10 else order[:0]
        fit_rows = np.setdiff1d(order, held)
        embedder = self.suite.head("embedding")
        report = {"name": name, "labels": classes, "examples": len(texts), "embedding": embedder.kind}
        if len(held):
            trial = fit(embeddings[fit_rows], gold[fit_rows], classes, seed=seed)
            report["holdout_accuracy"] = float((trial.logits(embeddings[held]).argmax(1) == gold[held]).mean())
            report["holdout_examples"] = len(held)
        probe = fit(embeddings, gold, classes, seed=seed)  # the saved probe learns from every example
        probe.info = {**probe.info, **{k: v for k, v in report.items() if k != "name"}}
        report["path"] = str(self.store.save(name, probe))
        return report

    def scores(self, name: str, texts: list[str]) -> tuple[list[str], np.ndarray]:
        probe = self.store.load(name)
        embedder = self.suite.head("embedding")
        if probe.info.get("embedding") != embedder.kind:
            raise NlpsuiteError(f"head {name!r} was trained on other embeddings; train it again")
        embeddings = embedder(texts)
        if embeddings.shape[1] != probe.weights.shape[0]:
            raise NlpsuiteError(
                f"head {name!r} expects {probe.weights.shape[0]} embedding values, this model gives "
                f"{embeddings.shape[1]}; train it again"
            )
        return probe.labels, probe.logits(embeddings)
