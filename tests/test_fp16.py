"""fp16 weights for the CUDA execution provider: the conversion, its graph run by ONNX Runtime's CPU kernels
against transformers fp32 (within fp16 rounding), and the one-line refusal to run it on a CPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from nlpsuite.api import Suite
from nlpsuite.artefacts import MODEL_FILE, WEIGHTS_FILE
from nlpsuite.errors import DeviceError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model, store
from nlpsuite.runtime.backbone import Backbone, left_pad

PROMPTS = [[5, 17, 42, 99, 7, 3, 250, 8], [11, 12], [200, 150, 100, 50, 25]]


@pytest.fixture(scope="module", params=["llama", "gemma2"])
def converted(request, tmp_path_factory, make_tiny_llama):
    """(transformers fp32 model, fp32 folder, fp16 folder) of a tiny random model."""
    from transformers import AutoModelForCausalLM

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NLPSUITE_HOME", str(home))
        extra = {"sliding_window": 3, "attn_logit_softcapping": 0.5, "final_logit_softcapping": 0.3}
        fields = extra if request.param == "gemma2" else {}
        folder = make_tiny_llama(tmp_path_factory.mktemp(request.param), arch=request.param, seed=4, **fields)
        source = Catalog().resolve(str(folder))
        fp32, fp16 = ensure_model(source, "fp32"), ensure_model(source, "fp16")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    return model, fp32, fp16


def test_fp16_conversion_writes_half_the_weights_and_an_fp16_cache(converted):
    _, fp32, fp16 = converted
    graph = onnx.load(str(fp16 / MODEL_FILE), load_external_data=False).graph
    big = [t for t in graph.initializer if np.prod(t.dims) >= 64 * 64]
    assert big and all(t.data_type == TensorProto.FLOAT16 for t in big)
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    assert types["past_key_values.0.key"] == types["present.0.key"] == TensorProto.FLOAT16
    assert types["logits"] == types["last_hidden_state"] == TensorProto.FLOAT
    ratio = (fp16 / WEIGHTS_FILE).stat().st_size / (fp32 / WEIGHTS_FILE).stat().st_size
    assert 0.45 < ratio < 0.6  # the small fp32 norm weights stay fp32


def test_fp16_graph_follows_transformers_within_fp16_rounding(converted):
    """ONNX Runtime's CPU kernels do run the graph (slowly), which checks it here without a GPU."""
    import onnxruntime as ort

    model, _, fp16 = converted
    session = ort.InferenceSession(str(fp16 / MODEL_FILE), providers=["CPUExecutionProvider"])
    ids, mask, pos = left_pad(PROMPTS, 0)
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "num_logits_to_keep": np.array(8)}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values"):
            feeds[inp.name] = np.zeros((len(PROMPTS), inp.shape[1], 0, inp.shape[3]), np.float16)
    logits = session.run(["logits"], feeds)[0]
    assert logits.dtype == np.float32
    for row, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([prompt])).logits[0].numpy()
        got = logits[row, -len(prompt) :]
        np.testing.assert_allclose(got, ref, atol=2e-2 * np.abs(ref).max(), rtol=0)
        assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.8


def test_fp16_is_refused_on_the_cpu_in_one_line_before_any_conversion(tiny_llama):
    with pytest.raises(DeviceError, match="fp16 is for a CUDA GPU") as err:
        _ = Suite(model=str(tiny_llama), device="cpu", precision="fp16").backbone
    assert "\n" not in str(err.value)
    assert store().get(Catalog().resolve(str(tiny_llama)).key, "fp16") is None


def test_a_converted_fp16_model_is_refused_on_the_cpu(converted):
    with pytest.raises(DeviceError, match="int8 or int4"):
        Backbone(converted[2], device="cpu")


def test_the_runtime_threads_an_fp16_cache_through_a_padded_batch(converted, monkeypatch):
    """What a GPU run would do, on the CPU kernels (the refusal lifted): the state stays fp16 step to step and
    the greedy tokens follow transformers' for most steps (fp16 rounding may flip a near tie late)."""
    from nlpsuite.runtime import backbone as backbone_module
    from nlpsuite.runtime.generation import Generator
    from nlpsuite.runtime.sampling import SamplingParams
    from nlpsuite.runtime.tokenizer import Tokenizer

    model, _, fp16 = converted
    monkeypatch.setattr(backbone_module, "check_precision", lambda *_: None)
    backbone = Backbone(fp16, device="cpu")
    assert {v.dtype for v in backbone.empty_state(2).values()} == {np.dtype(np.float16)}
    tok = Tokenizer(backbone.folder, backbone.manifest["special_tokens"])
    done = Generator(backbone, tok).generate(PROMPTS, SamplingParams(max_tokens=6, ignore_eos=True))
    for prompt, completion in zip(PROMPTS, done, strict=True):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            ref = model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)[0, len(prompt) :]
        assert completion.token_ids[:3] == ref[:3].tolist()
