"""Built-in plugin: the generation head, the `generate` task and the `nlpsuite generate` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nlpsuite.cli import options as opt
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Task


def _generation_head(suite):
    from nlpsuite.heads.generation import GenerationHead

    return GenerationHead(suite)


def _usage(completion) -> dict:
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}


def _run(suite, prompt, **kwargs):
    return suite.generate(prompt, **kwargs)


@hookimpl
def register_heads(register):
    register("generation", _generation_head)


@hookimpl
def register_tasks(register):
    register(Task("generate", "Continue a prompt, or answer it as a chat turn.", "generation", _run))


def generate(
    prompt: Annotated[str | None, typer.Argument(help="The prompt; read from stdin when omitted or '-'.")] = None,
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    precision: opt.Precision = "fp32",
    max_tokens: opt.MaxTokens = 256,
    temperature: opt.Temperature = 0.0,
    top_k: opt.TopK = 0,
    top_p: opt.TopP = 1.0,
    repetition_penalty: opt.RepetitionPenalty = 1.0,
    seed: opt.Seed = None,
    stop: opt.Stop = None,
    ignore_eos: opt.IgnoreEos = False,
    system: opt.System = None,
    raw: Annotated[bool, typer.Option("--raw", help="Feed the prompt as is, without the chat template.")] = False,
    file: opt.InputFile = None,
    input: opt.BatchInput = None,
    output: opt.BatchOutput = None,
    batch_size: opt.BatchSize = 8,
) -> None:
    """Generate text from a prompt (streamed), on the default model unless --model says otherwise."""
    from nlpsuite.runtime.sampling import SamplingParams

    batch = opt.batch_paths(input, output, prompt)
    text = None if batch else opt.read_text(prompt, file=file)
    sampling = dict(
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=list(stop or []),
        ignore_eos=ignore_eos,
    )
    SamplingParams(**sampling).check()  # before a model is fetched or converted
    if batch and batch_size < 1:
        raise opt.NlpsuiteError("--batch-size must be at least 1")
    suite = opt.open_suite(model, device, precision, quiet)
    if batch:
        from nlpsuite.cli.batch import run_batch

        def process(records):
            done = suite.complete([r["text"] for r in records], raw=raw, system=system, **sampling)
            return [
                {
                    "completion": c.text,
                    "finish_reason": c.finish_reason,
                    "usage": _usage(c),
                }
                for c in done
            ]

        written = run_batch(input, output, process, batch_size, quiet, label="generating")
        if json:
            opt.print_json({"output": str(output), "written": written, "model": suite.source.key})
        return

    def show(_row: int, delta: str) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()

    done = suite.complete(text, raw=raw, system=system, on_text=None if json else show, **sampling)
    if json:
        opt.print_json(
            {
                "text": done.text,
                "model": suite.source.key,
                "device": suite.backbone.device,
                "precision": suite.backbone.precision,
                "finish_reason": done.finish_reason,
                "usage": _usage(done),
                "timings": {
                    "load_s": round(suite.backbone.load_s, 3),
                    "prefill_ms": round(done.prefill_ms, 1),
                    "decode_tokens_per_s": round(done.decode_tokens_per_s, 1),
                },
            }
        )
    else:
        sys.stdout.write("\n")
        if done.finish_reason == "interrupted":
            raise typer.Exit(130)


@hookimpl
def register_commands(register):
    register(generate)
