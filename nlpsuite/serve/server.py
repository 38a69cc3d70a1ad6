"""Run the app under uvicorn: loopback unless a key (or --insecure) says otherwise, readable or JSON logs, and a
SIGTERM that stops taking requests, lets those in flight finish for a bounded time, then exits 0."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import sys
import time

import uvicorn

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
    """Serve until SIGTERM or Ctrl-C; raises NlpsuiteError when the model cannot load."""
    setup_logging(json_logs)
    service = Service(config)
    app = create_app(service)
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # AccessLog writes one line per request, in the chosen format
        timeout_graceful_shutdown=config.drain_s,
        lifespan="on",
    )
    server = DrainingServer(uv_config, service)
    service.on_failure = lambda: setattr(server, "should_exit", True)
    log.info("nlpsuite serve on http://%s:%d/ (%s)", host if ":" not in host else f"[{host}]", port,
             "API key required" if config.api_key else "no API key")  # fmt: skip
    server.run()
    if service.state == "failed":
        raise NlpsuiteError(service.failure)


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
