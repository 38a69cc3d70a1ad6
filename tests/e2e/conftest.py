"""End-to-end tests on the real default model: every test in this folder is marked e2e (``pytest -m "not e2e"``
leaves them out), and they share one converted model (``real_home``); ``url`` is `nlpsuite serve` on it, started as a
user starts it, once per module."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def url(real_home, tmp_path_factory):
    """`nlpsuite serve` on a free loopback port, as a user starts it; stopped (SIGTERM) after the module."""
    env = {**os.environ, "NLPSUITE_HOME": str(real_home), "NLPSUITE_DEVICE": "cpu"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "nlpsuite", "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 600  # a first run converts the model
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"nlpsuite serve did not become ready (see {log.name})")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
