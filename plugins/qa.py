"""Built-in plugin: question answering (`nlpsuite ask`), extractive (span head) or generative.

With ``--context`` the answer comes from that text; with ``--index`` the question first retrieves
passages from a search index and the answer cites them (``sources``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from nlpsuite.cli import options as opt
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.tasks import Task

GENERATIVE_PROMPT = (
    "Answer the question in one short sentence, using only the text below.\n\nText: {context}\n\nQuestion: {question}"
)
GENERATIVE_INDEX_PROMPT = (
    "Answer the question in one or two sentences using only these numbered passages, and cite the passages "
    "you used like [1].\n\n{passages}\n\nQuestion: {question}"
)
PASSAGES = 3  # retrieved passages an answer may draw on


def _locate(answer: str, context: str) -> tuple[int | None, int | None]:
    """Offsets of a generated answer in the context when it appears there verbatim (case-insensitively)."""
    probe = answer.strip().rstrip(".")
    if not probe:
        return None, None
    found = re.search(re.escape(probe), context, re.IGNORECASE)
    return (found.start(), found.end()) if found else (None, None)


def _mean_prob(suite, prompt_ids: list[int], answer: str) -> float:
    """The geometric-mean probability of the answer's tokens under the model: how sure it was."""
    ids = suite.tokenizer.encode(answer, add_special_tokens=False)
    if not ids:
        return 0.0
    total = suite.head("scoring").log_likelihoods(prompt_ids, [answer])[0]
    return float(np.exp(total / len(ids)))


def _generative(suite, question: str, context: str, prompt: str) -> dict:
    head = suite.head("generation")
    ids = head.encode_chat([{"role": "user", "content": prompt}])
    answer = head.generator.generate([ids], SamplingParams(max_tokens=96, stop=["\n\n"]))[0].text.strip()
    if not answer:  # the model declined to answer: say so in the result rather than fail the batch
        return {"answer": "", "score": 0.0, "start": None, "end": None}
    start, end = _locate(answer, context)
    if start is not None:
        answer = context[start:end]
    return {"answer": answer, "score": round(_mean_prob(suite, ids, answer), 4), "start": start, "end": end}


def answer_one(suite, question: str, context: str | None, index: str | None, generate: bool) -> dict:
    if not isinstance(question, str) or not question.strip():
        raise NlpsuiteError("empty question")
    if (context is None) == (index is None):
        raise NlpsuiteError("give a context or an index to answer from (one of them)")
    if context is not None:
        if not context.strip():
            raise NlpsuiteError("empty context")
        if generate:
            return _generative(suite, question, context, GENERATIVE_PROMPT.format(context=context, question=question))
        return suite.head("span").extract(question, context).to_json()
    passages = suite.search(index, question, k=PASSAGES)
    if not passages:
        raise NlpsuiteError(f"index {index!r} has no passages for this question")
    sources = [{"id": i + 1, **p} for i, p in enumerate(passages)]
    if generate:
        numbered = "\n\n".join(f"[{s['id']}] {s['text']}" for s in sources)
        joined = "\n\n".join(s["text"] for s in sources)
        result = _generative(
            suite, question, joined, GENERATIVE_INDEX_PROMPT.format(passages=numbered, question=question)
        )
        result.update(start=None, end=None)  # offsets would point into a joined text the user never saw
        return {**result, "sources": sources}
    spans = {}
    for i, s in enumerate(sources):
        try:
            spans[i] = suite.head("span").extract(question, s["text"])
        except NlpsuiteError:  # a passage with no usable span: the others may still answer
            continue
    if not spans:
        raise NlpsuiteError("no answer span found in the retrieved passages")
    # The answer's own probability, weighed by how well its passage matched the question.
    best = max(spans, key=lambda i: spans[i].logp + np.log(max(sources[i]["score"], 1e-6)))
    # start/end point into the cited passage (``source``/``passage`` say which).
    return {**spans[best].to_json(), "source": sources[best]["source"], "passage": best + 1, "sources": sources}


def run_ask(suite, question, context=None, index=None, generate=False):
    if isinstance(question, str):
        return answer_one(suite, question, context, index, generate)
    questions = list(question)
    contexts = context if isinstance(context, list | tuple) else [context] * len(questions)
    if len(contexts) != len(questions):
        raise NlpsuiteError("give one context per question")
    return [answer_one(suite, q, c, index, generate) for q, c in zip(questions, contexts, strict=True)]


@hookimpl
def register_tasks(register):
    register(
        Task(
            "ask",
            "Answer a question from a context or a search index (extractive, or generative with citations).",
            "span",
            run_ask,
            {"generative": GENERATIVE_PROMPT, "generative_index": GENERATIVE_INDEX_PROMPT},
        )
    )


def _context_value(context: str | None) -> str | None:
    """--context is text, or the path of a UTF-8 file holding it."""
    if context is None:
        return None
    if len(context) > 1024 or "\n" in context:
        return context  # text, not a path
    try:
        path = Path(context)
        if path.is_file():
            return opt.read_utf8(path)
        missing = path.suffix in (".txt", ".md") and not path.exists()
    except (OSError, ValueError):  # e.g. a sentence longer than a file name may be
        return context
    if missing:
        raise NlpsuiteError(f"cannot read {context}: no such file")
    return context


def ask(
    question: Annotated[str | None, typer.Argument(help="The question; read from stdin when omitted or '-'.")] = None,
    context: Annotated[str | None, typer.Option("--context", "-c", help="The context: text or a file.")] = None,
    index: Annotated[str | None, typer.Option("--index", "-i", help="Answer from this search index.")] = None,
    generate: Annotated[bool, typer.Option("--generate", help="Generate the answer instead of extracting it.")] = False,
    file: opt.InputFile = None,
    json: opt.Json = False,
    input: opt.BatchInput = None,
    output: opt.BatchOutput = None,
    batch_size: opt.BatchSize = 8,
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    quiet: opt.Quiet = False,
) -> None:
    """Answer a question from --context TEXT|FILE or from --index NAME (batch records: text + context)."""
    batch = opt.batch_paths(input, output, question)
    if not batch and (context is None) == (index is None):
        raise NlpsuiteError("give --context TEXT|FILE or --index NAME")
    text = None if batch else opt.read_text(question, what="question", file=file)
    context_text = _context_value(context)
    suite = opt.open_suite(model, device, precision, quiet)
    if batch:
        from nlpsuite.cli.batch import run_batch

        def process(records):
            out = []
            for r in records:
                ctx = r.get("context", context_text)
                if ctx is None and index is None:
                    raise NlpsuiteError("each record needs a 'context' field (or pass --context / --index)")
                out.append(answer_one(suite, r["text"], ctx, None if ctx is not None else index, generate))
            return out

        written = run_batch(input, output, process, batch_size, quiet, label="answering")
        if json:
            opt.print_json({"output": str(output), "written": written, "model": suite.source.key})
        return
    result = answer_one(suite, text, context_text, index, generate)
    if json:
        opt.print_json(result)
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    cited = f" [{result['passage']}]" if "passage" in result else ""
    console.print(f"[bold]{result['answer']}[/bold]{cited}  [dim](score {result['score']:.2f})[/dim]")
    for s in result.get("sources", []):
        console.print(f"[dim][{s['id']}] {s['source']}[/dim]")
    sys.stdout.flush()


@hookimpl
def register_commands(register):
    register(ask)
