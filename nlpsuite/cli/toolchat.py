"""`nlpsuite chat --tools NAME,...`: declared tasks offered to the model as tools.

Each tool is a task: its parameters are the task's declared schema (``Task.parameters_schema``, what MCP clients
see too), and the model's reply is held to text or calls of them (runtime.tools). A reply that is calls runs each
task on the suite and gives its JSON result back to the model as a ``tool`` message; the model then answers.
The REPL shows each call and its result.
"""

from __future__ import annotations

import dataclasses
import json

from ..errors import NlpsuiteError
from ..records import dumps
from ..runtime import tools
from ..runtime.sampling import SamplingParams

MAX_ROUNDS = 3  # calls and results in one turn before the model must answer in text
CHOICES = ("auto", "required")


def check(names: str | None, choice: str, tasks: dict) -> list:
    """The tasks ``--tools`` names (comma-separated; none: no tools); NlpsuiteError naming one that is not a task
    or a ``--tool-choice`` that is not one of CHOICES."""
    if choice not in CHOICES:
        raise NlpsuiteError(f"--tool-choice must be one of: {', '.join(CHOICES)}")
    if names is None:
        return []
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    for name in wanted or [""]:
        if name not in tasks or name == "chat":
            raise NlpsuiteError(f"--tools: no task named {name!r} to offer (nlpsuite tasks lists them)")
    return [tasks[n] for n in dict.fromkeys(wanted)]


class Toolbox:
    """The tasks offered, as functions, and how a turn with them goes."""

    def __init__(self, suite, offered: list, choice: str = "auto") -> None:
        self.suite, self.tasks = suite, {t.name: t for t in offered}
        self.functions = [
            {"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters_schema()}}
            for t in offered
        ]  # fmt: skip
        # One call per reply (later replies may call again): with several allowed, the default model adds a second,
        # unrelated call to most replies (bench_tools.py).
        self.first = tools.grammar(self.functions, parallel=False, text=choice == "auto")  # the turn's first reply
        self.later = tools.grammar(self.functions, parallel=False, text=True)  # after results: text or a call

    def converse(self, head, convo: list[dict], params: SamplingParams, show, say) -> tuple[list[dict], str]:
        """One turn: the messages it adds (calls, their results, the reply) and the reply's finish_reason."""
        added: list[dict] = []
        for round in range(MAX_ROUNDS + 1):
            grammar = None if round == MAX_ROUNDS else self.first if round == 0 else self.later
            shown = _Shown(show)
            done = head.chat(convo + added, dataclasses.replace(params, grammar=grammar), shown, self.functions)
            calls = tools.read_calls(done.text) if grammar is not None and done.finish_reason == "stop" else None
            if not calls:
                shown.rest()
                return [*added, {"role": "assistant", "content": done.text}], done.finish_reason
            added.append({"role": "assistant", "content": "", "tool_calls": [_as_message(c) for c in calls]})
            for call in calls:
                say(f"-> {call.name} {call.arguments}")
                result = self.run(call)
                say(f"<- {result}")
                added.append({"role": "tool", "tool_call_id": call.id, "content": result})
        raise AssertionError("unreachable: the last round has no grammar")

    def run(self, call: tools.Call) -> str:
        """The task's result as JSON text, or ``{"error": ...}`` (the model reads it either way)."""
        task = self.tasks[call.name]
        arguments = json.loads(call.arguments)
        try:
            return dumps(self.suite.run(call.name, arguments.pop(task.inputs[0].name), **arguments))
        except NlpsuiteError as exc:
            return dumps({"error": str(exc)})


def _as_message(call: tools.Call) -> dict:
    function = {"name": call.name, "arguments": json.loads(call.arguments)}
    return {"id": call.id, "type": "function", "function": function}


class _Shown:
    """Streams a reply's text to ``show``, unless the reply is calls (it starts with the call marker)."""

    def __init__(self, show) -> None:
        self.show, self.text, self.sent = show, "", 0

    def __call__(self, row: int, delta: str) -> None:
        self.text += delta
        if self.show is None or tools.OPEN.startswith(self.text) or self.text.startswith(tools.OPEN):
            return
        self.show(row, self.text[self.sent :])
        self.sent = len(self.text)

    def rest(self) -> None:
        """The reply was text after all: what was held back."""
        if self.show is not None and self.sent < len(self.text):
            self.show(0, self.text[self.sent :])
