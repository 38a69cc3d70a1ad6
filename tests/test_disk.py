"""What the cache costs on disk: quantized entries stand alone, and `models list` says each entry's size."""

from __future__ import annotations

import json


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
    assert ours["disk_bytes"] == on_disk and on_disk["int4"] < on_disk["fp32"]
    text = cli(["models", "list"]).out
    assert "fp32 (" in text and "int4 (" in text and "MB)" in text
