"""What a generating task's output may be held to: a JSON Schema, a regex, a Lark or GBNF grammar, or any JSON
object. The options are declared here once for every task that offers them; ``output_grammar`` makes the one
Grammar they ask for (runtime/grammar.py), which the task decodes with."""

from __future__ import annotations

from .errors import NlpsuiteError
from .tasks import Option, check_sampling


def output_options() -> tuple[Option, ...]:
    """What a generating task's output may be held to (at most one): a JSON Schema, a regex, a Lark or GBNF
    grammar, or any JSON object; each is compiled (and refused with one line) before any model loads, and kept
    as given (``output_grammar`` makes the Grammar run() decodes with)."""
    return (
        Option("schema", dict, None, "JSON Schema the output must match: JSON text or a file.", file=True,
               parse=lambda v: _checked("schema", v)),
        Option("regex", str, None, "Regular expression the output must match.", parse=lambda v: _checked("regex", v)),
        Option("grammar", str, None, "Grammar the output must match: Lark, or GBNF (rules with ::=, from root); "
               "text or a file.", file=True, parse=lambda v: _checked("grammar", v)),
        Option("json_object", bool, False, "The output is one JSON object (any keys)."),
    )  # fmt: skip


def _grammar(name: str, value):
    from .runtime.grammar import Grammar

    makers = {"schema": Grammar.json_schema, "regex": Grammar.regex, "grammar": Grammar.from_grammar_text}
    return makers[name](value)


def _checked(name: str, value):
    _grammar(name, value).check()
    return value


def output_grammar(options: dict):
    """The one Grammar that output_options() in ``options`` ask for (None: free text); refuses two."""
    from .runtime.grammar import Grammar

    given = [_grammar(name, options[name]) for name in ("schema", "regex", "grammar") if options.get(name) is not None]
    if options.get("json_object"):
        given.append(Grammar.json_object())
    if len(given) > 1:
        raise NlpsuiteError("give one of --schema, --regex, --grammar and --json-object, not several")
    return given[0] if given else None


def check_generation(options: dict, shared: dict | None = None, batch: bool = False) -> None:
    """A Task.check for tasks that offer sampling_options() and output_options(): both, before any model."""
    check_sampling(options, shared, batch)
    output_grammar(options)
