"""What every benchmark script shares, written once: timing, the median (min–max) summary, the JSON report under
benchmarks/results/, the table on stdout, and the inputs more than one script uses. Scripts import it as a
sibling (``from harness import ...``; run them as ``python benchmarks/NAME.py``) and import no other script.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds of wall time, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def repeat(fn: Callable[[], Any], runs: int) -> list[float]:
    """Seconds of each of ``runs`` calls."""
    return [timed(fn)[0] for _ in range(runs)]


def stats(values: Iterable[float], digits: int | None = None) -> dict:
    """{"median", "min", "max"} of the values (rounded to ``digits`` if given)."""
    values = list(values)
    found = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return {k: round(v, digits) for k, v in found.items()} if digits is not None else found


def spread(values: Iterable[float] | dict, fmt: str = ".2f") -> str:
    """ "median (min–max)" of the values, or of a ``stats`` dict."""
    found = values if isinstance(values, dict) else stats(values)
    return f"{found['median']:{fmt}} ({found['min']:{fmt}}–{found['max']:{fmt}})"


def out_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out``, by default benchmarks/results/NAME.json."""
    parser.add_argument("--out", default=str(RESULTS / f"{name}.json"), help="the JSON report to write")


def save(report: Any, out: str | Path) -> Path:
    """Write the JSON report (its folder made if need be) and say where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"JSON written to {out}", file=sys.stderr)
    return out


def show(title: str, columns: list[str], rows: Iterable[Iterable[Any]], markdown: bool = False) -> None:
    """A table on stdout; ``markdown`` prints it as a Markdown table, ready for a docs page. The first column is
    left-aligned, the others right-aligned."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.MARKDOWN if markdown else box.HEAVY_HEAD, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console(width=160).print(table)


# -- inputs more than one script uses -------------------------------------------------------------------------


def stdlib_documents(folder: Path, passages: int, count_tokens, max_tokens: int) -> int:
    """Write one .txt per stdlib module (its docstrings) until about ``passages`` passages' worth."""
    root = Path(sysconfig.get_paths()["stdlib"])
    budget = 0
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if "test" in path.parts[-2:] or path.name.startswith("test"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        docs = [
            ast.get_docstring(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        text = "\n\n".join(d.strip() for d in docs if d and len(d.split()) >= 8)
        if not text:
            continue
        (folder / f"{path.parent.name}.{path.stem}.txt").write_text(text, encoding="utf-8")
        budget += max(1, count_tokens(text) // max_tokens + 1)
        if budget >= passages:
            break
    return budget


# The drafting benchmarks' calls (bench_drafting.py times them, bench_drafting_cost.py counts their passes).
# Article-like texts (written for this benchmark, so they can ship with it): news-style reports with names,
# numbers and phrases that a summary or an answer copies.
ARTICLES = [
    "The city council of Riverton voted on Tuesday to build a new public library on the site of the old "
    "train station. The library will cost 14 million dollars and will open in the spring of 2028. Mayor "
    "Helen Carter said the building will have a children's reading room, a makerspace with 3D printers and "
    "a rooftop garden. The vote passed seven to two. Council member James Ortiz, who voted against the plan, "
    "said the city should first repair the roads on the east side. The old train station closed in 1994 and "
    "has been empty since then. Construction will begin in March and is expected to take two years.",
    "Researchers at the Northern Ocean Institute have found that the water temperature in the Gulf of Maren "
    "rose by 1.2 degrees Celsius over the last ten years. The team, led by Dr. Amira Said, measured the "
    "temperature at forty stations every month since 2015. The warmer water has pushed cod and haddock "
    "further north, and local fishing boats now travel twice as far to reach them. Dr. Said said the "
    "change is faster than the models predicted. The institute will publish the full data set in June and "
    "plans to add twenty new stations along the northern coast next year.",
    "The Lakeside Tigers won the national basketball championship on Sunday, beating the Granite City "
    "Bears 88 to 81 in the final game. Point guard Maya Lindqvist scored 31 points and was named the most "
    "valuable player of the tournament. It is the first title for the Tigers since 2009. Coach Daniel "
    "Brooks said the team had worked for this moment all season. More than 20,000 fans watched the game at "
    "the Central Arena, and the city will hold a parade for the team on Wednesday morning.",
]
QUESTIONS = [
    "What will the new library have?",
    "Who led the research team and what did they measure?",
    "Who was named the most valuable player?",
]
SENTENCES = [
    "The library will cost 14 million dollars and will open in the spring of 2028.",
    "Maya Lindqvist scored 31 points and was named the most valuable player of the tournament.",
    "The institute will publish the full data set in June.",
]
CHATS = [
    "Write a short poem about autumn leaves.",
    "Give me three tips for learning to cook.",
    "What is the difference between weather and climate?",
]
DRAFTING_TASKS = {
    "summarize": lambda suite: [suite.run("summarize", a) for a in ARTICLES],
    "ask --generate": lambda suite: [
        suite.run("ask", q, context=a, generate=True) for q, a in zip(QUESTIONS, ARTICLES, strict=True)
    ],
    "translate (fr)": lambda suite: [suite.run("translate", s, to="fr") for s in SENTENCES],
    "chat": lambda suite: [suite.chat(m, max_tokens=128) for m in CHATS],
}
