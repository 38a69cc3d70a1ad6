"""Built-in plugin: the `chat` task (a conversation in, the assistant's reply out); `nlpsuite chat` is its REPL."""

from __future__ import annotations

from nlpsuite.heads.generation import accepted
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Input, Task, Tune, check_sampling, sampling_options


def run(suite, inputs, on_text=None, **sampling):
    """The reply to each conversation, as far as a conversation keeps it (a loop cut off: "finish_reason" says
    "repetition")."""
    done = [suite.reply(i["messages"], on_text=on_text, **sampling) for i in inputs]
    return [{"reply": accepted(c.text, c.finish_reason), "finish_reason": c.finish_reason} for c in done]


def examples(suite, inputs, gold, **_sampling):
    """`nlpsuite tune` examples: the conversation as the model reads it, then the gold reply."""
    from nlpsuite.errors import NlpsuiteError
    from nlpsuite.tasks import Example

    head = suite.head("generation")
    end = suite.tokenizer.eos_token_ids[:1]
    out = []
    for record, reply in zip(inputs, gold, strict=True):
        messages = record["messages"]
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if not isinstance(reply, str) or not reply.strip():
            raise NlpsuiteError("a tuning record needs the conversation ('text') and its 'reply'")
        said = suite.tokenizer.encode(reply.strip(), add_special_tokens=False) + end
        out.append(Example([(head.encode_chat(messages), said)]))
    return out


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
            tune=Tune("reply", lambda suite, inputs, gold, options: examples(suite, inputs, gold)),
        )
    )
