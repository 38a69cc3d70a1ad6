"""The output constraint (runtime/grammar.py) on the tiny models' tokenizer with scripted logits: whatever the
logits prefer, every output parses and validates (jsonschema is the reference), matches its regex or grammar,
and JSON has no free whitespace; forced tokens, draft prefixes and rollback follow the matcher; bad and hostile
grammars are clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.runtime import grammar
from nlpsuite.runtime.grammar import Grammar

jsonschema = pytest.importorskip("jsonschema")
EOS = 4  # the tiny tokenizer's <|im_end|> (conftest.TINY_EOS)

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
TREE = {  # recursion through $ref
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "label": {"enum": ["a", "b", "leaf"]},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
            },
            "required": ["label"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/node",
}
SCHEMAS = {
    "person": PERSON,
    "tree": TREE,
    "nested": {
        "type": "object",
        "properties": {
            "order": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 3,
                        "items": {
                            "type": "object",
                            "properties": {"sku": {"type": "string", "maxLength": 6}, "qty": {"type": "integer"}},
                            "required": ["sku", "qty"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["id", "items"],
                "additionalProperties": False,
            }
        },
        "required": ["order"],
    },
    "any_of": {
        "type": "object",
        "properties": {
            "value": {"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "null"}, {"const": "none"}]},
            "tags": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 2, "maxItems": 4},
        },
        "required": ["value", "tags"],
    },
    "formats": {
        "type": "object",
        "properties": {
            "day": {"type": "string", "format": "date"},
            "id": {"type": "string", "format": "uuid"},
            "ip": {"type": "string", "format": "ipv4"},
            "score": {"type": "number", "minimum": -1, "maximum": 1},
        },
        "required": ["day", "id", "ip", "score"],
    },
    "top_level_array": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "maxItems": 5},
}


@pytest.fixture(scope="module")
def vocab_text(tiny_tokenizer) -> list[str]:
    return [tiny_tokenizer.decode([i]) for i in range(tiny_tokenizer._tok.get_vocab_size())]


def biased(vocab_text: list[str], favour: str, eos: float = 6.0) -> np.ndarray:
    """A logit bias toward tokens holding one of ``favour``'s characters (so random decoding ends) and EOS."""
    bias = np.array([1.5 if any(ch in text for ch in favour) else 0.0 for text in vocab_text], np.float32)
    bias[EOS] = eos
    return bias


def drive(constraint, rng, bias: np.ndarray, steps: int = 600, fast_forward: bool = False, sample: bool = False):
    """Decode as the loop does: EOS only while accepting, the mask before choosing, then consume; forced tokens
    taken whole when ``fast_forward``. (token ids, ended by the grammar or EOS)."""
    out = []
    while len(out) < steps:
        if fast_forward:
            for token in constraint.forced():
                constraint.consume(token)
                out.append(token)
            if constraint.finished():
                return out, True
        logits = rng.normal(0.0, 2.0, bias.shape[0]).astype(np.float32) + bias
        if not constraint.accepting():
            logits[EOS] = -np.inf
        constraint.mask(logits)
        if sample:
            p = np.exp(logits - logits.max())
            token = int(rng.choice(len(p), p=p / p.sum()))
        else:
            token = int(np.argmax(logits))
        if token == EOS:
            return out, True
        constraint.consume(token)
        out.append(token)
        if constraint.finished():
            return out, True
    return out, False


def outside_strings(text: str) -> str:
    """The characters of JSON ``text`` that are not inside a string."""
    out, inside, escaped = [], False, False
    for ch in text:
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                inside = False
        elif ch == '"':
            inside = True
        else:
            out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize("mode", ["argmax", "sample", "fast_forward"])
def test_every_output_parses_and_validates_whatever_the_logits(name, mode, tiny_tokenizer, vocab_text):
    schema = SCHEMAS[name]
    spec = Grammar.json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    bias = biased(vocab_text, '"}],') + biased(vocab_text, " \n\t", eos=0) * 2  # whitespace tempts it too
    ended = 0
    for seed in range(8):
        constraint = grammar.constraint(spec, tiny_tokenizer)
        rng = np.random.default_rng(seed)
        ids, done = drive(constraint, rng, bias, fast_forward=mode == "fast_forward", sample=mode == "sample")
        if not done:
            continue  # cut by the step budget: incomplete, as a max_tokens cut would be (never closed for it)
        ended += 1
        text = tiny_tokenizer.decode(ids)
        value = json.loads(text)
        validator.validate(value)
        assert spec.parse(text) == value
        # one line, one space after each ':' and ',' and no other whitespace between tokens (nothing to loop in)
        assert not re.search(r"\s", re.sub(r"(?<=[:,]) ", "", outside_strings(text))), text
    assert ended >= 4


def test_a_cut_output_is_left_incomplete_not_closed(tiny_tokenizer, vocab_text):
    constraint = grammar.constraint(Grammar.json_schema(PERSON), tiny_tokenizer)
    ids, done = drive(constraint, np.random.default_rng(0), biased(vocab_text, ""), steps=5)
    assert not done and not constraint.accepting()
    with pytest.raises(ValueError):
        json.loads(tiny_tokenizer.decode(ids))


