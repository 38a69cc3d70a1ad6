"""Trained probe heads are files a user may get from someone else: checked on load, refused in one line."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.heads.probe import Probe, ProbeStore


def saved(hidden: int = 8, labels: int = 2) -> tuple[ProbeStore, str]:
    store = ProbeStore("m", "fp32")
    rng = np.random.default_rng(0)
    probe = Probe(
        [f"l{i}" for i in range(labels)],
        rng.normal(size=(hidden, labels)).astype(np.float32),
        np.zeros(labels, np.float32),
        np.zeros(hidden),
        np.ones(hidden),
        {"embedding": "e"},
    )
    store.save("h", probe)
    return store, "h"


def rewrite_arrays(folder, **changes):
    with np.load(folder / "weights.npz") as arrays:
        parts = {key: arrays[key] for key in arrays.files}
    np.savez(folder / "weights.npz", **{**parts, **changes})


def huge_member(folder):
    """weights.npz whose 'weights' header claims 1e11 x 2 values."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11, 2)})
    with np.load(folder / "weights.npz") as arrays:
        parts = {key: arrays[key] for key in arrays.files if key != "weights"}
    np.savez(folder / "weights.npz", **parts)
    with zipfile.ZipFile(folder / "weights.npz", "a") as archive:
        archive.writestr("weights.npy", header.getvalue() + b"\0" * 64)


TAMPERED = {
    "probe.json is a list": lambda f: (f / "probe.json").write_text("[1, 2]"),
    "labels not strings": lambda f: (f / "probe.json").write_text(json.dumps({"labels": [1, 2]})),
    "one label": lambda f: (f / "probe.json").write_text(json.dumps({"labels": ["a"]})),
    "more labels than weights": lambda f: (f / "probe.json").write_text(json.dumps({"labels": ["a", "b", "c"]})),
    "info not an object": lambda f: (f / "probe.json").write_text(json.dumps({"labels": ["a", "b"], "info": 3})),
    "weights of another shape": lambda f: rewrite_arrays(f, weights=np.zeros((10, 2), np.float32)),
    "huge bias": lambda f: rewrite_arrays(f, bias=np.array([1e38, -1e38], np.float32)),
    "zero scale": lambda f: rewrite_arrays(f, scale=np.zeros(8)),
    "NaN weights": lambda f: rewrite_arrays(f, weights=np.full((8, 2), np.nan, np.float32)),
    "object arrays": lambda f: rewrite_arrays(f, mean=np.array([{}] * 8, object)),
    "a missing array": lambda f: np.savez(f / "weights.npz", weights=np.zeros((8, 2), np.float32)),
    "header claiming 1e11 rows": huge_member,
    "not a zip file": lambda f: (f / "weights.npz").write_bytes(b"\x80\x04K\x01."),
}


@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_probe_is_refused_in_one_line(tamper):
    store, name = saved()
    TAMPERED[tamper](store.folder(name))
    with pytest.raises(NlpsuiteError) as caught:
        store.load(name)
    message = str(caught.value)
    assert message.startswith(f"head {name!r} is damaged (") and "\n" not in message
    assert message.endswith(f"remove it with 'nlpsuite heads rm {name}' and train it again")


def test_a_good_probe_loads_as_saved():
    store, name = saved()
    probe = store.load(name)
    assert probe.labels == ["l0", "l1"] and probe.weights.shape == (8, 2) and probe.info == {"embedding": "e"}


@pytest.mark.shared_cache
def test_classify_refuses_a_head_for_other_embeddings(tiny_llama, cli, tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"apple {i}", "label": "fruit"} for i in range(4)]
    rows += [{"text": f"hammer {i}", "label": "tool"} for i in range(4)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    model = ["--model", str(tiny_llama), "--device", "cpu", "-q"]
    assert cli(["heads", "train", "narrow", str(data), *model]).code == 0
    from nlpsuite.modelstore.catalog import Catalog

    folder = ProbeStore(Catalog().resolve(str(tiny_llama)).key, "fp32").folder("narrow")
    rewrite_arrays(folder, weights=np.zeros((10, 2), np.float32), mean=np.zeros(10), scale=np.ones(10))
    try:
        got = cli(["classify", "--head", "narrow", "hammer", "--json", *model])
    finally:
        cli(["heads", "rm", "narrow", "--model", str(tiny_llama)])
    assert got.code == 1 and got.err.startswith("error: head 'narrow' expects 10 embedding values")
