"""Constrained decoding: a row's output held to a JSON Schema, a regex or a grammar (Lark, or GBNF as llama.cpp
users write it) by llguidance's matcher, which reads the model's own ``tokenizer.json`` (no torch).

A ``Grammar`` says what the output must match; it is small, immutable and hashable, so it rides on
``SamplingParams`` through every generating path. ``constraint(grammar, tokenizer)`` gives a row its own matcher:
copied from one compiled per grammar and tokenizer (cached), after a compile bounded in size, fuel and time, so
a hostile schema is a clear error, never a hung server. JSON comes on one line with fixed spacing: no free
whitespace between tokens, the runs small models loop in.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NlpsuiteError

KINDS = ("json_schema", "json_object", "regex", "lark", "gbnf")
JSON_KINDS = ("json_schema", "json_object")
MAX_SOURCE_BYTES = 64 * 1024  # a schema or grammar's text: compile time grows with it (~0.1 s for 50 KiB)
COMPILE_SECONDS = 5.0  # a compile still running after this is refused (it ends by itself, within its fuel)
COMPILED_KEPT = 64  # compiled grammars kept per process, least recently used dropped first
# JSON on one line, spaced as models write it ('{"age": 34, "city": "Oslo"}'): one space after each ':' and
# ',', nowhere else, so no free whitespace runs to loop in. Compact JSON ('"age":34') is no cheaper and costs
# quality: a digit right after ':' is not how the model writes a number (on extract's person set the default
# model got 5/18 ages right compact, 16/18 spaced). An unsupported keyword is an error, never ignored; these
# override the schema's own "x-guidance" settings.
JSON_OPTIONS = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", ", "lenient": False}
# Fuel (work units of llguidance's lexer) for the first mask and for each later one, and its memory: a
# 50-byte pattern such as "(a{1000}){1000}" takes 4 s of first mask at the defaults (1M), 0.7 s at 200k;
# schemas of 1000 enum values or 500 properties need well under it.
LIMITS = {"initial_lexer_fuel": 200_000, "step_lexer_fuel": 100_000, "max_lexer_states": 50_000,
          "verbose_errors": False}  # fmt: skip


@dataclass(frozen=True)
class Grammar:
    """What an output must match: ``kind`` (one of KINDS) and its ``source`` text (a schema as compact JSON)."""

    kind: str
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NlpsuiteError(f"unknown grammar kind {self.kind!r} (one of: {', '.join(KINDS)})")
        if len(self.source.encode("utf-8")) > MAX_SOURCE_BYTES:
            raise NlpsuiteError(f"the {_noun(self.kind)} is over {MAX_SOURCE_BYTES // 1024} KiB: simplify it")
        if self.kind != "json_object" and not self.source.strip():
            raise NlpsuiteError(f"the {_noun(self.kind)} is empty")

    @classmethod
    def json_schema(cls, schema: dict | str | Any, strict: bool | None = None) -> Grammar:
        """From a JSON Schema: a dict, its JSON text, or a pydantic model class. ``strict`` (the default for a
        class, as OpenAI's strict mode): objects that list their properties take no others."""
        if hasattr(schema, "model_json_schema"):  # a pydantic model class (pydantic is never imported here)
            schema, strict = schema.model_json_schema(), strict is not False
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise NlpsuiteError(f"the JSON schema is not valid JSON: {exc}") from None
        if not isinstance(schema, dict):
            raise NlpsuiteError("a JSON schema must be a JSON object")
        if strict:
            schema = closed(schema)
        # Compact but in its own order: properties come out in the order the schema lists them.
        return cls("json_schema", json.dumps(schema, ensure_ascii=False, separators=(",", ":")))

    @classmethod
    def json_object(cls) -> Grammar:
        return cls("json_object")

    @classmethod
    def regex(cls, pattern: str) -> Grammar:
        return cls("regex", pattern)

    @classmethod
    def from_grammar_text(cls, text: str, name: str = "") -> Grammar:
        """A Lark or a GBNF grammar: GBNF by a ``.gbnf`` name, Lark by ``.lark``, else by its rules (``::=``)."""
        suffix = Path(name).suffix.lower()
        gbnf = suffix == ".gbnf" or (suffix != ".lark" and re.search(r"^\s*[\w-]+\s*::=", text, re.MULTILINE))
        return cls("gbnf" if gbnf else "lark", text)

    @property
    def is_json(self) -> bool:
        return self.kind in JSON_KINDS

    def parse(self, text: str) -> Any:
        """The value an output of this grammar spells: parsed JSON for a schema, else the text itself."""
        return json.loads(text) if self.is_json else text

    def check(self) -> None:
        """Refuse a grammar llguidance cannot compile (an unsupported schema keyword, a bad regex...), without
        any model; NlpsuiteError names the problem."""
        _compile_check(self)

    def describe(self) -> str:
        return _noun(self.kind)


SUBSCHEMAS = {"properties": "map", "$defs": "map", "definitions": "map", "patternProperties": "map",
              "items": "one", "additionalProperties": "one", "not": "one", "contains": "one",
              "prefixItems": "list", "anyOf": "list", "oneOf": "list", "allOf": "list"}  # fmt: skip


def closed(schema):
    """``schema`` with ``"additionalProperties": false`` on every object that lists its properties and says
    nothing of others (a copy): without it a model may add keys of its own until its budget runs out."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key, shape in SUBSCHEMAS.items():
        if key not in out:
            continue
        if shape == "map" and isinstance(out[key], dict):
            out[key] = {name: closed(sub) for name, sub in out[key].items()}
        elif shape == "list" and isinstance(out[key], list):
            out[key] = [closed(sub) for sub in out[key]]
        elif shape == "one":
            out[key] = closed(out[key])
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _noun(kind: str) -> str:
    return {"json_schema": "JSON schema", "json_object": "JSON object", "regex": "regex"}.get(kind, "grammar")


def _llguidance_text(grammar: Grammar) -> str:
    """The grammar in llguidance's own form."""
    import llguidance

    if grammar.is_json:
        schema = grammar.source if grammar.kind == "json_schema" else '{"type":"object"}'
        return llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=JSON_OPTIONS)
    if grammar.kind == "regex":
        return llguidance.LLMatcher.grammar_from_regex(grammar.source)
    text = grammar.source
    if grammar.kind == "gbnf":
        from llguidance.gbnf_to_lark import gbnf_to_lark

        try:
            text = gbnf_to_lark(text)
        except Exception as exc:  # noqa: BLE001 - the converter's own parse errors, with the line
            raise NlpsuiteError(f"the GBNF grammar does not parse: {exc}") from None
    return llguidance.LLMatcher.grammar_from_lark(text)


