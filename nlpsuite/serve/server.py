"""Run the app under uvicorn: loopback unless a key (or --insecure) says otherwise, readable or JSON logs, and a
SIGTERM that stops taking requests, lets those in flight finish for a bounded time, then exits 0."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import socket
import sys
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import NlpsuiteError
from .app import ServeConfig, Service, create_app

log = logging.getLogger("nlpsuite.serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, insecure: bool) -> None:
    """Refuse to put a keyless model on the network unless told to in so many words."""
    if not is_loopback(host) and not api_key and not insecure:
        raise NlpsuiteError(
            f"serving on {host} lets anyone who can reach it use the model: give --api-key (or NLPSUITE_API_KEY), "
            "or --insecure to serve without one"
        )


class JsonLines(logging.Formatter):
    """One JSON object per log line, for machines."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(line, ensure_ascii=False)


def setup_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("nlpsuite.serve", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, json_logs: bool = False) -> None:
    """Serve until SIGTERM or Ctrl-C; raises NlpsuiteError when the port is taken (before the model loads) or the
    model cannot load."""
    listening = listen(host, port)
    setup_logging(json_logs)
    service = Service(config)
    server = DrainingServer(uvicorn_config(create_app(service), config), service)
    service.on_failure = lambda: setattr(server, "should_exit", True)
    log.info("nlpsuite serve on http://%s:%d/ (%s)", host if ":" not in host else f"[{host}]", port,
             "API key required" if config.api_key else "no API key")  # fmt: skip
    server.run(sockets=[listening])
    if service.state == "failed":
        raise NlpsuiteError(service.failure)


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything else happens: a busy port is one line at once, not a
    log line after the model has loaded."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise NlpsuiteError(f"cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise NlpsuiteError(f"port {port} is in use: stop what listens there, or give another --port") from None
        if exc.errno == errno.EACCES:
            raise NlpsuiteError(f"port {port} needs privileges to listen on: give a --port above 1023") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise NlpsuiteError(f"cannot listen on {host}: it is not an address of this machine") from None
        raise NlpsuiteError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app, config: ServeConfig) -> uvicorn.Config:
    """uvicorn's settings for the app: our own logs and access log, the drain time, and headers on a deadline."""
    protocol = type("Protocol", (HeaderDeadline,), {"timeout_s": config.header_timeout_s})
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # AccessLog writes one line per request, in the chosen format
        timeout_graceful_shutdown=config.drain_s,
        lifespan="on",
        http=protocol,
    )


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request's headers: a connection that opens (or
    finishes a response) and does not send a whole request head within ``timeout_s`` is closed. uvicorn has no
    such limit, so sockets that dribble or never send kept their file descriptors for ever."""

    timeout_s = 30.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        waiting_for = self.cycle  # a new request replaces the cycle: until then, its head has not come
        self.loop.call_later(self.timeout_s, lambda: self._expire(waiting_for))

    def _expire(self, waiting_for) -> None:
        if self.cycle is waiting_for and not self.transport.is_closing():
            self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's Server, told about SIGTERM: new requests get 503 while those in flight finish."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig, frame) -> None:
        if self.service.state == "ready":
            self.service.state = "draining"
            log.info("draining: finishing requests in flight (up to %g s)", self.service.config.drain_s)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self):
        # uvicorn raises a caught SIGTERM again once it has shut down (exit status -15): a server that drained
        # as asked has done its job, so it exits 0.
        with super().capture_signals():
            yield
            getattr(self, "_captured_signals", []).clear()
