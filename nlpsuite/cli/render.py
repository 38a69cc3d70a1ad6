"""A task's result as a person reads it, chosen by the result's shape (so third-party tasks get it too)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

TEXT_FIELDS = ("translation", "summary", "text", "reply")


def show(result: dict, value: str | None = None, quiet: bool = False) -> None:
    """Print a result on stdout: a label table, an answer with its sources, ranked passages, or its text
    (``value``: the field the task declares as its result). ``quiet``: the result alone, a label or an answer
    on its own line."""
    from rich.console import Console

    if quiet and ("label" in result or "answer" in result):
        sys.stdout.write(str(result.get("label") or result.get("answer") or "(no answer)") + "\n")
        return
    console = Console(highlight=False, soft_wrap=True)
    if "label" in result and isinstance(result.get("scores"), dict):
        console.print(_label_table(result))
    elif "answer" in result:
        _answer(console, result)
    elif isinstance(result.get("results"), list) and all("relevance_score" in r for r in result["results"]):
        _ranked(result["results"])
    elif isinstance(result.get("results"), list):
        _passages(result["results"])
    else:
        sys.stdout.write(as_text(result, value) + "\n")


def as_text(result, value: str | None = None) -> str:
    """One result as plain text (the REPL's rendering of a result)."""
    if isinstance(result, str):
        return result
    if value and isinstance(result, dict) and isinstance(result.get(value), str):
        return result[value]
    if value and isinstance(result, dict) and isinstance(result.get(value), dict):  # an object (extract)
        return json.dumps(result[value], ensure_ascii=False, indent=2)
    if not isinstance(result, dict):
        return json.dumps(result, ensure_ascii=False, indent=2)
    if "answer" in result:
        lines = [result["answer"] or "(no answer)"]
        lines += [f"  [{s['id']}] {s['source']}" for s in result.get("sources", [])]
        return "\n".join(lines)
    if "label" in result and isinstance(result.get("scores"), dict):
        others = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["scores"].items(), key=lambda kv: -kv[1]))
        return f"{result['label']} ({others})"
    for key in TEXT_FIELDS:
        if isinstance(result.get(key), str):
            return result[key]
    return json.dumps(result, ensure_ascii=False, indent=2)


def _label_table(result: dict):
    from rich.table import Table

    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("label")
    table.add_column("probability", justify="right")
    table.add_column("")
    for name, p in sorted(result["scores"].items(), key=lambda kv: -kv[1]):
        style = "bold green" if name == result["label"] else ""
        table.add_row(f"[{style}]{name}[/{style}]" if style else name, f"{p:.3f}", "█" * round(p * 20))
    return table


def _answer(console, result: dict) -> None:
    from rich.markup import escape

    cited = f" [{result['passage']}]" if "passage" in result else ""
    answer = escape(result["answer"] or "(no answer)")
    console.print(f"[bold]{answer}[/bold]{escape(cited)}  [dim](score {result['score']:.2f})[/dim]")
    for s in result.get("sources", []):
        console.print("[dim]" + escape(f"[{s['id']}] {s['source']}") + "[/dim]")


def _shown_source(source: str) -> str:
    """A file under the current folder is shown by its relative path (--json keeps the stored one)."""
    path = Path(source)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
    return source


def _passages(results: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    for rank, r in enumerate(results, start=1):
        source = escape(_shown_source(r["source"]))
        relevance = f" · relevance {r['relevance']:.3f}" if "relevance" in r else ""  # search --rerank
        console.print(f"[bold]{rank}.[/bold] [cyan]{source}[/cyan]  [dim]score {r['score']:.3f}{relevance}[/dim]")
        console.print(escape(" ".join(r["text"].split())), soft_wrap=False)
        if rank < len(results):
            console.print()


def _ranked(results: list[dict]) -> None:
    """Reranked documents: rank, the document's position in the input, its relevance, its text if given."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    for rank, r in enumerate(results, start=1):
        bar = "█" * round(r["relevance_score"] * 20)
        console.print(f"[bold]{rank}.[/bold] [cyan]#{r['index']}[/cyan]  {r['relevance_score']:.3f} [dim]{bar}[/dim]")
        if "document" in r:
            console.print(escape(" ".join(r["document"]["text"].split())), soft_wrap=False)