def _limits():
    import llguidance

    return llguidance.LLParserLimits(**LIMITS)


def _compile_check(grammar: Grammar) -> str:
    """llguidance's text of ``grammar``, checked without a tokenizer (remembered: check() runs per row)."""
    found = _checked(grammar)
    if isinstance(found, NlpsuiteError):
        raise found
    return found


@functools.lru_cache(maxsize=COMPILED_KEPT)
def _checked(grammar: Grammar) -> str | NlpsuiteError:
    import llguidance

    try:
        text = _llguidance_text(grammar)
    except NlpsuiteError as exc:
        return exc
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(text, None, limits=_limits())
    return NlpsuiteError(_refusal(grammar, messages[0])) if failed else text


def _refusal(grammar: Grammar, error: str) -> str:
    """llguidance's error in one line, naming unsupported schema keywords."""
    keys = re.search(r"Unimplemented keys: \[([^\]]*)\]", error)
    if keys:
        names = ", ".join(k.strip().strip('"') for k in keys.group(1).split(","))
        return f"the JSON schema uses keywords this server does not support: {names}"
    lines = [line.strip() for line in error.splitlines() if line.strip()] or ["it does not compile"]
    first = lines[0].rstrip(":")
    if grammar.kind != "lark":  # positions in the Lark text llguidance made of it: not the user's
        first = re.sub(r"^at \d+\(\d+\): ", "", first)
    details = [line[len("error:") :].strip() for line in lines[1:] if line.startswith("error:")]
    return f"the {grammar.describe()} is not supported: {': '.join([first, *details])}"


# -- the model's side: its tokenizer, compiled grammars, and one constraint per row ------------------------------

_lock = threading.Lock()
_tokenizers: dict[tuple, Any] = {}
_compiled: OrderedDict[tuple, Any] = OrderedDict()


