"""The model cache: atomic publication, corrupt entries rebuilt, clear errors; catalog resolution."""

from __future__ import annotations

import json
import os

import pytest

from nlpsuite.errors import ModelNotFoundError, NlpsuiteError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.store import ModelStore


def writer(calls):
    def write(folder):
        calls.append(folder)
        (folder / "model.onnx").write_bytes(b"x" * 100)
        return {"precision": "fp32"}

    return write


def test_build_publishes_once_and_reuses(tmp_path):
    store, calls = ModelStore(tmp_path), []
    first = store.build("m", "fp32", writer(calls))
    second = store.build("m", "fp32", writer(calls))
    assert len(calls) == 1 and first.path == second.path
    assert first.manifest["files"] == {"model.onnx": 100}


def test_truncated_file_is_not_trusted_and_is_rebuilt(tmp_path):
    store, calls = ModelStore(tmp_path), []
    built = store.build("m", "fp32", writer(calls))
    with open(built.path / "model.onnx", "r+b") as fh:
        fh.truncate(10)
    assert store.get("m", "fp32") is None
    store.build("m", "fp32", writer(calls))
    assert len(calls) == 2 and store.get("m", "fp32") is not None


def test_an_interrupted_build_leaves_nothing_behind(tmp_path):
    store = ModelStore(tmp_path)

    def dies(folder):
        (folder / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.build("m", "fp32", dies)
    assert store.get("m", "fp32") is None
    assert not (tmp_path / "m").exists()  # not even the model's folder


def test_a_killed_build_leaves_no_partial_folder_after_the_next_build(tmp_path):
    store = ModelStore(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ".fp32-partial-abc").mkdir()  # as a SIGKILLed build would leave it
    store.build("m", "fp32", writer([]))
    assert not list((tmp_path / "m").glob(".fp32-partial-*"))


def test_missing_manifest_means_missing(tmp_path):
    store = ModelStore(tmp_path)
    built = store.build("m", "fp32", writer([]))
    os.remove(built.path / "manifest.json")
    assert store.get("m", "fp32") is None and store.entries() == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(NlpsuiteError, match="NLPSUITE_HOME"):
        ModelStore(locked / "models").build("m", "fp32", writer([]))


def test_cache_dir_under_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NlpsuiteError, match="cannot write to .*NLPSUITE_HOME"):
        ModelStore(blocker / "models").build("m", "fp32", writer([]))


def test_catalog_resolves_names_aliases_paths_and_hub_ids(tmp_path, tiny_llama):
    catalog = Catalog()
    assert catalog.resolve("smollm2-135m-instruct").kind == "catalog"
    assert catalog.resolve("smollm2").key == "smollm2-135m-instruct"
    assert catalog.resolve(str(tiny_llama)).kind == "hf-dir"
    gguf = tmp_path / "My-Model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    assert catalog.resolve(str(gguf)).kind == "gguf"
    assert catalog.resolve(str(tmp_path)).kind == "gguf"  # a folder holding one .gguf
    hub = catalog.resolve("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert hub.kind == "hub" and hub.key == "HuggingFaceTB--SmolLM2-360M-Instruct"


@pytest.mark.parametrize("name", ["no-such-model", "", "./missing/folder"])
def test_unknown_models_are_clear_errors(name):
    with pytest.raises(ModelNotFoundError):
        Catalog().resolve(name)


def test_a_local_source_changed_in_place_is_converted_again(tmp_path, make_tiny_llama):
    from nlpsuite.modelstore.resolve import ensure_model, fingerprint

    folder = make_tiny_llama(tmp_path / "model")
    source = Catalog().resolve(str(folder))

    def recorded(path):
        return json.loads((path / "manifest.json").read_text())["source"]["fingerprint"]

    before = recorded(ensure_model(source))
    assert recorded(ensure_model(source)) == before  # unchanged: served from the cache
    config = folder / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 5_000_000_000))
    after = recorded(ensure_model(source))
    assert after != before and after == fingerprint(source)
