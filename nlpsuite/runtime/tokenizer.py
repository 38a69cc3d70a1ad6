"""Tokenization with `tokenizers` and chat templates rendered in jinja2's sandbox."""

from __future__ import annotations

import datetime as _dt
import json
import re
from functools import cached_property
from pathlib import Path

from ..artefacts import TOKENIZER_FILE
from ..errors import NlpsuiteError

# Used when a model ships no chat template (a base model, or one converted without its tokenizer config).
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


class Tokenizer:
    """Text <-> token ids for one converted model."""

    def __init__(self, folder: Path, special: dict) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        self.file = Path(folder) / TOKENIZER_FILE  # what grammar.py's matcher reads too
        self._tok = _Tokenizer.from_file(str(self.file))
        self.bos_token_id = special.get("bos_token_id")
        self.eos_token_ids = [i for i in special.get("eos_token_ids", []) if i is not None]
        self.pad_token_id = special.get("pad_token_id") or 0
        self.bos_token = special.get("bos_token") or ""
        self.eos_token = special.get("eos_token") or ""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def count(self, text: str) -> int:
        """How many tokens ``text`` takes (no special tokens): the unit every budget is measured in."""
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of ``text`` (no special tokens) with each token's character span in it."""
        encoding = self._tok.encode(text, add_special_tokens=False)
        return encoding.ids, [tuple(span) for span in encoding.offsets]

    def decode(self, ids: list[int], skip_special: bool = True) -> str:
        return self._tok.decode(ids, skip_special_tokens=skip_special)

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id's entry in the vocabulary, as stored (byte-level BPE's "Ġ" for a space, SentencePiece's "▁")."""
        return [self._tok.id_to_token(i) or "" for i in ids]

    def pieces(self, ids: list[int]) -> list[str | list[int]]:
        """The text each token adds, one at a time; a token that holds part of a character is its bytes."""
        added = set(self._tok.get_added_tokens_decoder())
        byte_level = type(self._tok.decoder).__name__ == "ByteLevel"
        out: list[str | list[int]] = []
        for i, token in zip(ids, self.token_strings(ids), strict=True):
            if i in added:
                data = token.encode()
            elif byte_level:
                data = bytes(_BYTE_OF[c] for c in token)
            elif _BYTE_TOKEN.fullmatch(token):  # SentencePiece's byte fallback: <0x0A>
                data = bytes([int(token[3:5], 16)])
            else:
                data = token.replace("\u2581", " ").encode()
            try:
                out.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(list(data))
        return out


def _byte_alphabet() -> dict[str, int]:
    """Byte-level BPE's printable stand-in for each byte (GPT-2's table), read backwards: character -> byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    shifted = [b for b in range(256) if b not in kept]
    return {**{chr(b): b for b in kept}, **{chr(256 + n): b for n, b in enumerate(shifted)}}


_BYTE_OF = _byte_alphabet()
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _refused(exc: Exception) -> NlpsuiteError:
    fix = "fix the template in the model's files or use another model"
    return NlpsuiteError(f"refusing the model's chat template: {exc}; {fix}")


class ChatTemplate:
    """A model's chat template; untrusted text, so it runs in an immutable sandbox."""

    def __init__(self, source: str | None, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source or PLAIN_TEMPLATE
        self.bos_token, self.eos_token = bos_token, eos_token

    @cached_property
    def _template(self):
        from jinja2 import TemplateError

        from .sandbox import BoundedSandbox, TemplateLimitError

        def raise_exception(message):
            raise TemplateError(message)

        env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.add_filter("tojson", lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent))
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: _dt.datetime.now().strftime(fmt)
        try:
            return env.from_string(self.source)
        except TemplateLimitError as exc:
            raise _refused(exc) from None
        except TemplateError as exc:
            raise NlpsuiteError(f"the model's chat template does not parse: {exc}") from None

    def compile(self) -> None:
        """Import jinja2 and parse the template now rather than at the first render."""
        self._template  # noqa: B018 - the cached property's work is the point

    @cached_property
    def takes_tools(self) -> bool:
        """Whether the template renders a ``tools`` variable (tool definitions offered to the model)."""
        from jinja2 import Environment, TemplateError, meta

        try:
            parsed = Environment(extensions=["jinja2.ext.loopcontrols"]).parse(self.source)
        except TemplateError:
            return False
        return "tools" in meta.find_undeclared_variables(parsed)

    def render(self, messages: list[dict], add_generation_prompt: bool = True, tools: list[dict] | None = None) -> str:
        """The prompt; ``tools`` (OpenAI's function definitions) become the template's ``tools`` variable."""
        from jinja2 import TemplateError

        from .sandbox import TemplateLimitError, render, size

        variables = {
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        if tools:
            variables["tools"] = tools
        try:
            return render(self._template, variables, size(messages) + len(json.dumps(tools or [])))
        except TemplateLimitError as exc:
            raise _refused(exc) from None
        except TemplateError as exc:
            raise NlpsuiteError(f"the model's chat template failed: {exc}") from None
