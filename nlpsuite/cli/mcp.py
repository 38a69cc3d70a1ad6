"""`nlpsuite mcp`: every task as a tool of an MCP server on stdin/stdout (for agents that start it themselves)."""

from __future__ import annotations

from ..errors import NlpsuiteError
from . import options as opt


def mcp(model: opt.Model = None, device: opt.Device = "auto", precision: opt.Precision = "fp32") -> None:
    """Serve every task as an MCP tool over stdio; the model loads on the first call."""
    try:
        import anyio
        from mcp.server.stdio import stdio_server

        from ..serve.mcp import build
    except ImportError:
        raise NlpsuiteError('nlpsuite mcp needs the MCP SDK: pip install "nlpsuite[mcp]"') from None
    from ..api import Suite

    suite = Suite(model, device, precision)
    lock = anyio.Lock()  # one call at a time: a Suite is not shared across threads

    async def run(work):
        async with lock:
            return await anyio.to_thread.run_sync(work)

    server = build(lambda: suite.registry.tasks, lambda: suite, run)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
