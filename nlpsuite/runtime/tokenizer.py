"""Tokenization with `tokenizers` and chat templates rendered in jinja2's sandbox."""

from __future__ import annotations

import datetime as _dt
import json
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

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)


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

    def render(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        from jinja2 import TemplateError

        from .sandbox import TemplateLimitError, render, size

        variables = {
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        try:
            return render(self._template, variables, size(messages))
        except TemplateLimitError as exc:
            raise _refused(exc) from None
        except TemplateError as exc:
            raise NlpsuiteError(f"the model's chat template failed: {exc}") from None