def test_json_object_gives_an_object(tiny_tokenizer, vocab_text):
    spec = Grammar.json_object()
    values = []
    for seed in range(4):
        ids, done = drive(
            grammar.constraint(spec, tiny_tokenizer), np.random.default_rng(seed), biased(vocab_text, '"}')
        )
        if done:
            values.append(json.loads(tiny_tokenizer.decode(ids)))
    assert values and all(isinstance(v, dict) for v in values)


def test_fixed_keys_are_forced_and_drafts_are_cut_to_their_valid_prefix(tiny_tokenizer):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}  # fmt: skip
    constraint = grammar.constraint(Grammar.json_schema(schema), tiny_tokenizer)
    forced = constraint.forced()
    assert tiny_tokenizer.decode(forced) == '{"name": "'
    good = tiny_tokenizer.encode('{"name": "cat"}', add_special_tokens=False)
    bad = tiny_tokenizer.encode('{"name": "cat"}}', add_special_tokens=False)
    assert constraint.valid_prefix(good) == len(good)
    assert constraint.valid_prefix(bad) == len(good)  # the second brace is refused
    assert constraint.valid_prefix([]) == 0
    for token in good:
        assert not constraint.finished()
        constraint.consume(token)
    assert constraint.accepting() and constraint.finished()
    constraint.rollback(1)  # back before the closing brace: not complete any more, and only it may follow
    assert not constraint.accepting() and not constraint.finished()
    logits = np.zeros(300, np.float32)
    constraint.mask(logits)
    assert {tiny_tokenizer.decode([t]) for t in np.flatnonzero(np.isfinite(logits))} == {"}"}


def test_eos_is_allowed_only_where_the_grammar_accepts(tiny_tokenizer):
    constraint = grammar.constraint(Grammar.regex("ab+"), tiny_tokenizer)
    logits = np.zeros(300, np.float32)
    constraint.mask(logits)
    assert not np.isfinite(logits[EOS]) and not constraint.accepting()
    for token in tiny_tokenizer.encode("ab", add_special_tokens=False):
        constraint.consume(token)
    logits = np.zeros(300, np.float32)
    constraint.mask(logits)
    assert constraint.accepting() and np.isfinite(logits[EOS])


def test_wider_logits_than_the_tokenizer_are_masked_past_its_vocabulary(tiny_tokenizer):
    constraint = grammar.constraint(Grammar.json_object(), tiny_tokenizer)
    logits = np.zeros(320, np.float32)  # a model whose embedding has padding rows
    constraint.mask(logits)
    assert not np.isfinite(logits[300:]).any() and np.isfinite(logits[:300]).any()


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        (Grammar.regex(r"(yes|no|maybe)"), r"(yes|no|maybe)"),
        (Grammar.regex(r"[0-9]{3}-[a-z]{2,4}"), r"[0-9]{3}-[a-z]{2,4}"),
        (Grammar.from_grammar_text('start: "the " ANIMAL\nANIMAL: "cat" | "dog" | "bird"\n'), r"the (cat|dog|bird)"),
        # GBNF as llama.cpp users write it: root, ::=, character classes, repetition
        (
            Grammar.from_grammar_text('root ::= item ("," item){0,2}\nitem ::= [a-c]+ | "x" [0-9]\n'),
            r"([a-c]+|x[0-9])(,([a-c]+|x[0-9])){0,2}",
        ),
        (Grammar.from_grammar_text('root ::= "A" | "B"\n', "choice.gbnf"), r"A|B"),
    ],
)
def test_regex_lark_and_gbnf_outputs_match(spec, pattern, tiny_tokenizer, vocab_text):
    assert spec.kind in ("regex", "lark", "gbnf")
    ended = 0
    for seed in range(8):
        ids, done = drive(
            grammar.constraint(spec, tiny_tokenizer), np.random.default_rng(seed), biased(vocab_text, ",")
        )
        if done:
            ended += 1
            assert re.fullmatch(pattern, tiny_tokenizer.decode(ids)), tiny_tokenizer.decode(ids)
    assert ended >= 6


def test_grammar_kind_follows_the_file_name_then_the_rules():
    assert Grammar.from_grammar_text('root ::= "a"').kind == "gbnf"
    assert Grammar.from_grammar_text('start: "a"').kind == "lark"
    assert Grammar.from_grammar_text('start: "a"', "g.gbnf").kind == "gbnf"
    assert Grammar.from_grammar_text('root ::= "a"', "g.lark").kind == "lark"


def test_properties_come_out_in_the_schemas_order(tiny_tokenizer):
    schema = {"type": "object", "properties": {"zeta": {"const": 1}, "alpha": {"const": 2}},
              "required": ["zeta", "alpha"], "additionalProperties": False}  # fmt: skip
    constraint = grammar.constraint(Grammar.json_schema(schema), tiny_tokenizer)
    ids = []
    while not constraint.finished():
        forced = constraint.forced()
        assert forced  # every byte of this schema's output is fixed
        for token in forced:
            constraint.consume(token)
        ids += forced
    assert tiny_tokenizer.decode(ids) == '{"zeta": 1, "alpha": 2}'


