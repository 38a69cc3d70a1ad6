"""Model folders may come from anyone: nlpsuite never runs the Python they ship (``auto_map``)."""

from __future__ import annotations

import builtins
import json
import shutil

import pytest

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


def custom_code_folder(tiny_llama, tmp_path, model_type: str):
    folder = tmp_path / f"custom-{model_type}"
    shutil.copytree(tiny_llama, folder)
    marker = tmp_path / f"PWNED-{model_type}"
    for module in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (folder / f"{module}.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


@pytest.fixture
def answer_yes(monkeypatch):
    """A user who answers 'y' to any prompt (transformers asks 'run the custom code? [y/N]')."""
    asked = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": asked.append(prompt) or "y")
    return asked


def test_a_folder_that_needs_its_own_code_is_refused_before_transformers(tiny_llama, tmp_path, cli, answer_yes):
    folder, marker = custom_code_folder(tiny_llama, tmp_path, "evil-llama")
    result = cli(["generate", "Hello", "--model", str(folder), "--max-tokens", "2", "--quiet"])
    assert result.code == 1, result.err
    assert result.err.startswith("error: ") and "custom code" in result.err and len(result.err.splitlines()) == 1
    assert not marker.exists() and answer_yes == []


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_supported_architecture_loads_without_its_shipped_code(make_tiny_llama, tmp_path, cli, answer_yes, arch):
    base = make_tiny_llama(tmp_path / f"base-{arch}", arch=arch)
    folder, marker = custom_code_folder(base, tmp_path, arch)
    result = cli(["generate", "Hello", "--model", str(folder), "--max-tokens", "2", "--quiet", "--json"])
    assert result.code == 0, result.err
    assert not marker.exists() and answer_yes == []


def test_every_transformers_load_refuses_remote_code(monkeypatch, tiny_llama):
    """Hub ids are fetched as files, then read by transformers: trust_remote_code=False must reach every loader."""
    from transformers import AutoConfig, AutoTokenizer

    from nlpsuite import convert
    from nlpsuite.errors import NlpsuiteError

    seen = []

    def record(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        raise OSError("stop here")

    monkeypatch.setattr(AutoConfig, "from_pretrained", record)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", record)
    with pytest.raises(NlpsuiteError, match="could not load"):
        convert.open_source(str(tiny_llama), None)  # a hub model's files: the store fetched them into a folder
    assert seen and all(value is False for value in seen)


def test_a_hub_download_never_fetches_python_files(monkeypatch):
    import huggingface_hub

    from nlpsuite.modelstore import fetch

    asked = {}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kwargs: asked.update(kwargs) or "/x")
    monkeypatch.setattr(fetch, "hub_reachable", lambda: True)
    assert fetch.hub_folder("someone/model") == "/x"
    assert asked["allow_patterns"] and not any(p.endswith((".py", "*")) for p in asked["allow_patterns"])
