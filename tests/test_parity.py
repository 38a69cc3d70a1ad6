"""The ONNX backbone computes what transformers computes (tiny random Llama, fp32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone
from nlpsuite.runtime.generation import Generator
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.runtime.tokenizer import Tokenizer

pytestmark = pytest.mark.shared_cache

PROMPTS = [[5, 17, 42, 99, 7, 3, 250, 8], [11, 12], [200, 150, 100, 50, 25]]


@pytest.fixture(scope="module")
def hf_model(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()


@pytest.fixture
def backbone(tiny_llama):
    return Backbone(ensure_model(Catalog().resolve(str(tiny_llama))), device="cpu")


def hf_greedy(model, prompt: list[int], n: int) -> list[int]:
    ids = torch.tensor([prompt])
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


def padded(prompts):
    width = max(map(len, prompts))
    ids = np.zeros((len(prompts), width), np.int64)
    mask = np.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :], mask[i, width - len(p) :] = p, 1
    return ids, mask, np.maximum(mask.cumsum(1) - 1, 0)


def cached_greedy(backbone, prompts, n: int) -> list[list[int]]:
    """n greedy tokens per prompt through the generator: one padded batch, the KV cache carried between steps."""
    tok = Tokenizer(backbone.folder, backbone.manifest["special_tokens"])
    done = Generator(backbone, tok).generate(prompts, SamplingParams(max_tokens=n, ignore_eos=True))
    return [completion.token_ids for completion in done]


def uncached_greedy(backbone, prompt: list[int], n: int) -> list[int]:
    """n greedy tokens recomputing the whole sequence at each step (an empty state every time)."""
    seq, out = list(prompt), []
    for _ in range(n):
        ids, mask, pos = padded([seq])
        nxt = int(backbone.forward(ids, mask, pos, backbone.empty_state(1)).logits[0, -1].argmax())
        out.append(nxt)
        seq.append(nxt)
    return out


def test_logits_match_for_a_padded_batch(backbone, hf_model):
    ids, mask, pos = padded(PROMPTS)
    step = backbone.forward(
        ids, mask, pos, backbone.empty_state(len(PROMPTS)), num_logits=ids.shape[1], want_hidden=True
    )
    for row, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            ref = hf_model(input_ids=torch.tensor([prompt]), output_hidden_states=True)
        got = step.logits[row, -len(prompt) :]
        np.testing.assert_allclose(got, ref.logits[0].numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(step.hidden[row, -len(prompt) :], ref.hidden_states[-1][0].numpy(), atol=1e-4)


def test_only_the_requested_logits_are_returned(backbone):
    ids, mask, pos = padded(PROMPTS[:1])
    step = backbone.forward(ids, mask, pos, backbone.empty_state(1), num_logits=1)
    assert step.logits.shape == (1, 1, backbone.manifest["architecture"]["vocab_size"])


def test_greedy_tokens_match_with_kv_cache_for_a_padded_batch(backbone, hf_model, tiny_llama):
    for prompt, tokens in zip(PROMPTS, cached_greedy(backbone, PROMPTS, 12), strict=True):
        assert tokens == hf_greedy(hf_model, prompt, 12)


def test_greedy_tokens_match_without_kv_cache(backbone, hf_model):
    """Recomputing the whole sequence each step (empty state) gives the same tokens as the cached path."""
    assert uncached_greedy(backbone, PROMPTS[0], 10) == hf_greedy(hf_model, PROMPTS[0], 10)


def test_gqa_and_untied_head_also_match(tmp_path, make_tiny_llama):
    from transformers import AutoModelForCausalLM

    folder = make_tiny_llama(tmp_path / "gqa", layers=3, kv_heads=1, seed=3)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight) * 0.02)
    model.save_pretrained(folder)
    backbone = Backbone(ensure_model(Catalog().resolve(str(folder))), device="cpu")
    ids, mask, pos = padded([PROMPTS[0]])
    step = backbone.forward(ids, mask, pos, backbone.empty_state(1), num_logits=ids.shape[1])
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([PROMPTS[0]])).logits[0].numpy()
    np.testing.assert_allclose(step.logits[0], ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "qwen3", "phi3"])
def test_every_supported_architecture_matches(tmp_path, make_tiny_llama, arch):
    """Qwen2 has q/k/v biases, Qwen3 per-head q/k norms, Phi-3 fused qkv and gate/up: each must reach the graph."""
    from transformers import AutoModelForCausalLM

    folder = make_tiny_llama(tmp_path / arch, arch=arch, seed=5)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    backbone = Backbone(ensure_model(Catalog().resolve(str(folder))), device="cpu")
    ids, mask, pos = padded(PROMPTS)
    step = backbone.forward(ids, mask, pos, backbone.empty_state(len(PROMPTS)), num_logits=ids.shape[1])
    for row, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([prompt])).logits[0].numpy()
        np.testing.assert_allclose(step.logits[row, -len(prompt) :], ref, atol=1e-4, rtol=1e-4)


def test_phi3_greedy_tokens_match_with_and_without_kv_cache(tmp_path, make_tiny_llama):
    from transformers import AutoModelForCausalLM

    folder = make_tiny_llama(tmp_path / "phi3", arch="phi3", seed=7)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    backbone = Backbone(ensure_model(Catalog().resolve(str(folder))), device="cpu")
    for prompt, tokens in zip(PROMPTS, cached_greedy(backbone, PROMPTS, 8), strict=True):
        assert tokens == hf_greedy(model, prompt, 8)
    assert uncached_greedy(backbone, PROMPTS[1], 8) == hf_greedy(model, PROMPTS[1], 8)


def test_partial_rotary_embeddings_are_refused_in_one_line(tmp_path, make_tiny_llama):
    import json

    from nlpsuite.errors import NlpsuiteError

    folder = make_tiny_llama(tmp_path / "phi3-partial", arch="phi3")
    config = json.loads((folder / "config.json").read_text())
    config["partial_rotary_factor"] = 0.5
    config.setdefault("rope_parameters", {})["partial_rotary_factor"] = 0.5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(NlpsuiteError, match="partial rotary embedding is not supported"):
        ensure_model(Catalog().resolve(str(folder)))


# Gemma with every trait made to matter on a tiny model: a window shorter than the prompts and the generated
# text, soft caps low enough that tanh is far from linear, a query scale that is not head_dim, and (Gemma 3)
# local and global layers with different rotary thetas. Qwen2 with its sliding window on (layer_types) too.
GEMMA = {
    "qwen2": {"use_sliding_window": True, "sliding_window": 3, "max_window_layers": 1},
    "gemma": {},
    "gemma2": {
        "sliding_window": 3,
        "attn_logit_softcapping": 0.5,
        "final_logit_softcapping": 0.3,
        "query_pre_attn_scalar": 32,
    },
    "gemma3_text": {
        "sliding_window": 3,
        "layer_types": ["sliding_attention", "full_attention"],
        "rope_local_base_freq": 10.0,
        "query_pre_attn_scalar": 32,
    },
}


@pytest.fixture(scope="module", params=sorted(GEMMA))
def gemma(request, tmp_path_factory, make_tiny_llama):
    """(transformers model, converted backbone) of a tiny random Gemma 1, 2 or 3, or a windowed Qwen2."""
    from transformers import AutoModelForCausalLM

    folder = make_tiny_llama(tmp_path_factory.mktemp(request.param), arch=request.param, seed=9, **GEMMA[request.param])
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    return model, Backbone(ensure_model(Catalog().resolve(str(folder))), device="cpu")


def test_gemma_logits_match_for_a_padded_batch(gemma):
    model, backbone = gemma
    ids, mask, pos = padded(PROMPTS)
    step = backbone.forward(ids, mask, pos, backbone.empty_state(len(PROMPTS)), num_logits=ids.shape[1])
    for row, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([prompt])).logits[0].numpy()
        np.testing.assert_allclose(step.logits[row, -len(prompt) :], ref, atol=1e-4, rtol=1e-4)


def test_gemma_greedy_tokens_match_with_and_without_kv_cache_past_the_window(gemma):
    """12 new tokens after prompts of 2 to 8: every sliding layer drops keys from its window at each step."""
    model, backbone = gemma
    for prompt, tokens in zip(PROMPTS, cached_greedy(backbone, PROMPTS, 12), strict=True):
        assert tokens == hf_greedy(model, prompt, 12)
    assert uncached_greedy(backbone, PROMPTS[1], 8) == hf_greedy(model, PROMPTS[1], 8)


def test_gemma_context_is_not_cut_to_its_window(gemma):
    """The window is masked in the graph, so the whole trained context stays usable (not so for Mistral)."""
    assert gemma[1].context_length == 128


@pytest.mark.parametrize(
    ("model_type", "why"), [("gemma3", "vision-language"), ("gemma3n", "per-layer embeddings"), ("gpt2", "")]
)
def test_other_architectures_are_refused_in_one_line_listing_the_supported_ones(tmp_path, model_type, why):
    import json

    from nlpsuite.errors import NlpsuiteError

    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(NlpsuiteError, match=f"{model_type}'.*{why}.*supported: llama, .*gemma3_text") as err:
        ensure_model(Catalog().resolve(str(tmp_path)))
    assert "\n" not in str(err.value)
