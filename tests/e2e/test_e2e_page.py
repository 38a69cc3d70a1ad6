"""The web page of `nlpsuite serve` on the real default model, in headless chromium at a laptop's and a phone's
width: the chat answers as the CLI does (the model's defaults: greedy), ask marks its answer in the context, label
tasks draw bars, translate sits beside its source. Screenshots go to the test's tmp folder, and also to the folder
NLPSUITE_PAGE_SCREENSHOTS names when it is set (docs/images/page-*.png are made this way)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from browser import WIDTHS, page

AMAZON = (
    "The Amazon River in South America is the largest river by discharge volume of water in the world. "
    "It flows through Brazil, Peru and Colombia. The river was named by the Spanish explorer Francisco de "
    "Orellana in 1542."
)


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
