"""The raw signals of a generated result that a confidence model (eval/confidence.py) turns into a score: the
model's log-probabilities of what it wrote, read per result, per sentence or per field. Plain Python: the plugins
import it when their tasks register.
"""

from __future__ import annotations

import json
import math

FLOOR = -50.0  # the signal of a log-probability there is none of (an empty output, no span); lower ones count as it


def sequence_signals(source: str, output: str, parts: list[tuple[float, int]]) -> list[float]:
    """The signals of a generated text made of ``parts`` ((log-probability, tokens) of each generated piece): its
    mean log-probability per token, that of its least likely piece, log(tokens), and log of its length against
    the input's (a translation far shorter or longer than its source is seldom right)."""
    tokens = sum(n for _, n in parts)
    if not tokens:
        return [FLOOR, FLOOR, 0.0, math.log(1 / (len(source) + 1))]
    mean = sum(lp for lp, _ in parts) / tokens
    worst = min(lp / n for lp, n in parts if n)
    return [mean, worst, math.log(tokens), math.log((len(output) + 1) / (len(source) + 1))]


def field_signals(decode, completion, data, text: str, names: list[str]) -> list[list[float]]:
    """One row of extract's signals per field of ``names`` (or, with none, one for the whole object) of a finished
    object, decoded by ``decode``: the mean and first log-probability of the value's own tokens (a string's
    characters, not its quotes), whether it is null, whether it stands in ``text``, and the share of ``text`` it
    takes."""
    ids = completion.token_ids
    said_text = decode(ids)
    ends = [len(decode(ids[: k + 1])) for k in range(len(ids))]  # where each token's text ends in ``said_text``
    logps = [lp for _, lp, _ in completion.logprobs]
    spans = members(said_text) if names else {}

    def row(start: int, end: int, value) -> list[float]:
        if value is not None and isinstance(value, str) and end - start >= 2:
            start, end = start + 1, end - 1  # a string's characters, not its quotes
        said = [lp for k, lp in enumerate(logps) if start < ends[k] and (ends[k - 1] if k else 0) < end]
        return [
            sum(said) / len(said) if said else 0.0,
            said[0] if said else 0.0,
            float(value is None),
            float(in_text(value, text)),
            min(len(value) / len(text), 1.0) if isinstance(value, str) else 0.0,
        ]

    if not names:
        return [row(0, len(said_text), data)]
    return [row(*spans[name], data.get(name)) if name in spans else [0.0, 0.0, 1.0, 0.0, 0.0] for name in names]


def members(text: str) -> dict[str, tuple[int, int]]:
    """Where each top-level member's value stands in the text of a JSON object: name -> (start, end); the members
    before any point where the text stops being JSON (then the fields after it read as left out)."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    i = _blank(text, 0) + 1  # past "{"
    try:
        while (i := _blank(text, i)) < len(text) and text[i] == '"':
            name, i = json.decoder.scanstring(text, i + 1)
            i = _blank(text, _blank(text, i) + 1)  # past ":"
            _, end = decoder.raw_decode(text, i)
            spans[name] = (i, end)
            i = _blank(text, end)
            i += text[i : i + 1] == ","
    except ValueError:
        pass
    return spans


def _blank(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def in_text(value, text: str) -> bool:
    """Whether a value stands in the text as written, case aside (a number as it is or without ".0")."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    forms = {str(value)} if isinstance(value, str) else {json.dumps(value), f"{value:g}"}
    return any(f.strip() and f.strip().casefold() in text.casefold() for f in forms)
