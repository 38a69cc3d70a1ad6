"""An MCP server (the official `mcp` SDK) whose tools are the declared tasks, third-party ones too: each tool's
input schema is ``Task.parameters_schema()``, its result the task's JSON result as structured content (and as
text, for clients that read only text). Served over stdio by ``nlpsuite mcp`` and at ``/mcp`` on ``nlpsuite
serve`` (streamable HTTP, behind the same API key and Host rules as every route)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import mcp_types as types
from mcp.server.lowlevel import Server

from .. import __version__
from ..errors import NlpsuiteError
from .errors import api_words
from .tasks import read_request

Work = Callable[[], object]


def tool(task) -> types.Tool:
    return types.Tool(name=task.name, description=task.description, input_schema=task.parameters_schema())


def build(tasks: Callable[[], dict], suite: Callable[[], object], run: Callable[[Work], Awaitable]) -> Server:
    """The server: ``tasks()`` the registered tasks, ``suite()`` the Suite they run on, ``run(work)`` where their
    calls run (the server's jobs lane, or a thread of their own for stdio)."""

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool(t) for t in tasks().values()])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        task = tasks().get(params.name)
        if task is None:
            return _error(f"no tool named {params.name!r} (tools: {', '.join(sorted(tasks()))})")
        flags = {o.cli_flag: o.name for o in task.options}
        try:
            records, options, single = read_request(task, dict(params.arguments or {}))
            if not single:
                raise NlpsuiteError(f"give one {task.inputs[0].name} per call")
            result = await run(lambda: task.run(suite(), records, **options)[0])
            text = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except NlpsuiteError as exc:
            return _error(api_words(str(exc), flags))
        except ValueError:
            return _error("the result holds a non-finite number (NaN or infinity)")
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=result)

    return Server("nlpsuite", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


class HttpEndpoint:
    """``/mcp`` on the server: the SDK's streamable HTTP transport behind the server's own checks (key, Host,
    state), which ``check(request)`` raises as an ApiError; ``lifespan()`` runs its sessions."""

    def __init__(self, service, check: Callable) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        server = build(
            lambda: service.suite.registry.tasks, lambda: service.suite, lambda work: service.engine.job(work)
        )
        # The Host and origin rules are the server's own (check), as on every other route.
        self.manager = StreamableHTTPSessionManager(app=server, security_settings=None)
        self.check = check

    def lifespan(self):
        return self.manager.run()

    async def __call__(self, scope, receive, send) -> None:
        from starlette.requests import Request

        from .errors import ApiError

        try:
            self.check(Request(scope, receive))
        except ApiError as exc:
            await exc.response()(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)
