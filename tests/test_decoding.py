"""The one decoding loop (runtime/batching.py, runtime/sequence.py): greedy output alone, in a batch, with and
without drafting, through the CLI's driver and the server's; chunked prefill; the per-row constraint hook and
the log-probability record."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone, left_pad
from nlpsuite.runtime.batching import DecodeBatch
from nlpsuite.runtime.generation import Generator
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.runtime.tokenizer import Tokenizer

pytestmark = pytest.mark.shared_cache

# Random tiny models soon repeat themselves, so drafts from the prompt and the output get accepted.
PROMPTS = [[5, 17, 42, 99, 7, 3, 5, 17, 42, 99], [11, 12, 11, 12, 11], [200, 150, 100, 50, 25, 200, 150]]


@pytest.fixture(scope="module")
def long_llama(tmp_path_factory, make_tiny_llama):
    """Room for prompts of a few hundred tokens."""
    return make_tiny_llama(tmp_path_factory.mktemp("long-llama"), context=1024, seed=2)


@pytest.fixture(scope="module")
def model(long_llama):
    backbone = Backbone(ensure_model(Catalog().resolve(str(long_llama))), device="cpu")
    return backbone, Tokenizer(backbone.folder, backbone.manifest["special_tokens"])


def greedy(n=40, **extra) -> SamplingParams:
    return SamplingParams(max_tokens=n, ignore_eos=True, **extra)


def tokens(done) -> list[list[int]]:
    return [c.token_ids for c in done]


def serve(backbone, tokenizer, prompts, params, join_every=3, **batch_options):
    """The server's path: rows join a batch already decoding, one every ``join_every`` steps."""
    batch = DecodeBatch(backbone, tokenizer, serving=True, **batch_options)
    rows = [batch.sequence(p, params) for p in prompts]
    queue = list(rows)
    steps = 0
    while queue or batch.size:
        if queue and steps % join_every == 0:
            batch.add([queue.pop(0)])
        batch.step()
        steps += 1
    return [r.completion() for r in rows], batch


def test_greedy_is_the_same_alone_batched_drafted_and_in_the_servers_batch(model):
    backbone, tokenizer = model
    generator = Generator(backbone, tokenizer)
    alone = [generator.generate([p], greedy(draft=False))[0].token_ids for p in PROMPTS]
    assert tokens(generator.generate(PROMPTS, greedy(draft=False))) == alone
    drafted = generator.generate(PROMPTS, greedy())
    assert tokens(drafted) == alone and sum(c.accepted_tokens for c in drafted) > 0
    served, _ = serve(backbone, tokenizer, PROMPTS, greedy())
    assert tokens(served) == alone
    assert sum(c.accepted_tokens for c in served) > 0  # the server's rows draft too
    plain, _ = serve(backbone, tokenizer, PROMPTS, greedy(draft=False))
    assert tokens(plain) == alone and sum(c.drafted_tokens for c in plain) == 0


def test_rows_with_different_draft_counts_share_one_pass(model, monkeypatch):
    """Row 0 guesses right, row 1 wrong, row 2 samples (no guesses): one pass verifies all three."""
    backbone, tokenizer = model
    generator = Generator(backbone, tokenizer)
    params = [greedy(), greedy(), SamplingParams(max_tokens=40, ignore_eos=True, temperature=0.9, seed=4)]
    alone = [generator.generate([p], s)[0].token_ids for p, s in zip(PROMPTS, params, strict=True)]
    truth = [p + t for p, t in zip(PROMPTS, alone, strict=True)]

    def guess(seen, limit):
        row = next(r for r, t in enumerate(truth) if t[: len(seen)] == list(seen))
        right = truth[row][len(seen) : len(seen) + limit]
        return right if row == 0 else [(t + 1) % 300 for t in right]

    monkeypatch.setattr("nlpsuite.runtime.sequence.propose", guess)
    batch = DecodeBatch(backbone, tokenizer, serving=True)
    rows = [batch.sequence(p, s) for p, s in zip(PROMPTS, params, strict=True)]
    batch.add(rows)
    while batch.size:
        batch.step()
    done = [r.completion() for r in rows]
    assert tokens(done) == alone
    assert done[0].accepted_tokens == done[0].drafted_tokens > 0
    assert done[1].drafted_tokens > 0 and done[1].accepted_tokens == 0
    assert done[2].drafted_tokens == 0
    assert batch.passes < 1 + 40  # the right guesses saved passes for everyone


