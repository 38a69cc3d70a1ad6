"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with real status codes."""

from __future__ import annotations

import json
import re

from starlette.responses import Response

TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
         404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}  # fmt: skip


class ApiError(Exception):
    """A request the server answers with an error; 4xx never means the server is broken (the SDK retries 5xx)."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.retry_after = status, message, param, code, retry_after

    def body(self) -> dict:
        kind = TYPES.get(self.status, "server_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return Response(json.dumps(self.body()), self.status, headers, media_type="application/json")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param, code)


def api_words(message: str, flags: dict[str, str] | None = None) -> str:
    """A CLI-worded message in the API's words: ``--max-tokens`` becomes ``max_tokens``."""
    for flag, name in (flags or {}).items():
        message = message.replace(flag, name)
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", lambda m: m.group(1).replace("-", "_"), message)
