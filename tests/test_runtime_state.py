"""The backbone's batch plumbing: left padding and the state operations, on a KV cache (batch axis first)
and on a recurrent state (batch axis second)."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone, left_pad

pytestmark = pytest.mark.shared_cache

PROMPTS = [[5, 17, 42, 9, 7, 3], [11, 12], [20, 15, 10, 5]]


@pytest.fixture(params=["llama", "lstm"])
def backbone(request, tiny_llama):
    if request.param == "llama":
        return Backbone(ensure_model(Catalog().resolve(str(tiny_llama))), device="cpu")
    return Backbone(request.getfixturevalue("lstm_folder"), device="cpu")


def _alone(backbone, prompt):
    ids, mask, positions = left_pad([prompt], 0)
    return backbone.forward(ids, mask, positions, backbone.empty_state(1), num_logits=len(prompt))


def test_left_pad_puts_every_last_token_in_the_last_column():
    ids, mask, positions = left_pad([[7, 8, 9], [4]], pad_id=0)
    np.testing.assert_array_equal(ids, [[7, 8, 9], [0, 0, 4]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(positions, [[0, 1, 2], [0, 0, 0]])


def test_a_left_padded_batch_gives_each_row_what_it_gets_alone(backbone):
    ids, mask, positions = left_pad(PROMPTS, pad_id=2)
    step = backbone.forward(ids, mask, positions, backbone.empty_state(len(PROMPTS)), num_logits=ids.shape[1])
    for row, prompt in enumerate(PROMPTS):
        np.testing.assert_allclose(step.logits[row, -len(prompt) :], _alone(backbone, prompt).logits[0], atol=1e-5)


def test_select_rows_of_concatenated_states_gives_each_state_back(backbone):
    a = _alone(backbone, PROMPTS[0][:4]).state
    b = _alone(backbone, PROMPTS[2]).state
    both = backbone.concat_states([a, b])
    for rows, expected in (([1], b), ([0], a)):
        picked = backbone.select_rows(both, rows)
        assert picked.keys() == expected.keys()
        for name, value in expected.items():
            np.testing.assert_array_equal(picked[name], value)
    repeated = backbone.repeat_state(a, 3)
    for name, value in backbone.concat_states([a, a, a]).items():
        np.testing.assert_array_equal(repeated[name], value)


def test_a_step_on_concatenated_states_continues_each_row(backbone):
    """What beam search relies on: rows of one batched step are the rows' own continuations."""
    prompts = [PROMPTS[0][:4], PROMPTS[2]]
    states = [_alone(backbone, p).state for p in prompts]
    nxt = np.array([[13], [14]], np.int64)
    step = backbone.forward(nxt, np.ones((2, 5), np.int64), np.full((2, 1), 4), backbone.concat_states(states))
    for row, state in enumerate(states):
        alone = backbone.forward(nxt[row : row + 1], np.ones((1, 5), np.int64), np.full((1, 1), 4), state)
        np.testing.assert_allclose(step.logits[row], alone.logits[0], atol=1e-5)
        for name, value in backbone.select_rows(step.state, [row]).items():
            np.testing.assert_allclose(value, alone.state[name], atol=1e-5)


def test_only_a_kv_cache_can_drop_its_latest_positions(backbone):
    """Drafting rewinds the state after rejected guesses: a recurrent state has mixed them in, so it never drafts."""
    state = _alone(backbone, PROMPTS[0]).state
    if backbone.manifest["architecture"]["model_type"] == "nlpsuite-lstm":
        assert not backbone.can_rewind
        with pytest.raises(NlpsuiteError, match="cannot be rewound"):
            backbone.keep_positions(state, 3)
        return
    assert backbone.can_rewind
    np.testing.assert_array_equal(backbone.keep_positions(state, 4)[name := next(iter(state))], state[name][:, :, :4])


def test_rows_that_join_a_decoding_batch_get_what_they_get_alone(backbone):
    """Continuous batching (runtime/batching.py) on either kind of state: rows join mid-decode, one leaves."""
    from nlpsuite.runtime.batching import DecodeBatch
    from nlpsuite.runtime.generation import Generator
    from nlpsuite.runtime.sampling import SamplingParams
    from nlpsuite.runtime.tokenizer import Tokenizer

    tokenizer = Tokenizer(backbone.folder, backbone.manifest.get("special_tokens", {}))
    params = [SamplingParams(max_tokens=n, temperature=1.0, seed=5, ignore_eos=True) for n in (12, 3, 9)]
    alone = [Generator(backbone, tokenizer).generate([p], s)[0].token_ids for p, s in zip(PROMPTS, params, strict=True)]
    batch = DecodeBatch(backbone, tokenizer)
    rows = [batch.sequence(p, SamplingParams(**vars(s))) for p, s in zip(PROMPTS, params, strict=True)]
    batch.add(rows[1:2])
    batch.step()
    batch.add([rows[0], rows[2]])  # longer than the row decoding: it gets padding in front
    while batch.size:
        batch.step()
    assert [r.completion().token_ids for r in rows] == alone
