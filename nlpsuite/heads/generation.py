"""The generation head: prompts (raw or chat) -> streamed completions."""

from __future__ import annotations

from ..errors import NlpsuiteError
from ..runtime.generation import Decoder
from ..runtime.sampling import SamplingParams
from ..runtime.sequence import Completion, OnText
from ..runtime.tools import conversation
from ..text import blank
from .loops import trim_loop

Message = dict  # {role, content}; tool calls and results as runtime.tools describes them


def accepted(text: str, finish_reason: str) -> str:
    """What a conversation keeps of a reply: one cut for repeating itself, up to its last whole sentence before it
    began repeating (the loop would pull the next replies into it); "" when nothing of it can be kept."""
    return trim_loop(text) if finish_reason == "repetition" else text


def accepted_turns(turns: list[Message]) -> list[Message]:
    """A conversation as far as it was accepted: each reply that ends in a loop trimmed as ``accepted`` trims
    it, and one of which nothing is left dropped with the question it answered."""
    kept: list[Message] = []
    for message in turns:
        if message["role"] == "assistant":
            trimmed = trim_loop(message["content"])
            if not trimmed and message["content"]:
                if kept and kept[-1]["role"] == "user":
                    kept.pop()
                continue
            message = {**message, "content": trimmed}
        kept.append(message)
    return kept


class GenerationHead:
    """Next-token generation on the suite's shared backbone."""

    def __init__(self, suite, decoder: Decoder | None = None) -> None:
        """``decoder``: what decodes token ids (default the suite's: ``Generator``, or the server's engine)."""
        self.suite = suite
        self.decoder = decoder or suite.decoder
        # The model's own sampling defaults (its generation_config), for generate and chat left unset.
        self.defaults = suite.backbone.manifest.get("generation") or {}

    def encode_chat(self, messages: list[Message], tools: list[dict] | None = None) -> list[int]:
        """The prompt of a conversation; ``tools`` (OpenAI's function definitions) are offered to the model
        through its template, or in a system message where the template has no place for them (runtime.tools)."""
        template = self.suite.chat_template
        if tools or any(m.get("tool_calls") or m["role"] == "tool" for m in messages):
            messages = conversation(messages, tools, template.takes_tools)
        text = template.render(messages, add_generation_prompt=True, tools=tools if template.takes_tools else None)
        return self.suite.tokenizer.encode(text, add_special_tokens=False)

    def encode(self, prompt: str, raw: bool = False, system: str | None = None) -> list[int]:
        if blank(prompt):
            raise NlpsuiteError("empty prompt")
        if raw:
            return self.suite.tokenizer.encode(prompt, add_special_tokens=True)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.encode_chat(messages)

    def complete(
        self,
        prompts: list[str],
        params: SamplingParams,
        raw: bool = False,
        system: str | None = None,
        on_text: OnText | None = None,
    ) -> list[Completion]:
        params = params.resolved(self.defaults)
        return self.decoder.generate([self.encode(p, raw, system) for p in prompts], params, on_text)

    def chat(
        self, messages: list[Message], params: SamplingParams, on_text: OnText | None = None, tools: list | None = None
    ) -> Completion:
        """Reply to a conversation, dropping the oldest turns (never the system prompt) to fit the context. An
        earlier reply that ends in a loop (a client sends its history back as it was shown) counts as far as
        ``accepted`` keeps it. ``tools`` are offered as ``encode_chat`` offers them."""
        params = params.resolved(self.defaults)
        budget = self.suite.backbone.context_length - min(params.max_tokens, 512)
        system = [m for m in messages[:1] if m["role"] == "system"]
        turns = accepted_turns(messages[len(system) :])
        ids = self.encode_chat(system + turns, tools)
        while len(ids) > budget and len(turns) > 1:
            turns = turns[1:]
            while len(turns) > 1 and turns[0]["role"] != "user":  # templates may insist on user first
                turns = turns[1:]
            ids = self.encode_chat(system + turns, tools)
        return self.decoder.generate([ids], params, on_text)[0]
