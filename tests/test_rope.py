"""The rotary tables conversion computes in numpy, against the tables transformers' own rotary module of each
architecture holds (torch, in the test extra), for every scaling the supported architectures use."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from nlpsuite.convert.rope import rotary
from nlpsuite.errors import NlpsuiteError

torch = pytest.importorskip("torch")

LONGROPE_SHORT = [1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.8, 2.1, 2.6, 3.0, 3.3, 3.9, 4.4, 5.0, 5.2]
LONGROPE_LONG = [1.0, 1.1, 1.4, 2.0, 3.5, 5.0, 8.0, 12.0, 18.0, 25.0, 30.0, 36.0, 40.0, 44.0, 47.0, 48.0]
CASES = {
    "llama default": ("llama", {}),
    "llama 3 (theta 500000, head 128)": ("llama", {"rope_theta": 500000.0, "head_dim": 128, "hidden_size": 512}),
    "linear": ("llama", {"rope_scaling": {"rope_type": "linear", "factor": 4.0}}),
    "dynamic": ("llama", {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}),
    "dynamic 1.3": ("llama", {"rope_scaling": {"rope_type": "dynamic", "factor": 1.3}}),
    "yarn": ("llama", {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}}),
    "yarn mscale": (
        "llama",
        {"rope_scaling": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096,
                          "mscale": 1.0, "mscale_all_dim": 0.5, "beta_fast": 16, "beta_slow": 2}},
    ),
    "yarn attention factor, no truncation": (
        "llama",
        {"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4096,
                          "attention_factor": 1.2, "truncate": False}},
    ),
    "qwen2 yarn": ("qwen2", {"rope_theta": 1e6, "rope_scaling": {"type": "yarn", "factor": 4.0,
                                                                  "original_max_position_embeddings": 32768}}),
    "llama3": (
        "llama",
        {"rope_theta": 500000.0, "head_dim": 128, "hidden_size": 512, "max_position_embeddings": 131072,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192}},
    ),
    "mistral": ("mistral", {"rope_theta": 1e6}),
    "qwen3": ("qwen3", {"rope_theta": 1e6}),
    "phi3": ("phi3", {}),
    "phi3 longrope": (
        "phi3",
        {"max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "head_dim": 32,
         "hidden_size": 128, "rope_scaling": {"type": "longrope", "short_factor": LONGROPE_SHORT,
                                              "long_factor": LONGROPE_LONG}},
    ),
    "phi3 su with its attention factor": (
        "phi3",
        {"max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "head_dim": 32,
         "hidden_size": 128, "rope_scaling": {"type": "su", "short_factor": LONGROPE_SHORT,
                                              "long_factor": LONGROPE_LONG, "attention_factor": 1.19}},
    ),
    "gemma": ("gemma", {}),
    "gemma2": ("gemma2", {"sliding_window": 4}),
    "gemma3 local and global": ("gemma3_text", {"sliding_window": 4, "rope_local_base_freq": 10000.0,
                                                "rope_theta": 1e6}),
    "gemma3 global linear": (
        "gemma3_text",
        {"sliding_window": 4, "rope_local_base_freq": 10000.0, "rope_theta": 1e6,
         "rope_scaling": {"rope_type": "linear", "factor": 8.0}},
    ),
}  # fmt: skip


def _config(arch: str, fields: dict):
    from transformers import AutoConfig

    base = {"hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
            "num_hidden_layers": 2, "max_position_embeddings": 8192, "vocab_size": 100}  # fmt: skip
    if arch == "gemma3_text":
        base["layer_types"] = ["sliding_attention", "full_attention"]
    return AutoConfig.for_model(arch, **{**base, **fields})


def _reference(config) -> dict:
    """What the architecture's own rotary module holds once built (the tables a traced model would use)."""
    from transformers import AutoModelForCausalLM

    model_class = AutoModelForCausalLM._model_mapping[type(config)]
    module = importlib.import_module(model_class.__module__)
    emb = getattr(module, model_class.__name__.replace("ForCausalLM", "RotaryEmbedding"))(config=config)
    tables = {}
    for kind in sorted(set(getattr(config, "layer_types", None) or [])):
        if hasattr(emb, f"{kind}_inv_freq"):
            tables[kind] = (getattr(emb, f"{kind}_inv_freq").float().numpy(), getattr(emb, f"{kind}_attention_scaling"))
    return tables or {None: (emb.inv_freq.float().numpy(), emb.attention_scaling)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rotary_tables_match_the_architectures_own_module(case):
    config = _config(*CASES[case])
    ours, theirs = rotary(config), _reference(config)
    assert ours.keys() == theirs.keys()
    for kind, (inv_freq, scaling) in theirs.items():
        assert ours[kind][0].dtype == np.float32 and ours[kind][0].shape == inv_freq.shape
        np.testing.assert_array_max_ulp(ours[kind][0], inv_freq, maxulp=1)
        assert ours[kind][1] == pytest.approx(float(scaling), rel=1e-12)


def test_the_tables_differ_where_the_scalings_differ():
    """A check that the cases above test something: each scaling changes the default table."""
    plain = rotary(_config("llama", {}))[None]
    for case in ("linear", "yarn", "yarn mscale"):
        scaled = rotary(_config(*CASES[case]))[None]
        assert not np.allclose(scaled[0], plain[0]) or scaled[1] != plain[1], case
    local, full = rotary(_config(*CASES["gemma3 local and global"])).values()
    assert not np.allclose(local[0], full[0])


def test_an_unknown_scaling_is_refused_in_one_line():
    config = _config("llama", {})
    config.rope_parameters = {**config.rope_parameters, "rope_type": "wavy"}
    with pytest.raises(NlpsuiteError, match="rotary scaling 'wavy' is not supported yet"):
        rotary(config)
