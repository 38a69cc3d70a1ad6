"""The ASGI app: routes, API key, body limit, loading and draining states, errors in OpenAI's shape, access log."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import NlpsuiteError
from . import batches, files, openai_api, rerank, responses, tasks, tokenize
from .engine import Engine, QueueFull
from .errors import ApiError, ClientGone, bad
from .metrics import Metrics

log = logging.getLogger("nlpsuite.serve")


@dataclass
class ServeConfig:
    model: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    api_key: str | None = None
    max_batch: int = 16
    max_queue: int = 64
    cache_mb: float | None = None  # the prompt cache's budget (None: sized from free memory; 0: none)
    prefill_chunk: int | None = None  # tokens per prefill pass
    max_body: int = 4 * 1024 * 1024  # bytes of one request's body
    drain_s: float = 30.0  # how long SIGTERM waits for requests in flight
    loopback_only: bool = True  # bound to loopback: requests must name it (see _check_key)
    metrics_public: bool = False  # GET /metrics without the API key (for a scraper inside a trusted network)
    keepalive_s: float = 15.0  # a silent stream sends an SSE comment this often, so proxies keep it (0: never)
    host: str = "127.0.0.1"  # the address it was told to bind: requests may name it too
    header_timeout_s: float = 30.0  # a connection that has not sent a request's headers by then is closed


class Service:
    """What the routes share: the suite (loaded once, in the background) and the engine over it."""

    def __init__(self, config: ServeConfig, make_suite=None) -> None:
        """``make_suite(decoder)``: the Suite to serve, built with the given decoder factory (default: one for
        ``config``'s model)."""
        self.config = config
        self.make_suite = make_suite
        self.suite = None
        self.engine: Engine | None = None
        self.state = "loading"  # loading | ready | draining | failed
        self.failure = ""
        self.on_failure = lambda: None
        self.created = int(time.time())
        self.metrics = Metrics()
        self.batches = batches.BatchRunner(self)

    def load(self) -> None:
        """Load the model and start the engine; a failure is kept (and ends the server)."""
        try:
            self.suite = suite = (self.make_suite or self._suite)(self._engine)
            started = time.perf_counter()
            backbone = suite.backbone
            for part in ("tokenizer", "chat_template", "decoder"):  # made now, not inside the first request
                getattr(suite, part)
            self.model_id = suite.source.key
            self.model_names = {self.model_id, suite.model_name}
            self.context, self.vocab = backbone.context_length, backbone.vocab_size
            self.metrics.follow(self.engine)
            log.info("model %s loaded in %.2f s on %s (%s)", self.model_id, time.perf_counter() - started,
                     backbone.device, backbone.precision)  # fmt: skip
            if self.state == "loading":
                self.state = "ready"
        except Exception as exc:  # noqa: BLE001 - the server cannot serve: say why and stop
            self.state, self.failure = "failed", str(exc) if isinstance(exc, NlpsuiteError) else repr(exc)
            log.error("cannot load the model: %s", self.failure)
            self.on_failure()

    def _suite(self, decoder):
        from ..api import Suite

        c = self.config
        return Suite(c.model, c.device, c.precision, report=log.info, decoder=decoder, cache_mb=c.cache_mb,
                     prefill_chunk=c.prefill_chunk)  # fmt: skip

    def _engine(self, suite) -> Engine:
        """The suite's decoder: generation everywhere (chat, completions, task calls) joins one shared batch."""
        self.engine = Engine(suite, self.config.max_batch, self.config.max_queue)
        return self.engine

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="nlpsuite-load", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def _check_key(service: Service, request) -> None:
    key = service.config.api_key
    if not key:
        # Without a key only loopback guards the model: a name that merely resolves here (DNS rebinding, a web
        # page of another site) is refused, so only clients that name this machine get in.
        host = request.headers.get("host", "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        bound = service.config.host.lower()
        if service.config.loopback_only and name not in (*LOOPBACK_NAMES, bound, f"[{bound.strip('[]')}]"):
            raise ApiError(403, f"Host {host!r} is not allowed without an API key", code="host_not_allowed")
        return
    given = request.headers.get("authorization", "")
    token = given[7:] if given[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    if not hmac.compare_digest(token.encode(), key.encode()):  # constant time: no guessing it byte by byte
        raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'", code="invalid_api_key")


def _check_state(service: Service) -> None:
    if service.state == "loading":
        raise ApiError(503, "the model is still loading", code="loading", retry_after=2)
    if service.state == "draining":
        raise ApiError(503, "the server is shutting down", code="draining", retry_after=5)
    if service.state == "failed":
        raise ApiError(503, f"the model failed to load: {service.failure}", code="load_failed")


async def _read_json(service: Service, request) -> dict:
    limit = service.config.max_body
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is over {limit} bytes", code="request_too_large")
    # A JSON content type forces browsers to ask first (CORS preflight, which this server never grants), so a
    # web page elsewhere cannot post to a server on the user's loopback.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise bad("send the body as JSON, with 'Content-Type: application/json'", code="unsupported_media_type")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested deeper than Python recurses
        raise bad("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object", code="invalid_json")
    if _SURROGATE_ESCAPE.search(raw) and (where := _lone_surrogate(body)):
        raise bad(f"{where} holds a lone UTF-16 surrogate (one of U+D800 to U+DFFF alone), which is no text",
                  where.split("[")[0].split(".")[0], "invalid_text")  # fmt: skip
    return body


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # how a surrogate reaches JSON: as an escape


def _lone_surrogate(body) -> str | None:
    """Where in a parsed body a string holds a lone surrogate (valid JSON, but no text: it cannot be encoded,
    and the tokenizer refuses it), e.g. ``messages[0].content``; None if nowhere."""
    pending = [("", body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str) and not _encodable(value):
            return where or "the body"
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{where}.{key}" if where else str(key)
                if not _encodable(str(key)):
                    return f"the field name {name.encode('utf-8', 'backslashreplace').decode()}"
                pending.append((name, item))
        elif isinstance(value, list):
            pending += [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def endpoint(service: Service, handler, body: bool = True):
    """A route around ``handler(service, request, body)``: key, state, JSON body, and errors as OpenAI's."""

    async def route(request):
        try:
            _check_key(service, request)
            _check_state(service)
            payload = await _read_json(service, request) if body else None
            return await handler(service, request, payload)
        except ApiError as exc:
            return exc.response()
        except ClientGone:  # nobody reads this: nginx's code for it, so the access log says what happened
            return Response(status_code=499)
        except QueueFull as exc:
            return ApiError(429, f"the server is busy: {exc}; retry later", code="queue_full", retry_after=1).response()
        except NlpsuiteError as exc:  # input the model side refused: the caller's to fix
            return bad(str(exc)).response()

    return route


# The web page: its three files, read from the package (no build step, nothing fetched from elsewhere).
PAGE_FILES = {"/": ("page.html", "text/html"), "/page.css": ("page.css", "text/css"),
              "/page.js": ("page.js", "text/javascript")}  # fmt: skip
# The page's own files only; images may also be data: URLs (its favicon is one, so /favicon.ico is never asked).
PAGE_POLICY = "default-src 'self' 'unsafe-inline'; img-src 'self' data:"


def _page(request):
    name, kind = PAGE_FILES[request.url.path]
    text = resources.files("nlpsuite.serve").joinpath(name).read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}
    return Response(text, media_type=kind, headers=headers)


def _health(service: Service):
    async def health(request):
        code = 200 if service.state == "ready" else 503
        engine = service.engine
        load = {"decoding": engine.active, "waiting": engine.waiting} if engine else {}
        if engine:  # work done since start, counted (not timed): prompt tokens prefilled, model passes
            load |= {"prefilled_tokens": engine.batch.prefilled, "passes": engine.batch.passes}
        return JSONResponse({"status": service.state, **load}, code)

    return health


def _mcp(service: Service):
    """``/mcp`` where the MCP SDK is installed (the ``mcp`` extra), else a route that says how to get it."""
    try:
        from .mcp import HttpEndpoint
    except ImportError:

        async def missing(request):
            return ApiError(501, 'MCP needs the MCP SDK: pip install "nlpsuite[mcp]"', code="mcp_missing").response()

        return missing, contextlib.nullcontext

    def check(request) -> None:
        _check_key(service, request)
        _check_state(service)

    endpoint = HttpEndpoint(service, check)
    return endpoint, endpoint.lifespan


def _metrics(service: Service):
    async def metrics(request):
        if not service.config.metrics_public:
            try:
                _check_key(service, request)
            except ApiError as exc:
                return exc.response()
        return service.metrics.response()

    return metrics


async def _http_error(request, exc: HTTPException):
    message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    return ApiError(exc.status_code, message.get(exc.status_code, exc.detail), code="not_found").response()


def create_app(service: Service) -> Starlette:
    routes = [
        *(Route(path, _page, methods=["GET"]) for path in PAGE_FILES),
        Route("/health", _health(service), methods=["GET"]),
        Route("/v1/models", endpoint(service, openai_api.models, body=False), methods=["GET"]),
        Route("/v1/chat/completions", endpoint(service, openai_api.chat), methods=["POST"]),
        Route("/v1/completions", endpoint(service, openai_api.completions), methods=["POST"]),
        Route("/v1/embeddings", endpoint(service, openai_api.embeddings), methods=["POST"]),
        Route("/v1/tasks", endpoint(service, tasks.list_tasks, body=False), methods=["GET"]),
        Route("/v1/tasks/{task}", endpoint(service, tasks.run_task), methods=["POST"]),
        Route("/v1/indexes", endpoint(service, tasks.list_indexes, body=False), methods=["GET"]),
        Route("/metrics", _metrics(service), methods=["GET"]),
        *responses.routes(service, endpoint),
        *tokenize.routes(service, endpoint),
        *rerank.routes(service, endpoint),
        *files.routes(service, endpoint),
        *batches.routes(service, endpoint),
    ]
    mcp_endpoint, mcp_lifespan = _mcp(service)
    routes.append(Route("/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"]))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if service.state == "loading":
            service.start()
        runner = asyncio.create_task(service.batches.run())  # batches left unfinished by a stop go on
        async with mcp_lifespan():
            yield
        runner.cancel()
        service.close()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    return AccessLog(app, service.metrics)


class AccessLog:
    """One log line per request: method, path, status, milliseconds (the body is never logged)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [0]

        async def watch(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            ms = (time.perf_counter() - started) * 1000
            fields = {"method": scope["method"], "path": scope["path"], "status": status[0], "ms": round(ms, 1)}
            self.metrics.count(scope, status[0])
            log.info("%s %s %s %.0f ms", *fields.values(), extra={"fields": fields})
