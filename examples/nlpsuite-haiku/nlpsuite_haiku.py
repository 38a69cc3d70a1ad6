"""An nlpsuite plugin written the way any third party would: one task, declared once.

From this declaration alone nlpsuite gives it the `nlpsuite haiku TOPIC` command (with --json, stdin,
--file and batch mode with resume), `/task haiku` in the chat REPL and `suite.run("haiku", ...)`.
"""

from __future__ import annotations

from nlpsuite import Input, Task, check_sampling, hookimpl, sampling_options

PROMPT = "Write a haiku (three lines: 5, 7 and 5 syllables) about {topic}. Reply with the haiku only."


def haiku(suite, inputs, **sampling):
    """A haiku about each topic, generated in one padded batch on the suite's shared backbone."""
    prompts = [PROMPT.format(topic=i["topic"].strip()) for i in inputs]
    texts = suite.generate(prompts, **sampling)
    return [{"haiku": text.strip(), "topic": i["topic"]} for i, text in zip(inputs, texts, strict=True)]


@hookimpl
def register_tasks(register):
    register(
        Task(
            "haiku",
            "Write a haiku about a topic.",
            "generation",
            haiku,
            inputs=(Input("topic", "What the haiku is about"),),
            options=sampling_options(max_tokens=48),
            output=("haiku",),
            value="haiku",
            check=check_sampling,
        )
    )
