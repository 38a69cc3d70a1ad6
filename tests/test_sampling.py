"""Sampling maths and incremental detokenization with stop strings."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.runtime.generation import Generator
from nlpsuite.runtime.sampling import Sampler, SamplingParams
from nlpsuite.runtime.sequence import Stream
from nlpsuite.runtime.tokenizer import Tokenizer

LOGITS = np.log(np.array([[0.05, 0.6, 0.25, 0.1], [0.4, 0.1, 0.2, 0.3]], np.float32))


def draws(params: SamplingParams, n: int = 400) -> np.ndarray:
    sampler = Sampler(params)
    return np.array([sampler(LOGITS, [[], []]) for _ in range(n)])


def test_greedy_is_argmax():
    assert Sampler(SamplingParams())(LOGITS, [[], []]).tolist() == [1, 0]


def test_top_k_one_is_greedy():
    assert (draws(SamplingParams(temperature=1.0, top_k=1, seed=0), 50) == [1, 0]).all()


def test_top_p_keeps_the_smallest_set_reaching_p():
    got = draws(SamplingParams(temperature=1.0, top_p=0.8, seed=1))
    assert set(got[:, 0]) == {1, 2}  # 0.6 + 0.25 reaches 0.8; 0.1 and 0.05 are cut
    assert set(got[:, 1]) == {0, 3, 2}


def test_sampling_follows_the_distribution_and_the_seed():
    a = draws(SamplingParams(temperature=1.0, seed=7), 2000)
    assert abs((a[:, 0] == 1).mean() - 0.6) < 0.05
    assert (a == draws(SamplingParams(temperature=1.0, seed=7), 2000)).all()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = np.array([[2.0, -2.0, 1.5]], np.float32)
    params = SamplingParams(repetition_penalty=2.0)
    # token 0 seen: 2.0 -> 1.0 < 1.5, so greedy moves to token 2
    assert Sampler(params)(logits, [[0]]).tolist() == [2]
    # token 0 seen: -1.0 -> -2.0, below -1.9 but above -2.5
    assert Sampler(params)(np.array([[-1.0, -1.9]], np.float32), [[0]]).tolist() == [1]
    assert Sampler(params)(np.array([[-1.0, -2.5]], np.float32), [[0]]).tolist() == [0]


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_tokens=0),
        dict(temperature=-1),
        dict(temperature=float("nan")),
        dict(temperature=float("inf")),
        dict(top_p=0),
        dict(top_p=2),
        dict(top_p=float("nan")),
        dict(top_k=-1),
        dict(repetition_penalty=0),
        dict(repetition_penalty=float("nan")),
        dict(stop=[""]),
    ],
)
def test_bad_parameters_are_user_errors(bad):
    with pytest.raises(NlpsuiteError):
        SamplingParams(**bad).check()


HALF_A, HALF_B = 0x110000, 0x110001  # the two tokens of a character split across tokens


class CharTokenizer:
    """Token i is chr(i); HALF_A alone decodes to U+FFFD, HALF_A followed by HALF_B to 'é'."""

    def decode(self, ids):
        text = "".join("\ufffd" if i == HALF_A else chr(i) for i in ids if i != HALF_B)
        return text.replace("\ufffd", "é") if HALF_B in ids else text


def feed(stream, text_or_ids):
    tok = CharTokenizer()
    out = []
    for item in text_or_ids:
        out.append(stream.push(ord(item) if isinstance(item, str) else item, tok))
    return out


def test_stop_string_cuts_the_text_and_is_never_emitted():
    stream = Stream(["END"])
    deltas = feed(stream, "abcENDxyz"[:6])
    assert "".join(deltas) == "abc"
    assert stream.done and stream.reason == "stop" and stream.text == "abc"


def test_a_partial_stop_string_is_held_back_then_released():
    stream = Stream(["END"])
    deltas = feed(stream, "abEN")
    assert "".join(deltas) == "ab"
    assert "".join(feed(stream, "x")) == "ENx"
    assert not stream.done


def test_incomplete_utf8_is_held_until_complete():
    stream = Stream([])
    assert feed(stream, ["a", HALF_A]) == ["a", ""]
    assert feed(stream, [HALF_B]) == ["é"]


def test_the_earliest_stop_string_wins_whatever_its_order():
    for stops in (["b", "a"], ["a", "b"]):
        stream = Stream(stops)
        feed(stream, "xab")
        assert stream.text == "x"


def test_a_character_cut_by_the_end_of_generation_is_dropped():
    stream = Stream([])
    assert feed(stream, ["a", HALF_A]) == ["a", ""]
    assert stream.finish("length") == ""
    assert stream.text == "a"


class ScriptedBackbone:
    """Logits that force a fixed token sequence, one token per step."""

    context_length = 1024
    can_rewind = False  # one scripted token per step: it cannot verify drafts

    def __init__(self, script: list[int], vocab: int) -> None:
        self.script, self.vocab = script, vocab

    def empty_state(self, batch: int) -> int:
        return 0

    def forward(self, ids, mask, positions, state, **_):
        logits = np.full((len(ids), 1, self.vocab), -1e9, np.float32)
        logits[:, 0, self.script[state % len(self.script)]] = 0.0
        return types.SimpleNamespace(logits=logits, state=state + 1)


@pytest.mark.shared_cache
@pytest.mark.parametrize("text", ["a東京", "ok 🙂"])
def test_no_replacement_character_when_the_limit_cuts_a_character(tiny_llama, text):
    """The tiny tokenizer is byte-level BPE: CJK and emoji take several byte tokens each."""
    tok = Tokenizer(tiny_llama, {"eos_token_ids": [4]})
    ids = tok.encode(text, add_special_tokens=False)
    for cut in range(1, len(ids) + 1):
        for script in (ids[:cut], ids[:cut] + [4]):  # the token limit, or EOS, right after the cut
            streamed = []
            generator = Generator(ScriptedBackbone(script, 400), tok)
            params = SamplingParams(max_tokens=len(script))
            done = generator.generate([[1]], params, lambda row, delta, out=streamed: out.append(delta))[0]
            assert "\ufffd" not in done.text and "".join(streamed) == done.text
            assert text.startswith(done.text) and len(done.text) >= len(tok.decode(ids[:cut]).rstrip("\ufffd"))


LOOP = [11, 12, 13, 14, 15, 16]  # a 6-token span: 6 copies make the 32 tokens the stop waits for


def test_a_tail_that_only_repeats_itself_is_detected():
    from nlpsuite.runtime.sequence import repeating_tail

    story = list(range(20, 60))
    assert not repeating_tail(story)
    assert not repeating_tail(story + LOOP * 5)  # 30 tokens: not yet
    assert repeating_tail(story + LOOP * 6)
    assert repeating_tail(story + [9] * 32) and not repeating_tail(story + [9] * 31)
    long_span = list(range(100, 140))
    assert not repeating_tail(story + long_span * 2) and repeating_tail(story + long_span * 3)
    assert not repeating_tail(story + LOOP * 5 + [1] + LOOP)  # broken by one other token


@pytest.mark.shared_cache
def test_greedy_decoding_stops_a_loop_with_its_own_reason(tiny_llama):
    tok = Tokenizer(tiny_llama, {"eos_token_ids": [4]})
    script = list(range(20, 30)) + LOOP * 40
    generator = Generator(ScriptedBackbone(script, 400), tok)
    streamed = []
    done = generator.generate([[1]], SamplingParams(max_tokens=200), lambda row, d: streamed.append(d))[0]
    assert done.finish_reason == "repetition" and done.completion_tokens == 10 + 6 * 6
    assert done.token_ids == script[: done.completion_tokens]  # the tokens are the greedy ones: it only stops sooner
    assert "".join(streamed) == done.text == tok.decode(done.token_ids)
    exact = generator.generate([[1]], SamplingParams(max_tokens=200, ignore_eos=True))[0]
    assert exact.finish_reason == "length" and exact.token_ids == script[:200]  # parity runs keep every token


def test_generate_follows_the_models_own_sampling_defaults_when_left_unset(cli, make_tiny_llama, tmp_path):
    """A folder whose generation_config samples (temperature 0.7, top-p 0.9) is sampled by default, as in
    transformers; a model that ships none, and an explicit --temperature 0, stay greedy."""
    import json

    from transformers import GenerationConfig

    folder = make_tiny_llama(tmp_path / "sampler", seed=3)
    GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9, repetition_penalty=1.2).save_pretrained(folder)
    args = ["generate", "hello world", "-n", "12", "--ignore-eos", "--raw", "--json", "--model", str(folder), "-q"]

    def text(*extra):
        result = cli([*args, *extra])
        assert result.code == 0, result.err
        return json.loads(result.out)["text"]

    assert text("--seed", "1") == text("--seed", "1", "--temperature", "0.7", "--top-p", "0.9",
                                       "--repetition-penalty", "1.2")  # fmt: skip
    assert text("--temperature", "0", "--repetition-penalty", "1.2") == text(
        "--temperature", "0", "--repetition-penalty", "1.2", "--seed", "5"
    )  # greedy: the seed plays no part
    assert text("--seed", "1") != text("--temperature", "0", "--repetition-penalty", "1.2")


@pytest.mark.parametrize("name", ["max_tokens", "temperature", "top_k", "top_p", "repetition_penalty"])
def test_the_sampling_options_and_sampling_params_accept_exactly_the_same_values(name):
    from nlpsuite.tasks import sampling_options

    option = next(o for o in sampling_options() if o.name == name)
    values = [
        -1,
        0,
        1e-320,
        1e-6,
        5e-5,
        1e-4,
        0.01,
        0.5,
        1,
        1.0000001,
        2,
        100,
        100.5,
        1e9,
        math.inf,
        -math.inf,
        math.nan,
    ]
    for value in [v for v in values if option.type is float or (math.isfinite(v) and v == int(v))]:
        value = option.type(value)
        try:
            option.check(value)
            by_option = True
        except NlpsuiteError:
            by_option = False
        try:
            SamplingParams(**{name: value}).check()
            by_params = True
        except NlpsuiteError:
            by_params = False
        assert by_option == by_params, (name, value)
