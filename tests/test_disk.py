"""What the cache costs on disk: quantized entries stand alone, and `models list` says each entry's size."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_a_quantized_entry_needs_no_fp32_entry_beside_it(cli, tiny_llama, isolated_home):
    assert cli(["models", "pull", str(tiny_llama), "--precision", "int8", "--quiet"]).code == 0
    listed = json.loads(cli(["models", "list", "--json"]).out)
    (ours,) = [m for m in listed["models"] if m["cached"]]
    assert ours["cached"] == ["int8"]


def test_models_list_shows_each_entry_size_on_disk(cli, tiny_llama, isolated_home):
    for precision in ("fp32", "int4"):
        assert cli(["models", "pull", str(tiny_llama), "--precision", precision, "--quiet"]).code == 0
    (ours,) = [m for m in json.loads(cli(["models", "list", "--json"]).out)["models"] if m["cached"]]
    folders = {p: next((isolated_home / "models").glob(f"*/{p}")) for p in ("fp32", "int4")}
    on_disk = {p: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) for p, d in folders.items()}
    assert {p: d["total_bytes"] for p, d in ours["disk"].items()} == on_disk and on_disk["int4"] < on_disk["fp32"]
    text = cli(["models", "list"]).out
    assert "fp32 " in text and "int4 " in text and " MB" in text


def disk_of(folder) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.fixture
def two_precisions(cli, tiny_llama, isolated_home):
    """The tiny model at fp32 (loaded on the CPU once: its pre-packed copy written) and int8, each with a file
    a task derived from it."""
    from nlpsuite import Suite
    from nlpsuite.heads import derived

    found = {}
    for precision in ("fp32", "int8"):
        backbone = Suite(model=str(tiny_llama), device="cpu", precision=precision).backbone
        path = derived.path_for(backbone.manifest, {"what": "test"})
        derived.save(path, {"x": np.zeros(1000 if precision == "fp32" else 10)})
        found[precision] = (backbone.folder, path.parent)
    assert list(found["fp32"][0].glob("cpu-*")) and not list(found["int8"][0].glob("cpu-*"))
    return found


def test_list_and_info_give_one_breakdown_per_model(cli, tiny_llama, two_precisions):
    """Weights and files of the model, its pre-packed copy, what tasks derived from it, and the total: the same
    numbers in `models list` and `models info`, as text and as JSON (they disagreed: 1,622 MB against 546 MB)."""
    (listed,) = [m for m in json.loads(cli(["models", "list", "--json"]).out)["models"] if m["cached"]]
    info = json.loads(cli(["models", "info", str(tiny_llama), "--json"]).out)
    for precision, (folder, derived_dir) in two_precisions.items():
        packed = sum(disk_of(copy) for copy in folder.glob("cpu-*"))
        expected = {
            "model_bytes": disk_of(folder) - packed,
            "packed_copy_bytes": packed,
            "derived_bytes": disk_of(derived_dir),
        }
        expected["total_bytes"] = sum(expected.values())
        assert listed["disk"][precision] == expected
        assert {k: info["disk"][precision][k] for k in expected} == expected
    assert listed["download_bytes"] == info["download_bytes"] == 0  # a local folder: nothing downloaded
    assert listed["total_bytes"] == info["total_bytes"] == sum(d["total_bytes"] for d in listed["disk"].values())
    listed_text, info_text = cli(["models", "list"]).out, cli(["models", "info", str(tiny_llama)]).out
    for precision in ("fp32", "int8"):
        total = f"{info['disk'][precision]['total_bytes'] / 1e6:,.1f} MB"
        assert total in listed_text and total in info_text


def test_info_says_why_a_model_has_a_pre_packed_copy_or_not(cli, tiny_llama, two_precisions):
    info = json.loads(cli(["models", "info", str(tiny_llama), "--json"]).out)
    assert info["disk"]["fp32"]["packed_copy"]["kept"] is True
    assert info["disk"]["int8"]["packed_copy"]["kept"] is False
    text = cli(["models", "info", str(tiny_llama)]).out
    assert "pre-packed copy" in text and "NLPSUITE_PACKED_COPY" in text and "int8" in text


def test_rm_without_a_terminal_needs_yes(cli, tiny_llama, two_precisions):
    result = cli(["models", "rm", str(tiny_llama)])
    assert result.code == 1 and "--yes" in result.err and len(result.err.strip().splitlines()) == 1
    assert all(folder.exists() and derived_dir.exists() for folder, derived_dir in two_precisions.values())
    assert cli(["models", "rm", str(tiny_llama), "--yes", "--quiet"]).code == 0
    assert not any(folder.exists() or derived_dir.exists() for folder, derived_dir in two_precisions.values())


@pytest.mark.parametrize(("answer", "removed"), [("y\n", True), ("n\n", False), ("\n", False)])
def test_rm_asks_first_on_a_terminal(cli, tiny_llama, two_precisions, monkeypatch, answer, removed):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    result = cli(["models", "rm", str(tiny_llama)])
    folder = two_precisions["fp32"][0]
    assert "remove" in result.err and "MB" in result.err  # the question says what would go
    assert (result.code == 0) is removed and folder.exists() is not removed


def test_rm_precision_removes_that_precision_only(cli, tiny_llama, two_precisions):
    result = cli(["models", "rm", str(tiny_llama), "--precision", "int8", "--yes", "--json"])
    assert result.code == 0
    int8, fp32 = two_precisions["int8"], two_precisions["fp32"]
    assert not int8[0].exists() and not int8[1].exists()
    assert fp32[0].exists() and fp32[1].exists()
    assert json.loads(result.out)["precisions"] == ["int8"]
    (listed,) = [m for m in json.loads(cli(["models", "list", "--json"]).out)["models"] if m["cached"]]
    assert listed["cached"] == ["fp32"]
    again = cli(["models", "rm", str(tiny_llama), "--precision", "int8", "--yes"])
    assert again.code == 1 and "int8" in again.err


def test_a_catalog_models_download_counts_and_goes_with_rm(cli, isolated_home):
    """The GGUF a catalog model was downloaded as is kept to convert other precisions offline: part of the
    model's disk in list and info, removed by `models rm NAME` (not by `--precision`)."""
    from nlpsuite.modelstore.catalog import Catalog
    from nlpsuite.modelstore.resolve import download_of

    source = Catalog().resolve("smollm2-135m-instruct")
    kept = download_of(source)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"x" * 12345)  # stands in for the 98 MB file
    info = json.loads(cli(["models", "info", "smollm2", "--json"]).out)
    (listed,) = [m for m in json.loads(cli(["models", "list", "--json"]).out)["models"] if m["name"] == source.key]
    assert info["download_bytes"] == listed["download_bytes"] == info["total_bytes"] == listed["total_bytes"] == 12345
    assert "download" in cli(["models", "info", "smollm2"]).out
    assert cli(["models", "rm", "smollm2", "--precision", "fp32", "--yes"]).code == 1  # no fp32 entry to remove
    assert kept.exists()
    result = cli(["models", "rm", "smollm2", "--yes", "--json"])
    assert result.code == 0 and json.loads(result.out)["download"] is True
    assert not kept.exists()
