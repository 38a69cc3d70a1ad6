"""`nlpsuite chat`: the REPL, with the chat task's declared options (sampling) as its flags."""

from __future__ import annotations

from typing import Annotated

import typer

from ..plugins import registry
from . import options as opt
from .taskcommand import option_parameter


def chat_command(task):
    """The `chat` command, its options generated from the chat task's declaration."""
    system = Annotated[str | None, typer.Option("--system", help="System prompt.")]
    tools = Annotated[str | None, typer.Option("--tools", help="Tasks the model may call, e.g. search,translate.")]
    choice = Annotated[str, typer.Option("--tool-choice", help="auto (text or calls) or required (calls first).")]
    params = [*map(option_parameter, task.options), opt.parameter("system", system, None)]
    params += [opt.parameter("tools", tools, None), opt.parameter("tool_choice", choice, "auto")]
    params += opt.shared((*opt.SUITE_PARAMS, "cache_mb", "prefill_chunk"))

    def chat(given: dict) -> None:
        from ..runtime.sampling import SamplingParams
        from . import toolchat
        from .repl import ChatRepl

        chosen = {o.name: given[o.name] for o in task.options if given[o.name] is not None}
        params = SamplingParams(**task.check_options(chosen))
        offered = toolchat.check(given["tools"], given["tool_choice"], registry().tasks)  # before any model
        suite = opt.opener(given)(cache_mb=given["cache_mb"], prefill_chunk=given["prefill_chunk"])
        toolbox = toolchat.Toolbox(suite, offered, given["tool_choice"]) if offered else None
        ChatRepl(suite, params, system=given["system"], json=given["json"], quiet=given["quiet"], tools=toolbox).run()

    doc = "Chat with the model: streamed replies, /help for commands; reads lines from stdin when piped."
    return opt.generated_command("chat", doc, params, chat)


def command():
    task = registry().tasks.get("chat")
    return chat_command(task) if task else None
