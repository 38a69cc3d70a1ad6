"""The web page of `nlpsuite serve` on the real default model, in headless chromium at a laptop's and a phone's
width: the chat answers as the CLI does (the model's defaults: greedy), ask marks its answer in the context, label
tasks draw bars, translate sits beside its source. Screenshots go to the test's tmp folder, and also to the folder
NLPSUITE_PAGE_SCREENSHOTS names when it is set (docs/images/page-*.png are made this way)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import WIDTHS, page

AMAZON = (
    "The Amazon River in South America is the largest river by discharge volume of water in the world. "
    "It flows through Brazil, Peru and Colombia. The river was named by the Spanish explorer Francisco de "
    "Orellana in 1542."
)


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


DOCS = {"page-chat-1280.png", "page-ask-1280.png", "page-classify-390.png", "page-translate-390.png"}


def keep(shot: Path) -> None:
    """The screenshots docs/web-page.md shows also go to NLPSUITE_PAGE_SCREENSHOTS, when it is set."""
    folder = os.environ.get("NLPSUITE_PAGE_SCREENSHOTS")
    if folder and shot.name in DOCS:
        shutil.copy(shot, Path(folder) / shot.name)


def test_the_page_answers_like_the_cli_and_marks_the_answer(url, tmp_path):
    with page(url) as p:
        for width in WIDTHS:
            p.load(width)
            reply = p.until_class(p.say("What is the capital of France?"), "done")
            assert "Paris" in p.text(p.one(".text", reply))  # at the page's old temperature 0.7: "La femme au France"
            keep(p.screenshot(tmp_path / f"page-chat-{width}.png"))
            result = p.run("ask", {"question": "Who named the river?", "context": AMAZON})
            assert "Orellana" in p.text(p.one(".context mark", result))
            keep(p.screenshot(tmp_path / f"page-ask-{width}.png"))
            result = p.run("classify", {"text": "The goalie made thirty saves in the third period.",
                                        "labels": "hockey, space, cooking"})  # fmt: skip
            assert p.one(".bar-row.chosen", result).get_attribute("data-name") == "hockey"
            keep(p.screenshot(tmp_path / f"page-classify-{width}.png"))
            result = p.run("translate", {"text": "Good morning. How are you today?", "to": "French"})
            assert p.text(p.one(".beside .source", result)) == "Good morning. How are you today?"
            keep(p.screenshot(tmp_path / f"page-translate-{width}.png"))
            assert not p.overflows()
            assert p.console_errors() == []
