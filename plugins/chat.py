"""Built-in plugin: the `chat` task (a conversation in, the assistant's reply out); `nlpsuite chat` is its REPL."""

from __future__ import annotations

from nlpsuite.heads.generation import accepted
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Input, Task, check_sampling, sampling_options


def run(suite, inputs, on_text=None, **sampling):
    """The reply to each conversation, as far as a conversation keeps it (a loop cut off: "finish_reason" says
    "repetition")."""
    done = [suite.reply(i["messages"], on_text=on_text, **sampling) for i in inputs]
    return [{"reply": accepted(c.text, c.finish_reason), "finish_reason": c.finish_reason} for c in done]


@hookimpl
def register_tasks(register):
    register(
        Task(
            "chat",
            "A conversation with the model: a message or a list of {role, content} messages in, the reply out.",
            "generation",
            run,
            inputs=(Input("messages", "The user's message, or the whole conversation", messages=True),),
            options=sampling_options(512),
            output=("reply", "finish_reason"),
            value="reply",
            check=check_sampling,
            stream=True,
            command=False,  # `nlpsuite chat` is the REPL
        )
    )
