"""Built-in plugin: `nlpsuite index add|list|rm`, `nlpsuite search` and the `search` task."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from nlpsuite.cli import options as opt
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Task

IndexName = Annotated[str, typer.Argument(help="The index's name.")]
K = Annotated[int, typer.Option("-k", "--k", help="How many passages to return.")]

index_app = typer.Typer(name="index", help="Build, list and remove search indexes.", no_args_is_help=True)


def _run(suite, query, name: str, k: int = 5):
    return suite.search(name, query, k=k)


@hookimpl
def register_tasks(register):
    register(Task("search", "Passages of an index that best match a query.", "embedding", _run))


def _progress_bar(quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, disable=quiet, transient=False, redirect_stdout=False, console=_stderr())


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


@index_app.command("add")
def add(
    name: IndexName,
    paths: Annotated[list[Path], typer.Argument(help=".txt/.md files, folders of them, or JSONL with id and text.")],
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    precision: opt.Precision = "fp32",
) -> None:
    """Add documents to an index (created if new); a changed file replaces its passages."""
    from nlpsuite import retrieval

    retrieval.store.index_dir(name)
    docs = retrieval.read_documents(paths)  # unreadable or binary input fails before the model loads
    suite = opt.open_suite(model, device, precision, quiet)
    with _progress_bar(quiet) as bar:
        task = bar.add_task("embedding passages", total=None)
        counts = retrieval.add_documents(
            suite, name, docs, lambda done, total: bar.update(task, completed=done, total=total)
        )
    if json:
        opt.print_json(counts)
    elif not quiet:
        opt.err(
            f"[green]{name}[/green]: {counts['documents']} documents, {counts['passages']} passages "
            f"(added {counts['added']}, updated {counts['updated']}, unchanged {counts['unchanged']}"
            + (f", empty {counts['empty']}" if counts["empty"] else "")
            + ")"
        )


@index_app.command("list")
def list_indexes(json: opt.Json = False, quiet: opt.Quiet = False) -> None:
    """Indexes in the cache, with their sizes and the model that embedded them."""
    from nlpsuite import config
    from nlpsuite.retrieval import store

    rows = [
        {k: m[k] for k in ("name", "documents", "passages", "updated")} | {"model": m["model"]["key"]}
        for m in store.list_indexes()
    ]
    if json:
        opt.print_json({"index_dir": str(config.home() / "indexes"), "indexes": rows})
        return
    if not rows:
        if not quiet:
            opt.err("no indexes yet: create one with 'nlpsuite index add NAME PATHS...'")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("index", "documents", "passages", "model", "updated", box=None)
    for r in rows:
        table.add_row(r["name"], str(r["documents"]), str(r["passages"]), r["model"], r["updated"])
    Console().print(table)


@index_app.command("rm")
def remove(name: IndexName, json: opt.Json = False, quiet: opt.Quiet = False) -> None:
    """Remove an index."""
    from nlpsuite.retrieval import store

    if not store.remove(name):
        raise opt.NlpsuiteError(f"no index named {name!r} (see 'nlpsuite index list')")
    if json:
        opt.print_json({"removed": name})
    elif not quiet:
        opt.err(f"removed index {name}")


def search(
    name: IndexName,
    query: Annotated[str | None, typer.Argument(help="The query; read from stdin when omitted or '-'.")] = None,
    k: K = 5,
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    precision: opt.Precision = "fp32",
    file: opt.InputFile = None,
    input: opt.BatchInput = None,
    output: opt.BatchOutput = None,
    batch_size: opt.BatchSize = 16,
) -> None:
    """Search an index: the passages that best match the query (dense embeddings fused with BM25)."""
    from nlpsuite import retrieval

    batch = opt.batch_paths(input, output, query)
    text = None if batch else opt.read_text(query, what="query", file=file)
    if k < 1:
        raise opt.NlpsuiteError("-k must be at least 1")
    if batch and batch_size < 1:
        raise opt.NlpsuiteError("--batch-size must be at least 1")
    retrieval.store.load(name)  # a missing index fails before the model loads
    suite = opt.open_suite(model, device, precision, quiet)
    if batch:
        from nlpsuite.cli.batch import run_batch

        def process(records):
            found = retrieval.search(suite, name, [r["text"] for r in records], k)
            return [{"results": results} for results in found]

        written = run_batch(input, output, process, batch_size, quiet, label="searching")
        if json:
            opt.print_json({"output": str(output), "written": written, "index": name})
        return
    results = retrieval.search(suite, name, [text], k)[0]
    if json:
        opt.print_json({"index": name, "query": text, "results": results})
        return
    _show(results)


def _shown_source(source: str) -> str:
    """A file under the current folder is shown by its relative path (--json keeps the stored one)."""
    path = Path(source)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
    return source


def _show(results: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    for rank, r in enumerate(results, start=1):
        source = escape(_shown_source(r["source"]))
        console.print(f"[bold]{rank}.[/bold] [cyan]{source}[/cyan]  [dim]score {r['score']:.3f}[/dim]")
        console.print(escape(" ".join(r["text"].split())), soft_wrap=False)
        if rank < len(results):
            console.print()


@hookimpl
def register_commands(register):
    register(index_app, name="index")
    register(search)
