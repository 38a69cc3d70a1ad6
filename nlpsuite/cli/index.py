"""`nlpsuite index add|list|rm`: build, list and remove search indexes (`nlpsuite search` is the search task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import Interrupted, NlpsuiteError
from . import options as opt
from .progress import progress_bar

IndexName = Annotated[str, typer.Argument(help="The index's name.")]

app = typer.Typer(name="index", help="Build, list and remove search indexes.", no_args_is_help=True)


@app.command("add")
def add(
    name: IndexName,
    paths: Annotated[list[Path], typer.Argument(help=".txt/.md files, folders of them, or JSONL with id and text.")],
    model: opt.Model = None,
    device: opt.Device = "auto",
    json: opt.Json = False,
    quiet: opt.Quiet = False,
    precision: opt.Precision = "fp32",
    ray: opt.Ray = None,
    workers: opt.Workers = None,
    wait: Annotated[bool, typer.Option("--wait", help="If another run is adding to this index, wait for it.")] = False,
) -> None:
    """Add documents to an index (created if new); a changed file replaces its passages."""
    from .. import retrieval

    retrieval.index.index_dir(name)
    docs = retrieval.read_documents(paths)  # unreadable or binary input fails before the model loads
    pool = opt.ray_pool(ray, workers, model, device, precision)
    suite = opt.open_suite(model, device, precision, quiet)  # cuts passages and writes the index: one writer
    embed = None
    if pool:
        from .. import distributed

        embed = distributed.embedder(pool, retrieval.EMBED_SLICE)
    try:
        with progress_bar("embedding passages", quiet, transient=False) as bar:
            counts = retrieval.add_documents(suite, name, docs, bar, embed, wait)
    except KeyboardInterrupt:
        raise Interrupted(f"index {name!r} is as it was; run the same command to add the documents") from None
    if json:
        opt.print_json(counts)
    elif not quiet:
        opt.err(
            f"[green]{name}[/green]: {counts['documents']} documents, {counts['passages']} passages "
            f"(added {counts['added']}, updated {counts['updated']}, unchanged {counts['unchanged']}"
            + (f", empty {counts['empty']}" if counts["empty"] else "")
            + ")"
        )


@app.command("list")
def list_indexes(json: opt.Json = False, quiet: opt.Quiet = False) -> None:
    """Indexes in the cache, with their sizes and the model that embedded them."""
    from .. import config
    from ..retrieval import index

    rows = [
        {k: m[k] for k in ("name", "documents", "passages", "updated")}
        | {"model": m["model"]["key"]}
        | ({"damaged": m["damaged"]} if "damaged" in m else {})
        for m in index.list_indexes()
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
        if "damaged" in r:
            table.add_row(r["name"], "-", "-", "[red]damaged[/red]", r["damaged"])
        else:
            table.add_row(r["name"], str(r["documents"]), str(r["passages"]), r["model"], r["updated"])
    Console().print(table)


@app.command("rm")
def remove(name: IndexName, json: opt.Json = False, quiet: opt.Quiet = False) -> None:
    """Remove an index."""
    from ..retrieval import index

    if not index.remove(name):
        raise NlpsuiteError(f"no index named {name!r} (see 'nlpsuite index list')")
    if json:
        opt.print_json({"removed": name})
    elif not quiet:
        opt.err(f"removed index {name}")
