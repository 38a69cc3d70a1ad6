"""Prompt-lookup drafting on the real default model: the same greedy tokens, fewer passes."""

from __future__ import annotations

import os

ARTICLE = (
    "The Lakeside Tigers won the national basketball championship on Sunday, beating the Granite City Bears 88 "
    "to 81. Point guard Maya Lindqvist scored 31 points and was named the most valuable player of the tournament."
)


def test_greedy_tokens_are_the_same_with_drafting(real_home):
    os.environ["NLPSUITE_HOME"] = str(real_home)
    from nlpsuite import Suite

    suite = Suite(device="cpu")
    prompt = f"Repeat the article word for word, then summarize it.\n\n{ARTICLE}"
    plain = suite.complete(prompt, max_tokens=64, ignore_eos=True, draft=False)
    fast = suite.complete(prompt, max_tokens=64, ignore_eos=True)
    assert fast.token_ids == plain.token_ids
    assert fast.accepted_tokens > 0 and plain.drafted_tokens == 0
