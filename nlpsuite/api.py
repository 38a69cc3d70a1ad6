"""The Python API: one Suite holds one backbone and runs every registered task on it."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import cached_property
from typing import Any

from . import config, languages
from .errors import NlpsuiteError
from .modelstore.catalog import Catalog
from .modelstore.resolve import Report, catalog, load_model
from .plugins import Registry, registry
from .records import Progress, no_progress
from .runtime import preload
from .runtime.sampling import SamplingParams
from .runtime.sequence import Completion, OnText


class Suite:
    """``Suite(model=..., device=...)``: loads the backbone once, lazily, and shares it across tasks."""

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        precision: str = "fp32",
        report: Report | None = None,
        quiet: bool = True,
        plugins: Registry | None = None,
        decoder: Callable[[Suite], Any] | None = None,
        cache_mb: float | None = None,
        prefill_chunk: int | None = None,
    ) -> None:
        """``decoder(suite)``: what generation decodes with (default a ``Generator``; the server gives its engine).
        ``cache_mb``: the prompt cache's budget in MiB (0: none; default sized from free memory).
        ``prefill_chunk``: tokens per prefill pass."""
        if cache_mb is not None and not cache_mb >= 0:
            raise NlpsuiteError("--cache-mb must be 0 (no prompt cache) or more")
        if prefill_chunk is not None and prefill_chunk < 1:
            raise NlpsuiteError("--prefill-chunk must be at least 1")
        self.model_name = config.default_model() if model is None else model
        self.device_request = device or config.default_device()
        self.precision = precision
        self.report = report or (lambda _msg: None)
        self.quiet = quiet
        self.registry = plugins or registry()
        self._make_decoder = decoder
        self.cache_mb = cache_mb
        self.prefill_chunk = prefill_chunk
        self._heads: dict[str, Any] = {}
        self._shared: dict[str, Any] = {}
        self._early: dict[str, Any] = {}  # what loading the backbone prepared besides (tokenizer, chat template)
        # Long tasks report here (records.Progress); front-ends set it (a bar on stderr).
        self.progress: Progress = no_progress
        # What the user should know but is no error (the model does not know the text's language): said once each
        # through on_warning, a Python warning unless a front-end says it its own way.
        self.warnings: list[str] = []
        self.on_warning: Callable[[str], None] = lambda message: warnings.warn(message, UserWarning, stacklevel=4)

    @cached_property
    def catalog(self) -> Catalog:
        return catalog(self.registry.models)

    @cached_property
    def source(self):
        return self.catalog.resolve(self.model_name)

    @cached_property
    def backbone(self):
        from .runtime.device import check_precision, plan

        device_plan = plan(self.device_request)  # an unusable --device fails before any conversion
        check_precision(self.precision, device_plan.providers)  # so does fp16 without CUDA
        packed = self.source.in_our_cache  # write beside our own cache, never into the user's folder
        return load_model(
            self.source, self.precision, lambda folder: self._load(folder, device_plan, packed), self.report, self.quiet
        )

    def _load(self, folder, device_plan, packed: bool):
        """The backbone (runtime/preload.py: its tokenizer and chat template read while its session builds), or
        the one a head start began loading, if it is exactly this one."""
        loaded = preload.take(folder, device_plan, packed) or preload.load(folder, device_plan, packed)
        self._early.update(loaded.early)
        return loaded.backbone

    @cached_property
    def tokenizer(self):
        backbone = self.backbone  # loading it read the tokenizer too, unless that failed
        return self._early.pop("tokenizer", None) or preload.tokenizer(backbone.folder, backbone.manifest)

    @cached_property
    def chat_template(self):
        manifest = self.backbone.manifest
        return self._early.pop("chat_template", None) or preload.chat_template(manifest, self.tokenizer)

    @cached_property
    def prompt_cache(self):
        """The states of prompt prefixes seen, reused by later prompts (None with ``cache_mb=0``)."""
        from .runtime.prompt_cache import PromptCache, default_budget_mb

        budget = default_budget_mb() if self.cache_mb is None else self.cache_mb
        return PromptCache(self.backbone, int(budget * 2**20)) if budget > 0 else None

    @cached_property
    def decoder(self):
        """What the generation head decodes with (see ``decoder`` in the constructor)."""
        if self._make_decoder is not None:
            return self._make_decoder(self)
        from .runtime.batching import PREFILL_CHUNK
        from .runtime.generation import Generator

        return Generator(self.backbone, self.tokenizer, self.prompt_cache, self.prefill_chunk or PREFILL_CHUNK)

    def head(self, name: str):
        """The named head, built once per Suite."""
        if name not in self._heads:
            factory = self.registry.heads.get(name)
            if factory is None:
                raise NlpsuiteError(f"no head named {name!r} (installed: {', '.join(sorted(self.registry.heads))})")
            self._heads[name] = factory(self)
        return self._heads[name]

    def warn(self, message: str) -> None:
        """Tell the user ``message`` once per Suite (see ``on_warning``)."""
        if message not in self.warnings:
            self.warnings.append(message)
            self.on_warning(message)

    def shared(self, key: str, factory):
        """An object plugins build once per Suite (prompt caches, priors...), made by ``factory()`` on first use."""
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]

    def task(self, name: str):
        found = self.registry.tasks.get(name)
        if found is None:
            raise NlpsuiteError(f"no task named {name!r} (installed: {', '.join(sorted(self.registry.tasks))})")
        return found

    def run(self, task: str, input, **kwargs):
        """Run any registered task by name, e.g. ``suite.run("haiku", "autumn")``: one input gives one result,
        a list gives a list; keywords are the task's options and later input fields."""
        return self.task(task).call(self, input, **kwargs)

    def complete(
        self,
        prompt: str | list[str],
        *,
        raw: bool = False,
        system: str | None = None,
        on_text: OnText | None = None,
        **sampling,
    ) -> Completion | list[Completion]:
        """Completions with token counts and timings; list in, list out."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        done = self.head("generation").complete(prompts, SamplingParams(**sampling), raw, system, on_text)
        return done[0] if isinstance(prompt, str) else done

    def generate(self, prompt: str | list[str], *, schema=None, **kwargs) -> Any:
        """Generated text; str in, str out; list in, list out. With ``schema`` (a JSON Schema dict, or a pydantic
        model class) the output is held to it and each answer is the parsed object (a model instance for a
        class); an output cut at ``max_tokens`` before it is complete is an NlpsuiteError."""
        if schema is not None:
            from .runtime.grammar import Grammar

            kwargs["grammar"] = Grammar.json_schema(schema)
        done = self.complete(prompt, **kwargs)
        done = [done] if isinstance(done, Completion) else done
        values = [c.text if schema is None else _parsed(c, kwargs["grammar"], schema) for c in done]
        return values[0] if isinstance(prompt, str) else values

    def chat(self, messages: str | list[dict], *, on_text: OnText | None = None, **sampling) -> str:
        """The assistant's reply to a message or a list of ``{"role", "content"}`` messages."""
        return self.reply(messages, on_text=on_text, **sampling).text

    def reply(self, messages: str | list[dict], *, on_text: OnText | None = None, **sampling) -> Completion:
        """``chat``'s reply with its finish reason, token counts and timings."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        languages.check(self, [m.get("content") for m in messages if m.get("role") == "user"][-1:])
        return self.head("generation").chat(messages, SamplingParams(**sampling), on_text)

    # -- the built-in tasks (each one is a plugin in plugins/; these are conveniences over ``run``) -----------

    def translate(self, text: str | list[str], to: str, source: str | None = None) -> str | list[str]:
        """Translation into language ``to`` (a code like "de" or a name like "German"); paragraphs kept."""
        return self.run("translate", text, to=to, source=source)

    def summarize(self, text: str | list[str], max_words: int | None = None) -> str | list[str]:
        """A summary; texts longer than the context window are summarized in chunks, then combined."""
        return self.run("summarize", text, max_words=max_words)

    def ask(
        self,
        question: str | list[str],
        context: str | list[str] | None = None,
        index: str | None = None,
        generate: bool = False,
    ) -> dict | list[dict]:
        """``{"answer", "score", "start", "end"}`` from ``context`` (or from passages of ``index``, with sources)."""
        return self.run("ask", question, context=context, index=index, generate=generate)

    def sentiment(self, text: str | list[str]) -> dict | list[dict]:
        """``{"label", "score", "scores"}``: positive, negative or neutral, with calibrated probabilities."""
        return self.run("sentiment", text)

    def classify(
        self, text: str | list[str], labels: list[str] | None = None, head: str | None = None
    ) -> dict | list[dict]:
        """Zero-shot into ``labels``, or with a trained probe ``head``: ``{"label", "score", "scores"}``."""
        return self.run("classify", text, labels=labels, head=head)

    def label_scores(self, task: str, texts: list[str], labels: list[str] | None = None, head: str | None = None):
        """A label task's raw scores before temperature scaling: ``(label names, array [texts, labels])``."""
        found = self.task(task)
        if found.scores is None:
            raise NlpsuiteError(f"task {task!r} has no label scores")
        return found.scores(self, list(texts), labels=labels, head=head)

    def index(self, name: str, paths) -> dict:
        """Add files, folders or JSONL documents to the named search index; returns counts."""
        from . import retrieval

        return retrieval.add(self, name, [paths] if isinstance(paths, str | os.PathLike) else list(paths))

    def search(self, name: str, query: str | list[str], k: int = 5) -> list[dict] | list[list[dict]]:
        """The ``k`` passages of an index that best match the query, best first; list in, list out."""
        from . import retrieval

        found = retrieval.search(self, name, [query] if isinstance(query, str) else list(query), k)
        return found[0] if isinstance(query, str) else found


def _parsed(completion: Completion, grammar, schema):
    if completion.finish_reason == "repetition":
        raise NlpsuiteError("the model began to repeat itself before the JSON was complete: show it the fields "
                            "in the prompt, bound the schema's strings and arrays, or sample")  # fmt: skip
    if completion.finish_reason != "stop":
        raise NlpsuiteError(f"the output ended ({completion.finish_reason}) before it was complete JSON: "
                            "raise max_tokens")  # fmt: skip
    value = grammar.parse(completion.text)
    return schema.model_validate(value) if hasattr(schema, "model_validate") else value
