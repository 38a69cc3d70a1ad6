"""The prompt cache (runtime/prompt_cache.py): output with it is output without it, prefixes are reused across
calls, rows and chat turns, a small budget evicts the least recently used, and a recurrent state keeps
whole-prefix snapshots."""

from __future__ import annotations

import pytest

from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone
from nlpsuite.runtime.generation import Generator
from nlpsuite.runtime.prompt_cache import BLOCK, PromptCache
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.runtime.tokenizer import Tokenizer

pytestmark = pytest.mark.shared_cache

SHARED = [(7 * i) % 280 + 10 for i in range(100)]  # a 100-token "system prompt"
PROMPTS = [SHARED + [5, 6, 7, 5, 6], SHARED + [8, 9], SHARED[:50] + [1, 2, 3]]


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_tiny_llama):
    folder = make_tiny_llama(tmp_path_factory.mktemp("cache-llama"), context=512, seed=5)
    backbone = Backbone(ensure_model(Catalog().resolve(str(folder))), device="cpu")
    return backbone, Tokenizer(backbone.folder, backbone.manifest["special_tokens"])


def greedy(n=24, **extra) -> SamplingParams:
    return SamplingParams(max_tokens=n, ignore_eos=True, **extra)


def tokens(done) -> list[list[int]]:
    return [c.token_ids for c in done]


def whole_blocks(n: int) -> int:
    return n - n % BLOCK


@pytest.mark.parametrize("draft", [False, True])
def test_output_with_the_cache_is_output_without_it(model, draft):
    backbone, tokenizer = model
    want = Generator(backbone, tokenizer).generate(PROMPTS, greedy(draft=draft))
    cached = Generator(backbone, tokenizer, PromptCache(backbone, 64 * 2**20))
    first = cached.generate(PROMPTS, greedy(draft=draft))
    # Rows of one call share too: the later rows wait one pass for the first row's blocks, then take them.
    assert tokens(first) == tokens(want) and [c.cached_tokens for c in first] == [0, 96, 48]
    again = cached.generate(PROMPTS, greedy(draft=draft))
    assert tokens(again) == tokens(want)
    assert [c.cached_tokens for c in again] == [whole_blocks(len(p) - 1) for p in PROMPTS]
    alone = [cached.generate([p], greedy(draft=draft))[0] for p in PROMPTS]  # one at a time, each from the cache
    assert tokens(alone) == tokens(want) and all(c.cached_tokens > 0 for c in alone)


def test_the_next_turn_reuses_the_last_turns_prompt_and_reply(model):
    backbone, tokenizer = model
    plain, cached = Generator(backbone, tokenizer), Generator(backbone, tokenizer, PromptCache(backbone, 2**24))
    turn = list(PROMPTS[0])
    for _ in range(3):
        reply = cached.generate([turn], greedy(20))[0]
        assert reply.token_ids == plain.generate([turn], greedy(20))[0].token_ids
        fed = turn + reply.token_ids[:-1]  # the last token chosen was never fed to the model
        turn = turn + reply.token_ids + [3, 40, 41]
        assert cached.generate([turn], greedy(1))[0].cached_tokens == whole_blocks(len(fed))


def test_a_small_budget_keeps_the_latest_prefixes_from_their_start(model):
    backbone, tokenizer = model
    ids = list(range(10, 10 + 5 * BLOCK + 3))
    probe = PromptCache(backbone, 2**30)
    Generator(backbone, tokenizer, probe).generate([ids[: BLOCK + 1]], greedy(1))
    block_bytes = probe.bytes  # one block
    cache = PromptCache(backbone, 3 * block_bytes)
    generator = Generator(backbone, tokenizer, cache)
    generator.generate([ids], greedy(1))  # five blocks: only the first three fit, the chain's end went first
    assert cache.entries == 3 and cache.bytes <= cache.budget
    assert cache.match(cache.keys(ids), 0, len(ids)) == 3 * BLOCK
    other = list(range(200, 200 + 2 * BLOCK + 1))
    generator.generate([other], greedy(1))  # two more blocks: the least recently used go
    assert cache.match(cache.keys(other), 0, len(other)) == 2 * BLOCK
    assert cache.match(cache.keys(ids), 0, len(ids)) == BLOCK and cache.bytes <= cache.budget
    want = Generator(backbone, tokenizer).generate([ids, other], greedy())
    assert tokens(generator.generate([ids, other], greedy())) == tokens(want)


def test_nothing_is_kept_without_a_budget(tiny_llama):
    from nlpsuite.api import Suite

    assert Suite(model=str(tiny_llama), device="cpu", cache_mb=0).prompt_cache is None
    suite = Suite(model=str(tiny_llama), device="cpu", cache_mb=8)
    assert suite.prompt_cache.budget == 8 * 2**20


def test_a_suite_reuses_prefixes_across_calls_and_chat_turns(tiny_llama):
    from nlpsuite.api import Suite

    suite, plain = Suite(model=str(tiny_llama), device="cpu"), Suite(model=str(tiny_llama), device="cpu", cache_mb=0)
    system = "a small model speaks in short sentences"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "hello world"}]
    head, other = suite.head("generation"), plain.head("generation")
    first = head.chat(messages, SamplingParams(max_tokens=8))
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "and then?"}]
    second = head.chat(messages, SamplingParams(max_tokens=8))
    assert second.cached_tokens >= whole_blocks(first.prompt_tokens) > 0
    assert second.token_ids == other.chat(messages, SamplingParams(max_tokens=8)).token_ids
    done = suite.complete(["the quick brown fox jumps over the lazy dog " * 4] * 2, raw=True, max_tokens=4)
    assert done[1].cached_tokens == whole_blocks(done[1].prompt_tokens - 1) > 0


def test_a_recurrent_state_resumes_from_the_longest_snapshot(lstm_folder):
    backbone = Backbone(lstm_folder, device="cpu")
    tokenizer = Tokenizer(lstm_folder, backbone.manifest["special_tokens"])
    plain, cached = Generator(backbone, tokenizer), Generator(backbone, tokenizer, PromptCache(backbone, 2**20))
    prompt = [(3 * i) % 50 + 5 for i in range(40)]
    first = cached.generate([prompt], greedy(10))[0]
    assert first.cached_tokens == 0 and first.token_ids == plain.generate([prompt], greedy(10))[0].token_ids
    longer = prompt + [7, 8, 9]
    again = cached.generate([longer], greedy(10))[0]
    assert again.cached_tokens == 32 and again.token_ids == plain.generate([longer], greedy(10))[0].token_ids
    follow = prompt + first.token_ids + [11, 12]  # the reply's own snapshot, taken while it decoded
    resumed = cached.generate([follow], greedy(5))[0]
    assert resumed.cached_tokens == 48 and resumed.token_ids == plain.generate([follow], greedy(5))[0].token_ids
