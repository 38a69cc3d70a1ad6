"""Probe heads on the tiny random model: fitting, saving, listing, using and refusing them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError

pytestmark = pytest.mark.shared_cache


def test_probe_fit_separates_separable_data():
    from nlpsuite.heads.probe import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    gold = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    probe = fit(x, gold, ["no", "yes"])
    assert (probe.logits(x).argmax(1) == gold).mean() > 0.95


def test_probe_train_save_list_use_remove(suite, cli, tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"apple banana {i}", "label": "fruit"} for i in range(8)]
    rows += [{"text": f"hammer wrench {i}", "label": "tool"} for i in range(8)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    model = ["--model", suite.model_name, "--device", "cpu", "-q"]
    trained = cli(["heads", "train", "kinds", str(data), "--json", *model])
    assert trained.code == 0, trained.err
    assert json.loads(trained.out)["labels"] == ["fruit", "tool"]
    listed = json.loads(cli(["heads", "list", "--json", "--model", suite.model_name]).out)
    assert [h["name"] for h in listed["heads"]] == ["kinds"]
    got = cli(["classify", "--head", "kinds", "hammer wrench 3", "--json", *model])
    assert got.code == 0, got.err
    assert json.loads(got.out)["label"] in ("fruit", "tool")
    assert cli(["heads", "rm", "kinds", "--model", suite.model_name]).code == 0
    missing = cli(["classify", "--head", "kinds", "x", *model])
    assert missing.code == 1 and "no head named 'kinds'" in missing.err


def test_training_a_head_reports_its_embedding_progress_when_stderr_is_no_terminal(suite, cli, tmp_path, monkeypatch):
    """Thousands of examples take minutes to embed: 'embedding 18 texts...' was the only line until the end."""
    from nlpsuite.cli import progress

    monkeypatch.setattr(progress.Lines, "FIRST", 0.0)
    monkeypatch.setattr(progress.Lines, "EVERY", 0.0)
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"apple banana {i}", "label": "fruit"} for i in range(20)]
    rows += [{"text": f"hammer wrench {i}", "label": "tool"} for i in range(20)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    trained = cli(["heads", "train", "kinds", str(data), "--model", suite.model_name, "--device", "cpu"])
    assert trained.code == 0, trained.err
    counts = [line.split()[2] for line in trained.err.splitlines() if line.startswith("embedding texts ")]
    assert len(counts) >= 2 and counts[-1] == "40/40", trained.err  # a line per pass, the last one the end


def test_probe_names_and_single_label_data(suite, cli, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\nb,x\n")
    model = ["--model", suite.model_name, "--device", "cpu", "-q"]
    assert "two labels" in cli(["heads", "train", "ok", str(data), *model]).err
    assert "bad head name" in cli(["heads", "train", "../evil", str(data), *model]).err


def test_a_probe_from_other_embeddings_is_refused(suite, tmp_path):
    head = suite.head("probe")
    head.train("p", [f"apple {i}" for i in range(5)] + [f"hammer {i}" for i in range(5)], ["a"] * 5 + ["b"] * 5)
    probe = head.store.load("p")
    probe.info["embedding"] = "mean-pooled/0"
    head.store.save("p", probe)
    with pytest.raises(NlpsuiteError, match="train it again"):
        suite.classify("apple", head="p")
