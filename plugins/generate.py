"""Built-in plugin: the generation head and the `generate` task (prompt in, streamed completion out)."""

from __future__ import annotations

from nlpsuite import languages
from nlpsuite.hookspecs import hookimpl
from nlpsuite.outputs import check_generation, output_grammar, output_options
from nlpsuite.tasks import Input, Option, Task, sampling_options

OPTIONS = (
    *sampling_options(),
    Option("system", str, help="System prompt."),
    Option("raw", bool, False, help="Feed the prompt as is, without the chat template."),
    *output_options(),
)


def _generation_head(suite):
    from nlpsuite.heads.generation import GenerationHead

    return GenerationHead(suite)


def run(suite, inputs, raw=False, system=None, on_text=None, schema=None, regex=None, grammar=None,
        json_object=False, **sampling):  # fmt: skip
    languages.check(suite, [i["prompt"] for i in inputs])
    held = output_grammar({"schema": schema, "regex": regex, "grammar": grammar, "json_object": json_object})
    prompts = [i["prompt"] for i in inputs]
    done = suite.complete(prompts, raw=raw, system=system, on_text=on_text, grammar=held, **sampling)
    backbone = suite.backbone
    return [
        {
            "text": c.text,
            **({"parsed": _parsed(c, held)} if held is not None and held.is_json else {}),
            "model": suite.source.key,
            "device": backbone.device,
            "precision": backbone.precision,
            "finish_reason": c.finish_reason,
            "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens},
            "timings": {
                "load_s": round(backbone.load_s, 3),
                "prefill_ms": round(c.prefill_ms, 1),
                "decode_tokens_per_s": round(c.decode_tokens_per_s, 1),
                "drafted_tokens": c.drafted_tokens,  # prompt-lookup guesses verified
                "acceptance_rate": round(c.acceptance_rate, 3),
                "cached_tokens": c.cached_tokens,  # prompt tokens the prompt cache spared prefilling
            },
        }
        for c in done
    ]


def _parsed(completion, held):
    """The JSON value the output spells; None when it was cut before it was complete (finish_reason says)."""
    return held.parse(completion.text) if completion.finish_reason == "stop" else None


@hookimpl
def register_heads(register):
    register("generation", _generation_head)


@hookimpl
def register_tasks(register):
    register(
        Task(
            "generate",
            "Generate text from a prompt (streamed), as a chat turn or raw.",
            "generation",
            run,
            inputs=(Input("prompt", "The prompt"),),
            options=OPTIONS,
            output=("text", "parsed", "finish_reason", "usage"),
            value="text",
            batch_names={"text": "completion"},
            check=check_generation,
            stream=True,
            progress_label="generating",
        )
    )
