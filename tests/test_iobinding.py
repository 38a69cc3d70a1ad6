"""I/O binding of the decoding loop's state (on by itself on CUDA): its CPU equivalent gives the same tokens.

CUDA itself is not tested here (no GPU): these tests run the bound path with the state bound on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.api import Suite
from nlpsuite.runtime.sampling import SamplingParams

pytestmark = pytest.mark.shared_cache

PROMPTS = [
    "the quick brown fox jumps over the lazy dog the quick brown",
    "hello world, this is a tiny",
    "numbers like 1 2 3 and words like cat dog bird numbers like",
]


def _generate(tiny_llama, bind: bool, **params):
    suite = Suite(model=str(tiny_llama), device="cpu")
    suite.backbone.bind_state = bind
    generator = suite.head("generation").decoder
    prompts = [suite.tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    return generator.generate(prompts, SamplingParams(max_tokens=24, ignore_eos=True, **params))


@pytest.mark.parametrize("draft", [True, False])
def test_bound_state_gives_the_same_tokens_as_numpy(tiny_llama, draft):
    plain = _generate(tiny_llama, False, draft=draft)
    bound = _generate(tiny_llama, True, draft=draft)
    assert [c.token_ids for c in bound] == [c.token_ids for c in plain]
    if draft:  # the prompts repeat themselves: several tokens were verified per pass on the bound state
        assert sum(c.accepted_tokens for c in bound) > 0


def test_bound_state_stays_out_of_numpy_between_steps(tiny_llama):
    suite = Suite(model=str(tiny_llama), device="cpu")
    backbone = suite.backbone
    backbone.bind_state = True
    ids = np.array([suite.tokenizer.encode("hello world", add_special_tokens=False)], np.int64)
    mask, positions = np.ones_like(ids), np.arange(ids.shape[1])[None]
    bound = backbone.forward(ids, mask, positions, backbone.empty_state(1), device_state=True)
    assert not any(isinstance(v, np.ndarray) for v in bound.state.values())
    plain = backbone.forward(ids, mask, positions, backbone.empty_state(1))  # callers that did not ask: numpy
    assert all(isinstance(v, np.ndarray) for v in plain.state.values())
    np.testing.assert_array_equal(bound.logits, plain.logits)
    nxt = np.array([[int(plain.logits[0, -1].argmax())]], np.int64)
    mask2, pos2 = np.ones((1, ids.shape[1] + 1), np.int64), np.array([[ids.shape[1]]])
    after_bound = backbone.forward(nxt, mask2, pos2, bound.state, device_state=True)
    after_plain = backbone.forward(nxt, mask2, pos2, plain.state)
    np.testing.assert_array_equal(after_bound.logits, after_plain.logits)
    kept = backbone.keep_positions(after_bound.state, ids.shape[1])  # rejected drafts leave a bound state too
    for name, value in backbone.keep_positions(after_plain.state, ids.shape[1]).items():
        np.testing.assert_array_equal(kept[name], value)