def _lltokenizer(tokenizer) -> Any:
    """llguidance's view of the model's tokenizer.json, built once per file (about 1 s for a 49k vocabulary)."""
    import llguidance

    path = Path(tokenizer.file)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, tuple(tokenizer.eos_token_ids))
    with _lock:
        found = _tokenizers.get(key)
    if found is None:
        eos = list(tokenizer.eos_token_ids) or None
        found = llguidance.LLTokenizer(path.read_text(encoding="utf-8"), eos_token=eos)
        with _lock:
            _tokenizers[key] = found
    return found


def compile_for(grammar: Grammar, tokenizer) -> Any:
    """The grammar's matcher for this tokenizer, compiled once (its first mask computed, within LIMITS) and
    kept; rows decode with copies of it. NlpsuiteError when it cannot be used, or when its compile runs past
    COMPILE_SECONDS: later calls wait on that same compile, never start another."""
    lltok = _lltokenizer(tokenizer)
    key = (grammar, id(lltok))
    with _lock:
        job = _compiled.get(key)
        if job is None:
            job = _compiled[key] = _Compile(grammar, lltok)
            while len(_compiled) > COMPILED_KEPT:
                _compiled.popitem(last=False)
        else:
            _compiled.move_to_end(key)
    return job.result()


class _Compile:
    """One grammar's compile for one tokenizer, on a thread of its own (llguidance releases the GIL meanwhile)."""

    def __init__(self, grammar: Grammar, lltok) -> None:
        self.grammar = grammar
        self.matcher = None
        self.error: NlpsuiteError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(lltok,), name="nlpsuite-grammar", daemon=True).start()

    def _run(self, lltok) -> None:
        import llguidance

        try:
            matcher = llguidance.LLMatcher(lltok, _compile_check(self.grammar), limits=_limits(), log_level=0)
            if not matcher.is_error():
                matcher.compute_bitmask()  # the first mask builds the lexer: the costly part of a compile
            if matcher.is_error():
                self.error = NlpsuiteError(_refusal(self.grammar, matcher.get_error()))
            else:
                self.matcher = matcher
        except NlpsuiteError as exc:
            self.error = exc
        finally:
            self.done.set()

    def result(self):
        if not self.done.wait(COMPILE_SECONDS):
            raise NlpsuiteError(
                f"the {self.grammar.describe()} took over {COMPILE_SECONDS:g} s to compile: simplify it"
            )
        if self.error is not None:
            raise self.error
        return self.matcher


def constraint(grammar: Grammar, tokenizer) -> GrammarConstraint:
    """A fresh constraint for one row (see runtime.sequence.Constraint)."""
    return GrammarConstraint(compile_for(grammar, tokenizer).deep_copy(), _lltokenizer(tokenizer).vocab_size)


class GrammarConstraint:
    """One row's matcher: masks logits, follows the tokens the row keeps, and says what is forced next."""

    def __init__(self, matcher, vocab: int) -> None:
        self.matcher = matcher
        self.vocab = vocab  # the tokenizer's; the model's logits may be wider (padding rows of the embedding)
        self._words = np.zeros((vocab + 31) // 32, np.int32)

    def mask(self, logits: np.ndarray) -> None:
        """Set the logits [vocab] of tokens the grammar does not allow next to -inf, in place."""
        self.matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
        self._check()
        known = min(self.vocab, logits.shape[-1])
        allowed = np.unpackbits(self._words.view(np.uint8), count=known, bitorder="little").view(bool)
        np.copyto(logits[:known], -np.inf, where=~allowed)
        logits[known:] = -np.inf

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            self._check()

    def accepting(self) -> bool:
        return self.matcher.is_accepting()

    def finished(self) -> bool:
        return self.matcher.is_stopped()

    def forced(self) -> list[int]:
        return list(self.matcher.compute_ff_tokens())

    def valid_prefix(self, tokens: list[int]) -> int:
        return self.matcher.validate_tokens(tokens) if tokens else 0

    def rollback(self, n: int) -> None:
        if n and not self.matcher.rollback(n):
            self._check()

    def _check(self) -> None:
        if self.matcher.is_error():
            error = self.matcher.get_error().splitlines()[0] if self.matcher.get_error() else "unknown error"
            raise NlpsuiteError(f"the output constraint failed: {error}")