def test_a_pass_drafts_no_more_in_all_than_one_rows_longest_draft(model, monkeypatch):
    """Padding after a short draft costs as much as a guess: four rows guessing right draft 10 // 4 each."""
    backbone, tokenizer = model
    widths = []
    forward = backbone.forward

    def counting(ids, *args, **kwargs):
        if kwargs.get("num_logits", 1) == ids.shape[1]:  # a decode pass
            widths.append(ids.shape[1])
        return forward(ids, *args, **kwargs)

    prompts = PROMPTS + [PROMPTS[0][::-1]]
    truth = [
        p + c.token_ids
        for p, c in zip(prompts, Generator(backbone, tokenizer).generate(prompts, greedy(draft=False)), strict=True)
    ]
    monkeypatch.setattr(
        "nlpsuite.runtime.sequence.propose",
        lambda seen, limit: next(t for t in truth if t[: len(seen)] == list(seen))[len(seen) : len(seen) + limit],
    )
    monkeypatch.setattr(backbone, "forward", counting)
    together = Generator(backbone, tokenizer).generate(prompts, greedy())
    assert [p + c.token_ids for p, c in zip(prompts, together, strict=True)] == truth
    assert max(widths) == 1 + 10 // 4
    widths.clear()
    Generator(backbone, tokenizer).generate(prompts[:1], greedy())
    assert max(widths) == 1 + 10


@pytest.mark.parametrize("chunk", [16, 48, 1024])
def test_a_prompt_prefilled_in_chunks_decodes_what_a_whole_prefill_does(model, chunk):
    backbone, tokenizer = model
    rng = np.random.default_rng(0)
    prompts = [rng.integers(5, 290, size=n).tolist() for n in (300, 37, 130)]
    whole = Generator(backbone, tokenizer, prefill_chunk=4096).generate(prompts, greedy(20))
    chunked = Generator(backbone, tokenizer, prefill_chunk=chunk).generate(prompts, greedy(20))
    assert tokens(chunked) == tokens(whole)
    served, batch = serve(backbone, tokenizer, prompts, greedy(20), join_every=1, prefill_chunk=chunk)
    assert tokens(served) == tokens(whole)
    if chunk == 16:
        assert batch.prefilled == sum(map(len, prompts)) and batch.passes >= 300 // 16


def test_decoding_rows_step_on_while_a_long_prompt_is_prefilled(model):
    """Between two chunks of a newcomer's prefill, every decoding row gets its next tokens."""
    backbone, tokenizer = model
    batch = DecodeBatch(backbone, tokenizer, prefill_chunk=32, serving=True)
    running = batch.sequence(PROMPTS[0], greedy(200, draft=False))
    batch.add([running])
    batch.step()
    newcomer = batch.sequence(list(range(10, 290)) + list(range(10, 290)), greedy(5))
    batch.add([newcomer])
    chunks = 0
    while newcomer in batch.waiting:
        before = running.chosen
        batch.step()
        chunks += 1
        assert running.chosen == before + 1
    assert chunks == -(-len(newcomer.prompt) // 32)


def test_the_log_probabilities_are_the_models_own(model):
    backbone, tokenizer = model
    done = Generator(backbone, tokenizer).generate([PROMPTS[0]], greedy(3, logprobs=4, repetition_penalty=1.3))[0]
    assert [t for t, _, _ in done.logprobs] == done.token_ids
    ids, mask, positions = left_pad([PROMPTS[0]], 0)
    logits = backbone.forward(ids, mask, positions, backbone.empty_state(1)).logits[0, -1].astype(np.float64)
    expected = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())  # before the penalty
    token, logprob, top = done.logprobs[0]
    assert logprob == pytest.approx(expected[token], abs=1e-5) and len(top) == 4
    assert [t for t, _ in top] == np.argsort(-expected)[:4].tolist()
    assert [p for _, p in top] == pytest.approx(np.sort(expected)[::-1][:4], abs=1e-5)


# -- the constraint hook ----------------------------------------------------------------------------------------


class Only:
    """A constraint that allows exactly one token sequence, then ends; with ``eos``, it allows that token at every
    step too and never ends by itself (EOS must wait for ``accepting``, which only the loop enforces)."""

    def __init__(self, target: list[int], force: bool = False, eos: int | None = None) -> None:
        self.target, self.force, self.eos = target, force, eos
        self.done: list[int] = []
        self.masks = 0

    def mask(self, logits):
        self.masks += 1
        allowed = [self.target[len(self.done)]] if len(self.done) < len(self.target) else []
        allowed += [self.eos] if self.eos is not None else []
        keep = logits[allowed].copy()
        logits[:] = -np.inf
        logits[allowed] = keep

    def consume(self, token):
        assert token == self.target[len(self.done)], "consumed a token the mask did not allow"
        self.done.append(token)

    def accepting(self):
        return len(self.done) == len(self.target)

    def finished(self):
        return self.eos is None and self.accepting()

    def forced(self):
        return self.target[len(self.done) :] if self.force else []

    def valid_prefix(self, tokens):
        rest = self.target[len(self.done) :]
        n = 0
        while n < min(len(tokens), len(rest)) and tokens[n] == rest[n]:
            n += 1
        return n

    def rollback(self, n):
        del self.done[len(self.done) - n :]


