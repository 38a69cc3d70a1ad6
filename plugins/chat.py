"""Built-in plugin: the `chat` task and the `nlpsuite chat` REPL."""

from __future__ import annotations

from nlpsuite.cli import options as opt
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Task


def _run(suite, messages, **kwargs):
    return suite.chat(messages, **kwargs)


@hookimpl
def register_tasks(register):
    register(Task("chat", "A conversation with the model.", "generation", _run))


def chat(
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    precision: opt.Precision = "fp32",
    max_tokens: opt.MaxTokens = 512,
    temperature: opt.Temperature = 0.0,
    top_k: opt.TopK = 0,
    top_p: opt.TopP = 1.0,
    repetition_penalty: opt.RepetitionPenalty = 1.0,
    seed: opt.Seed = None,
    stop: opt.Stop = None,
    system: opt.System = None,
) -> None:
    """Chat with the model: streamed replies, /help for commands; reads lines from stdin when piped."""
    from nlpsuite.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=list(stop or []),
    )
    params.check()
    suite = opt.open_suite(model, device, precision, quiet)
    ChatRepl(suite, params, system=system, json=json, quiet=quiet).run()


@hookimpl
def register_commands(register):
    register(chat)