def test_equal_schemas_are_one_grammar_and_compile_once(tiny_tokenizer):
    a = Grammar.json_schema({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}})
    b = Grammar.json_schema('{"type": "object", "required": ["a"],\n "properties": {"a": {"type": "integer"}}}')
    assert a == b and hash(a) == hash(b)
    assert grammar.compile_for(a, tiny_tokenizer) is grammar.compile_for(b, tiny_tokenizer)
    one, two = grammar.constraint(a, tiny_tokenizer), grammar.constraint(a, tiny_tokenizer)
    one.consume(one.forced()[0])  # rows are independent copies
    assert two.forced() != one.forced()


def test_a_pydantic_model_class_is_a_schema():
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):
        name: str
        population: int

    class Country(pydantic.BaseModel):
        capital: City
        cities: list[City]

    spec = json.loads(Grammar.json_schema(Country).source)
    assert spec["required"] == ["capital", "cities"]
    # strict as OpenAI's strict mode: no object takes keys the class does not have
    assert spec["additionalProperties"] is False and spec["$defs"]["City"]["additionalProperties"] is False
    assert "additionalProperties" not in json.loads(Grammar.json_schema(Country, strict=False).source)


def test_closed_schemas_take_no_other_keys_and_keep_property_names():
    named = {"properties": {"type": "object", "properties": {"x": {}}},
             "items": {"type": "array", "items": {"properties": {"y": {}}}}}  # fmt: skip
    schema = {"type": "object", "properties": named, "additionalProperties": True}
    got = grammar.closed(schema)
    assert got["additionalProperties"] is True  # said: kept
    assert got["properties"]["properties"] == {"type": "object", "properties": {"x": {}}, "additionalProperties": False}
    assert got["properties"]["items"]["items"] == {"properties": {"y": {}}, "additionalProperties": False}
    assert set(got["properties"]) == {"properties", "items"} and "additionalProperties" not in schema["properties"]


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "array", "uniqueItems": True}, "keywords this server does not support: uniqueItems"),
        ({"if": {"type": "string"}, "then": {"minLength": 1}}, "does not support: if, then"),
        ({"type": "string", "format": "no-such-format"}, "Unknown format: no-such-format"),
        ({"$ref": "#/$defs/missing"}, "does not exist"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum (5) is greater than maximum (1)"),
    ],
)
def test_unsupported_or_impossible_schemas_are_one_line_errors_without_a_model(schema, words):
    spec = Grammar.json_schema(schema)
    with pytest.raises(NlpsuiteError, match=re.escape(words)) as caught:
        spec.check()
    assert "\n" not in str(caught.value)


def test_bad_inputs_are_clear_errors(tiny_tokenizer):
    with pytest.raises(NlpsuiteError, match="not valid JSON"):
        Grammar.json_schema("{nope")
    with pytest.raises(NlpsuiteError, match="must be a JSON object"):
        Grammar.json_schema("[1, 2]")
    with pytest.raises(NlpsuiteError, match="over 64 KiB"):
        Grammar.json_schema({"enum": ["x" * 100] * 1000})
    with pytest.raises(
        NlpsuiteError, match=r'regex is not supported: invalid regex "\[a-z" .*: unclosed character class'
    ):
        Grammar.regex("[a-z").check()
    with pytest.raises(NlpsuiteError, match="GBNF grammar does not parse"):
        Grammar.from_grammar_text("root ::= (", "g.gbnf").check()
    with pytest.raises(NlpsuiteError, match="No 'root' rule found"):  # as llama.cpp, GBNF starts at root
        Grammar.from_grammar_text('answer ::= "A"').check()
    with pytest.raises(NlpsuiteError, match="grammar is not supported: .*unknown name"):
        grammar.compile_for(Grammar.from_grammar_text("start: foo"), tiny_tokenizer)
    with pytest.raises(NlpsuiteError, match="empty"):
        Grammar.regex("")


def test_a_hostile_schema_is_refused_once_its_compile_runs_past_the_bound(tiny_tokenizer, monkeypatch):
    # This 50-byte pattern asks for a lexer of a million states: its compile is refused, not waited for.
    monkeypatch.setattr(grammar, "COMPILE_SECONDS", 0.001)
    hostile = Grammar.json_schema({"type": "string", "pattern": "^(a{1000}){1000}$"})
    with pytest.raises(NlpsuiteError, match="took over 0.001 s to compile: simplify it"):
        grammar.constraint(hostile, tiny_tokenizer)
    started = []
    monkeypatch.setattr(grammar._Compile, "_run", lambda self, lltok: started.append(self))
    monkeypatch.setattr(grammar, "COMPILE_SECONDS", 120.0)
    grammar.constraint(hostile, tiny_tokenizer)  # waits for the compile already running: it ends, within LIMITS
    assert not started
