"""Task endpoints generated from the declarations (nlpsuite.tasks), like the CLI's commands: ``GET /v1/tasks``
describes every registered task, ``POST /v1/tasks/{name}`` answers what ``nlpsuite NAME --json`` prints."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from starlette.responses import JSONResponse, Response

from ..errors import NlpsuiteError
from ..tasks import Input, Option, Task
from . import sse
from .engine import QueueFull
from .errors import ApiError, api_words, bad

TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object", Path: "path"}


def describe(task: Task) -> dict:
    """A task's declaration as JSON: what a client (or the web page) needs to build a request."""
    return {
        "name": task.name,
        "description": task.description,
        "head": task.head,
        "inputs": [_input(i) for i in task.inputs],
        "options": [_option(o) for o in task.options],
        "output": list(task.output),
        "value": task.value,
        "stream": task.stream,
        "display": task.display,
    }


def label(field: Input | Option) -> str:
    """A field's name for a person: its declared label, else its name in words (max_tokens: "Max tokens")."""
    return field.label or field.name.replace("_", " ").capitalize()


def _input(field: Input) -> dict:
    return {"name": field.name, "label": label(field), "help": field.help, "optional": field.optional,
            "messages": field.messages}  # fmt: skip


def _option(option: Option) -> dict:
    default = option.default if isinstance(option.default, str | int | float | bool | list) else None
    return {
        "name": option.name,
        "label": label(option),
        "type": TYPES.get(option.type, "string"),
        "default": default,
        "help": option.help,
        "choices": list(option.choices),
        "separator": option.separator if option.type is list else None,  # a list: null means one value a line
        "required": option.required,
        "min": option.min,
        "max": option.max,
    }


async def list_tasks(service, request, body):
    data = [describe(t) for t in service.suite.registry.tasks.values()]
    return JSONResponse({"object": "list", "data": data})


async def list_indexes(service, request, body):
    """The search indexes ``nlpsuite index add`` built (``POST /v1/tasks/search`` takes their names)."""
    from ..retrieval import index

    keep = ("name", "documents", "passages", "updated", "damaged")
    found = [{k: i[k] for k in keep if k in i} for i in await service.engine.job(index.list_indexes)]
    return JSONResponse({"object": "list", "data": found})


async def run_task(service, request, body: dict):
    """What ``nlpsuite NAME --json`` prints; with ``?stream=true`` a task that streams sends its text as SSE
    events ``{"index", "delta"}``, then ``{"result": ...}`` and ``[DONE]``."""
    name = request.path_params["task"]
    task = service.suite.registry.tasks.get(name)
    if task is None:
        known = ", ".join(sorted(service.suite.registry.tasks))
        raise ApiError(404, f"no task named {name!r} (installed: {known})", "task", "task_not_found")
    stream = request.query_params.get("stream", "false").lower() in ("1", "true", "yes")
    if stream and not task.stream:
        raise bad(f"{name} does not stream its text: call it without ?stream=true", "stream")
    flags = {o.cli_flag: o.name for o in task.options}
    try:
        inputs, options, single = read_request(task, body)
    except NlpsuiteError as exc:
        raise bad(api_words(str(exc), flags)) from None

    def work(on_text=None):
        extra = {"on_text": on_text} if on_text else {}
        try:
            results = task.run(service.suite, inputs, **options, **extra)
        except NlpsuiteError as exc:  # input the task itself refuses (an unknown index, a bad label...)
            raise bad(api_words(str(exc), flags)) from None
        try:  # as the CLI's --json: valid JSON or an error, never NaN
            return json.dumps(results[0] if single else results, ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise ApiError(500, "the result holds a non-finite number (NaN or infinity)", code="non_finite") from None

    if stream:
        return sse.response(_streamed(service, work), service.config.keepalive_s)
    return Response(await service.engine.job(work), media_type="application/json")


async def _streamed(service, work):
    loop, deltas = asyncio.get_running_loop(), asyncio.Queue()

    def on_text(index: int, delta: str) -> None:
        loop.call_soon_threadsafe(deltas.put_nowait, (index, delta))

    job = asyncio.ensure_future(service.engine.job(lambda: work(on_text)))
    while not (job.done() and deltas.empty()):
        waiter = asyncio.ensure_future(deltas.get())
        await asyncio.wait({job, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if waiter.done():
            index, delta = waiter.result()
            yield f"data: {json.dumps({'index': index, 'delta': delta}, ensure_ascii=False)}\n\n"
        else:
            waiter.cancel()
    try:
        result = job.result()
    except ApiError as exc:  # the status line is sent already: the error is an event
        yield f"data: {json.dumps(exc.body())}\n\n"
        return
    except QueueFull as exc:
        yield f"data: {json.dumps(ApiError(429, f'the server is busy: {exc}', code='queue_full').body())}\n\n"
        return
    yield f'data: {{"result": {result}}}\n\n'
    yield "data: [DONE]\n\n"


def read_request(task: Task, body: dict) -> tuple[list[dict], dict, bool]:
    """The task's input records and checked options from a JSON body (Task.records, as in Python); over HTTP an
    input is always text, never a path the server would read, and a request brings at least one input."""
    head = task.inputs[0]
    if head.name not in body:
        raise NlpsuiteError(f"missing {head.name!r}: {head.help or 'the text'}")
    if body[head.name] == [] and not head.messages:
        raise NlpsuiteError(f"{head.name} must be a string or a non-empty list of them")
    made = task.records(body[head.name], {i.name: body.get(i.name) for i in task.inputs[1:]}, strings=True)
    given = {k: v for k, v in body.items() if k not in {i.name for i in task.inputs}}
    for option in task.options:
        if option.type is Path and given.get(option.name) is not None:
            raise NlpsuiteError(f"{option.name} is a path on the server: not taken over HTTP")
    options = task.check_options(given, made.shared, batch=made.per_record)
    return made.records, options, made.single