TARGET = [40, 41, 42, 43, 40, 41, 42, 43, 40, 41, 42, 43, 44]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("draft", [False, True])
def test_a_constrained_row_writes_what_its_constraint_allows_and_stops_when_it_is_finished(model, force, draft):
    backbone, tokenizer = model
    batch = DecodeBatch(backbone, tokenizer, serving=True)
    constraint = Only(TARGET, force=force)
    free = batch.sequence(PROMPTS[1], greedy(30))
    rows = [batch.sequence(PROMPTS[0], SamplingParams(max_tokens=30, draft=draft), constraint), free]
    batch.add(rows)
    while batch.size:
        batch.step()
    done = rows[0].completion()
    assert done.token_ids == TARGET and done.finish_reason == "stop" and constraint.done == TARGET
    if force:  # each token masked once, verified in passes of forced drafts (no guess: the grammar forces all)
        assert constraint.masks == len(TARGET) and done.drafted_tokens == 0
    if draft and not force:  # the target repeats itself: guesses from it were verified, and all were right
        assert done.accepted_tokens == done.drafted_tokens > 0
    assert free.completion().token_ids == Generator(backbone, tokenizer).generate([PROMPTS[1]], greedy(30))[0].token_ids


def test_drafts_are_cut_to_what_the_constraint_allows(model, monkeypatch):
    backbone, tokenizer = model
    monkeypatch.setattr("nlpsuite.runtime.sequence.propose", lambda seen, limit: [40, 41, 7, 8][:limit])
    done = Generator(backbone, tokenizer).generate(
        [PROMPTS[0]], SamplingParams(max_tokens=30), constraints=[Only(TARGET)]
    )[0]
    assert done.token_ids == TARGET
    assert 0 < done.drafted_tokens == done.accepted_tokens  # 7 and 8 were never fed


def test_a_sampled_row_under_a_constraint_still_keeps_to_it(model):
    backbone, tokenizer = model
    for seed in range(3):
        params = SamplingParams(max_tokens=30, temperature=1.5, top_p=0.9, repetition_penalty=1.5, seed=seed)
        done = Generator(backbone, tokenizer).generate(
            [PROMPTS[2]], params, constraints=[Only(TARGET, force=seed == 1)]
        )[0]
        assert done.token_ids == TARGET


class EosFirst:
    """A backbone that always prefers EOS (token 4 in the tiny tokenizer), then token 40."""

    context_length, can_rewind = 256, False

    def empty_state(self, batch):
        return 0

    def forward(self, ids, mask, positions, state, num_logits=1, **_):
        logits = np.full((len(ids), num_logits, 300), -5.0, np.float32)
        logits[:, :, 4], logits[:, :, 40] = 10.0, 5.0
        return type("Step", (), {"logits": logits, "state": state + 1})()


def test_eos_waits_until_the_constraint_accepts(tiny_llama):
    tokenizer = Tokenizer(tiny_llama, {"eos_token_ids": [4]})
    generator = Generator(EosFirst(), tokenizer)
    assert generator.generate([[1, 2]], SamplingParams(max_tokens=20))[0].token_ids == []
    done = generator.generate([[1, 2]], SamplingParams(max_tokens=20), constraints=[Only(TARGET, eos=4)])[0]
    assert done.token_ids == TARGET and done.finish_reason == "stop"  # then EOS, allowed at last


def test_forced_tokens_on_a_recurrent_state(lstm_folder):
    """A recurrent state cannot drop guesses, but forced tokens are never dropped: they are fed there too."""
    backbone = Backbone(lstm_folder, device="cpu")
    tokenizer = Tokenizer(lstm_folder, backbone.manifest["special_tokens"])
    target = [10, 11, 12, 13, 14, 15]
    constraint = Only(target, force=True)
    done = Generator(backbone, tokenizer).generate(
        [[5, 6, 7]], SamplingParams(max_tokens=20), constraints=[constraint]
    )[0]
    assert done.token_ids == target and constraint.masks == len(target)
