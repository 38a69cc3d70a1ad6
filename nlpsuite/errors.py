"""Errors a user can act on: the CLI prints their message as one line and exits 1."""

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a mistyped ``word`` most likely meant (case aside), or None if none is close."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'X'?`` for the choice closest to a mistyped ``word``, or ""."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match else ""


class NlpsuiteError(Exception):
    """A problem with the user's input, model or environment, explained in one line."""


class ModelNotFoundError(NlpsuiteError):
    """The model name, path or hub id could not be resolved."""


class DeviceError(NlpsuiteError):
    """The requested execution device cannot be used."""


class PluginError(NlpsuiteError):
    """A plugin failed to load or register while strict plugin loading is on."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the user needs to know to carry on (the CLI prints it and exits 130)."""
