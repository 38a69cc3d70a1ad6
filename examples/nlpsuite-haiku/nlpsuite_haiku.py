"""An nlpsuite plugin written the way any third party would: a task with its prompt, and a command."""

from __future__ import annotations

from typing import Annotated

import typer

from nlpsuite.cli import options as opt
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Task

PROMPT = "Write a haiku (three lines: 5, 7 and 5 syllables) about {topic}. Reply with the haiku only."


def haiku(suite, topic: str, **sampling) -> str:
    """A haiku about ``topic``, generated on the suite's shared backbone."""
    sampling.setdefault("max_tokens", 48)
    return suite.generate(PROMPT.format(topic=topic.strip()), **sampling).strip()


@hookimpl
def register_tasks(register):
    register(Task("haiku", "A haiku about a topic.", "generation", haiku, prompts={"user": PROMPT}))


def haiku_command(
    topic: Annotated[str, typer.Argument(help="What the haiku is about.")],
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    seed: opt.Seed = None,
    temperature: opt.Temperature = 0.0,
) -> None:
    """Write a haiku about TOPIC."""
    if not topic.strip():
        raise opt.NlpsuiteError("empty topic")
    suite = opt.open_suite(model, device, quiet=quiet)
    text = suite.run("haiku", topic, seed=seed, temperature=temperature)
    if json:
        opt.print_json({"topic": topic, "haiku": text, "model": suite.source.key})
    else:
        print(text)


@hookimpl
def register_commands(register):
    register(haiku_command, name="haiku")
