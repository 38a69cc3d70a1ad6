"""Prompt-lookup drafting: the guesses, rewinding the state, and greedy output unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone, left_pad
from nlpsuite.runtime.drafting import DRAFT_TOKENS, MAX_DRAFT_TOKENS, MIN_DRAFT_TOKENS, next_draft_length, propose
from nlpsuite.runtime.generation import Generator
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.runtime.tokenizer import Tokenizer

pytestmark = pytest.mark.shared_cache


def test_the_latest_longest_match_is_continued():
    assert propose([1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 2, 3], 3) == [7, 8, 5]  # bigram [2, 3]: its latest earlier use
    assert propose([4, 1, 2, 3, 9, 9, 7, 1, 2, 3], 2) == [9, 9]  # the trigram wins over later bigrams
    assert propose([1, 2, 3, 4], 5) == []  # nothing repeats
    assert propose([5, 6, 1, 5, 6], 9) == [1, 5, 6]  # as far as the text goes
    assert propose([1, 2, 1, 2], 0) == []


def test_the_draft_length_grows_after_a_draft_kept_whole_and_shrinks_after_a_rejected_one():
    assert next_draft_length(4, 4, 4) == 6 and next_draft_length(6, 6, 6) == 8
    assert next_draft_length(4, 2, 2) == 6  # a draft shorter than asked for (the text ran out), all of it kept
    assert next_draft_length(4, 4, 3) == 3 and next_draft_length(4, 4, 0) == 3
    assert next_draft_length(4, 0, 0) == 4  # no guess, nothing learnt
    assert next_draft_length(MAX_DRAFT_TOKENS, MAX_DRAFT_TOKENS, MAX_DRAFT_TOKENS) == MAX_DRAFT_TOKENS
    assert next_draft_length(MAX_DRAFT_TOKENS - 1, 3, 3) == MAX_DRAFT_TOKENS
    assert next_draft_length(MIN_DRAFT_TOKENS, MIN_DRAFT_TOKENS, 0) == MIN_DRAFT_TOKENS


@pytest.fixture(scope="module")
def backbone(tiny_llama):
    return Backbone(ensure_model(Catalog().resolve(str(tiny_llama))), device="cpu")


@pytest.fixture(scope="module")
def tokenizer(tiny_llama, backbone):
    return Tokenizer(backbone.folder, backbone.manifest["special_tokens"])


def test_a_rewound_state_continues_as_if_the_rejected_tokens_were_never_fed(backbone):
    prompt, junk = [5, 17, 42, 99, 7, 3], [250, 8, 11]
    ids, mask, positions = left_pad([prompt], 0)
    clean = backbone.forward(ids, mask, positions, backbone.empty_state(1))
    ids, mask, positions = left_pad([prompt + junk], 0)
    dirty = backbone.forward(ids, mask, positions, backbone.empty_state(1))
    rewound = backbone.keep_positions(dirty.state, len(prompt))
    nxt, mask, at = np.array([[13]]), np.ones((1, len(prompt) + 1), np.int64), np.array([[len(prompt)]])
    np.testing.assert_allclose(
        backbone.forward(nxt, mask, at, rewound).logits, backbone.forward(nxt, mask, at, clean.state).logits, atol=1e-5
    )


# Random tiny models soon repeat themselves, so drafts from the prompt and the output get accepted.
PROMPTS = [[5, 17, 42, 99, 7, 3, 5, 17, 42, 99], [11, 12, 11, 12, 11], [200, 150, 100, 50, 25, 200, 150]]


def _greedy(backbone, tokenizer, prompts, draft, max_tokens=40):
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, draft=draft)
    return Generator(backbone, tokenizer).generate(prompts, params)


def test_greedy_output_is_the_same_with_and_without_drafting(backbone, tokenizer):
    drafted = accepted = 0
    for prompt in PROMPTS:
        plain = _greedy(backbone, tokenizer, [prompt], draft=False)[0]
        fast = _greedy(backbone, tokenizer, [prompt], draft=True)[0]
        assert fast.token_ids == plain.token_ids and fast.text == plain.text
        assert plain.drafted_tokens == 0
        drafted, accepted = drafted + fast.drafted_tokens, accepted + fast.accepted_tokens
    assert 0 < accepted <= drafted  # drafting really ran and was (partly) right


def test_batched_rows_that_keep_different_numbers_of_drafts_match_plain_greedy(backbone, tokenizer, monkeypatch):
    """Drafts that are right up to a point that differs by row and by step: every rewind and mask path runs."""
    plain = _greedy(backbone, tokenizer, PROMPTS, draft=False)
    truth = [p + c.token_ids for p, c in zip(PROMPTS, plain, strict=True)]

    def half_right(seen, limit):
        full = next(t for t in truth if t[: len(seen)] == list(seen))
        guess = full[len(seen) : len(seen) + limit]
        wrong_at = (len(seen) * 7) % (limit + 2)  # past the end now and then: the whole draft is right
        return [t if i != wrong_at else (t + 1) % 300 for i, t in enumerate(guess)]

    monkeypatch.setattr("nlpsuite.runtime.sequence.propose", half_right)
    fast = _greedy(backbone, tokenizer, PROMPTS, draft=True)
    assert [c.token_ids for c in fast] == [c.token_ids for c in plain]
    assert 0 < fast[0].accepted_tokens < fast[0].drafted_tokens


def test_the_token_limit_is_the_same_with_drafting(backbone, tokenizer):
    for max_tokens in (1, 2, 7):
        plain = _greedy(backbone, tokenizer, PROMPTS[:1], draft=False, max_tokens=max_tokens)[0]
        fast = _greedy(backbone, tokenizer, PROMPTS[:1], draft=True, max_tokens=max_tokens)[0]
        assert fast.token_ids == plain.token_ids and len(fast.token_ids) == max_tokens


def test_sampling_does_not_draft(backbone, tokenizer):
    params = SamplingParams(max_tokens=30, temperature=0.8, seed=3, ignore_eos=True)
    done = Generator(backbone, tokenizer).generate(PROMPTS[:1], params)[0]
    assert done.drafted_tokens == 0 and len(done.token_ids) == 30


def test_each_row_drafts_longer_while_its_guesses_are_kept_and_shorter_when_they_are_not(
    backbone, tokenizer, monkeypatch
):
    """Row 0 always guesses right, row 1 always wrong: the lengths asked of the drafter part ways, row by row."""
    prompts = PROMPTS[:2]
    plain = _greedy(backbone, tokenizer, prompts, draft=False)
    truth = [p + c.token_ids for p, c in zip(prompts, plain, strict=True)]
    asked: dict[int, list[int]] = {0: [], 1: []}

    def guess(seen, limit):
        row = next(r for r, t in enumerate(truth) if t[: len(seen)] == list(seen))
        asked[row].append(limit)
        right = truth[row][len(seen) : len(seen) + limit]
        return right if row == 0 else [(t + 1) % 300 for t in right]

    monkeypatch.setattr("nlpsuite.runtime.sequence.propose", guess)
    alone = _greedy(backbone, tokenizer, prompts[:1], draft=True)
    # 40 tokens: 1 from the prefill, then passes of 4+1, 6+1, 8+1, 10+1 and the 6 the budget leaves
    assert alone[0].token_ids == plain[0].token_ids and asked[0] == [DRAFT_TOKENS, 6, 8, 10, 6]
    asked[0].clear()
    fast = _greedy(backbone, tokenizer, prompts, draft=True)
    assert [c.token_ids for c in fast] == [c.token_ids for c in plain]
    # Two rows in a pass draft 10 // 2 = 5 tokens each at most: 4+1, then 5+1 until the budget leaves 3.
    assert asked[0] == [DRAFT_TOKENS, 5, 5, 5, 5, 5, 3]
    # one token a pass: 4, 3, 2, then the shortest draft until the budget leaves no room (no guess asked then)
    assert asked[1] == [DRAFT_TOKENS, 3, 2] + [MIN_DRAFT_TOKENS] * 35
