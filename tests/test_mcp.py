"""`nlpsuite mcp` (stdio) and `/mcp` on `nlpsuite serve` (streamable HTTP), driven by the official `mcp` SDK's
client: every declared task is a tool (the third-party haiku plugin's too) whose input schema is the task's
generated one, and a call answers what the task's --json prints, as structured content."""

from __future__ import annotations

import os
import sys

import anyio
import pytest
import test_serve
from test_serve import KEY, request

pytest.importorskip("mcp")
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

pytestmark = pytest.mark.shared_cache

server, tiny = test_serve.server, test_serve.tiny  # the module's fixtures, here too


async def exchange(read, write, calls: list[tuple[str, dict]]):
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        results = [await session.call_tool(name, arguments) for name, arguments in calls]
    return {t.name: t for t in tools}, results


def over_http(url: str, calls, key: str | None = KEY):
    async def main():
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(url, http_client=http) as (
                read,
                write,
            ),
        ):
            return await exchange(read, write, calls)

    return anyio.run(main)


CALLS = [
    ("sentiment", {"text": "a warm and funny film"}),
    ("haiku", {"topic": "autumn", "max_tokens": 6, "temperature": 0}),
    ("classify", {"text": "the match ended 2-1", "labels": ["sports", "politics"]}),
    ("classify", {"text": "x"}),  # neither labels nor head: the task's own check refuses it
    ("sentiment", {"text": "ok", "colour": "red"}),
    ("no-such-task", {"text": "x"}),
]


def full_result(suite, name: str, value: str, **options) -> dict:
    task = suite.registry.tasks[name]
    (result,) = task.run(suite, [{task.inputs[0].name: value}], **task.check_options(options))
    return result


def test_mcp_over_streamable_http_on_serve(server):
    suite = server.suite
    tools, results = over_http(server.url + "/mcp", CALLS)
    assert results[0].structured_content == full_result(suite, "sentiment", "a warm and funny film")
    assert results[1].structured_content == full_result(suite, "haiku", "autumn", max_tokens=6, temperature=0)
    assert set(tools) == set(suite.registry.tasks) and "haiku" in tools
    for name, made in tools.items():
        assert made.input_schema == suite.registry.tasks[name].parameters_schema()
    assert results[3].is_error and "labels" in results[3].content[0].text
    assert results[4].is_error and "colour" in results[4].content[0].text
    assert results[5].is_error and "no-such-task" in results[5].content[0].text


def test_mcp_on_serve_needs_the_key(server):
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its transport's failure in an exception group
        over_http(server.url + "/mcp", CALLS[:1], key="wrong")
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    status, answer = request(server.port, "POST", "/mcp", hello, {"Accept": "application/json, text/event-stream"})
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"


def test_nlpsuite_mcp_over_stdio(tiny, tiny_cache, server, tmp_path):
    # The child loads the plugins installed here (entry points): the built-in tasks are its tools; the haiku
    # plugin, registered by hand in the server fixture, is checked over HTTP above.
    env = {**os.environ, "NLPSUITE_HOME": str(tiny_cache)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "nlpsuite", "mcp", "--model", str(tiny), "--device", "cpu"], env=env
    )
    calls = [CALLS[0], ("rerank", {"query": "cat dog", "documents": ["the lazy dog", "東京 café"]}), CALLS[3]]

    async def main():
        async with stdio_client(params) as (read, write):
            return await exchange(read, write, calls)

    tools, results = anyio.run(main)
    suite = server.suite
    assert {"sentiment", "rerank", "search", "chat"} <= set(tools)
    assert tools["rerank"].input_schema == suite.registry.tasks["rerank"].parameters_schema()
    assert results[0].structured_content == full_result(suite, "sentiment", "a warm and funny film")
    want = suite.run("rerank", "cat dog", documents=["the lazy dog", "東京 café"])
    assert results[1].structured_content == {"query": "cat dog", "results": want}
    assert results[2].is_error
