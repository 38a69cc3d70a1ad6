"""`nlpsuite chat`: the REPL, with the chat task's declared options (sampling) as its flags."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

from ..plugins import registry
from . import options as opt
from .taskcommand import option_parameter


def chat_command(task):
    """The `chat` command, its options generated from the chat task's declaration."""
    params = [option_parameter(o) for o in task.options]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in (
            ("system", Annotated[str | None, typer.Option("--system", help="System prompt.")], None),
            ("model", opt.Model, None),
            ("device", opt.Device, "auto"),
            ("precision", opt.Precision, "fp32"),
            ("json", opt.Json, False),
            ("quiet", opt.Quiet, False),
            ("cache_mb", opt.CacheMb, None),
            ("prefill_chunk", opt.PrefillChunk, None),
        )
    ]

    def chat(**given) -> None:
        from ..runtime.sampling import SamplingParams
        from .repl import ChatRepl

        chosen = {o.name: given[o.name] for o in task.options if given[o.name] is not None}
        options = task.check_options(chosen)
        params = SamplingParams(**options)
        suite = opt.open_suite(given["model"], given["device"], given["precision"], given["quiet"],
                               cache_mb=given["cache_mb"], prefill_chunk=given["prefill_chunk"])  # fmt: skip
        ChatRepl(suite, params, system=given["system"], json=given["json"], quiet=given["quiet"]).run()

    chat.__doc__ = "Chat with the model: streamed replies, /help for commands; reads lines from stdin when piped."
    chat.__signature__ = inspect.Signature(params)
    chat.__annotations__ = {p.name: p.annotation for p in params}
    return chat


def command():
    task = registry().tasks.get("chat")
    return chat_command(task) if task else None
