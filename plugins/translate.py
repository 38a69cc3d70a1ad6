"""Built-in plugin: translation (`nlpsuite translate TEXT --to LANG [--from LANG]`).

Long input is split into paragraphs and sentences; sentences are translated in padded batches on
the generation head and put back together, keeping the paragraph breaks.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from nlpsuite.cli import options as opt
from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.runtime.sampling import SamplingParams
from nlpsuite.tasks import Task
from nlpsuite.text import chunk, paragraphs, sentences

LANGUAGES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
DENSE_SCRIPTS = {"Arabic", "Bulgarian", "Chinese", "Greek", "Hebrew", "Hindi", "Japanese", "Korean", "Persian",
                 "Russian", "Serbian", "Thai", "Ukrainian"}  # fmt: skip
PROMPT = "Translate the following {source}text into {target}. Reply with the translation only.\n\n{text}"
SENTENCE_TOKENS = 200  # a "sentence" longer than this is cut at word boundaries before translating
_LEADS = re.compile(r"^(here is|here's|the translation|translation|translated)[^:\n]{0,60}:\s*", re.IGNORECASE)


def language(value: str | None, option: str) -> str | None:
    """A language name from an ISO 639-1 code or a name, with a one-line error for anything else."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise NlpsuiteError(f"{option} needs a language, e.g. de")
    key = value.strip()
    if key.lower() in LANGUAGES:
        return LANGUAGES[key.lower()]
    names = {name.lower(): name for name in LANGUAGES.values()}
    if key.lower() in names:
        return names[key.lower()]
    raise NlpsuiteError(f"unknown language {value!r} for {option}: use a code like de, fr, es or a name like German")


def clean(output: str, source: str) -> str:
    """The translation alone: no preamble, no wrapping quotes, one line for one sentence."""
    text = _LEADS.sub("", output.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'«»“”" and source[:1] not in "\"'«»“”":
        text = text[1:-1].strip()
    return text


def translate_texts(suite, texts: list[str], target: str, source: str | None, batch_size: int = 8, progress=None):
    """Translate many texts; every sentence of every text goes through one queue of padded batches."""
    head = suite.head("generation")
    count = suite.tokenizer.count
    layout: list[list[list[int]]] = []  # text -> paragraph -> indices into units
    units: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise NlpsuiteError("empty text")
        doc = []
        for paragraph in paragraphs(text):
            idx = []
            for sentence in sentences(text, paragraph.start, paragraph.end):
                for part in chunk(sentence.text, count, SENTENCE_TOKENS):  # one piece unless it is over-long
                    idx.append(len(units))
                    units.append(" ".join(part.text.split()))  # one line: only the reply's first line is kept
            doc.append(idx)
        layout.append(doc)
    src = f"{source} " if source else ""
    done = [""] * len(units)
    if progress:
        progress(0, len(units))
    order = sorted(range(len(units)), key=lambda i: len(units[i]))  # similar lengths batch together
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        prompts = [
            head.encode_chat([{"role": "user", "content": PROMPT.format(source=src, target=target, text=units[i])}])
            for i in rows
        ]
        longest = max(count(units[i]) for i in rows)
        factor = 4 if target in DENSE_SCRIPTS else 2  # these scripts take more tokens than English
        params = SamplingParams(max_tokens=factor * longest + 24, stop=["\n\n"], repetition_penalty=1.05)
        for i, completion in zip(rows, head.generator.generate(prompts, params), strict=True):
            done[i] = clean(completion.text, units[i])
        if progress:
            progress(len(rows))
    return ["\n\n".join(" ".join(done[i] for i in para) for para in doc) for doc in layout], len(units)


def run_translate(suite, text, to: str, source: str | None = None):
    target, source_name = language(to, "to"), language(source, "from")
    if isinstance(text, str):
        return translate_texts(suite, [text], target, source_name)[0][0]
    return translate_texts(suite, list(text), target, source_name)[0]


@hookimpl
def register_tasks(register):
    register(
        Task("translate", "Translate text into another language.", "generation", run_translate, {"prompt": PROMPT})
    )


def translate(
    text: Annotated[str | None, typer.Argument(help="The text; read from stdin when omitted or '-'.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Target language: code (de) or name (German).")] = None,
    source: Annotated[str | None, typer.Option("--from", help="Source language (optional).")] = None,
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
    """Translate text into --to LANG; long texts go sentence by sentence, paragraph breaks kept."""
    if to is None:
        raise NlpsuiteError("say which language to translate into, e.g. --to de")
    target, source_name = language(to, "--to"), language(source, "--from")
    batch = opt.batch_paths(input, output, text)
    value = None if batch else opt.read_text(text, what="text", file=file)
    if batch_size < 1:
        raise NlpsuiteError("--batch-size must be at least 1")
    suite = opt.open_suite(model, device, precision, quiet)
    if batch:
        from nlpsuite.cli.batch import run_batch

        def process(records):
            done, _ = translate_texts(suite, [r["text"] for r in records], target, source_name, batch_size)
            return [{"translation": t} for t in done]

        written = run_batch(input, output, process, batch_size, quiet, label="translating")
        if json:
            opt.print_json({"output": str(output), "written": written, "model": suite.source.key})
        return
    from nlpsuite.cli.progress import progress_bar

    with progress_bar("translating", quiet) as advance:
        (result,), units = translate_texts(suite, [value], target, source_name, batch_size, advance)
    if json:
        opt.print_json({"translation": result, "to": target, "from": source_name, "sentences": units})
    else:
        sys.stdout.write(result + "\n")


@hookimpl
def register_commands(register):
    register(translate)
