"""`nlpsuite models list | pull | info | verify | rm`."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import config
from ..artefacts import PRECISIONS
from ..errors import NlpsuiteError
from .options import Json, Precision, Quiet, err, print_json, reporter

app = typer.Typer(help="List, fetch, inspect and remove models.", no_args_is_help=True)
Name = Annotated[str | None, typer.Argument(help="Catalog name, local path or hub id \\[default: the default model].")]


def _models() -> dict:
    """The models plugins registered, beside the built-in catalog."""
    from ..plugins import registry

    return registry().models


def _target(name: str | None) -> str:
    """The model a subcommand acts on: its argument, else the default (NLPSUITE_MODEL, else the catalog's)."""
    return name or config.default_model()


def _size(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


@app.command("list")
def list_models(json: Json = False, quiet: Quiet = False) -> None:
    """Catalog models and converted models in the cache."""
    from ..modelstore.resolve import cached_models, catalog

    rows = {
        name: {"name": name, "description": e.get("description", ""), "cached": [], "disk_bytes": {}}
        for name, e in sorted(catalog(_models()).entries.items())
    }
    for c in cached_models():
        where = c.manifest.get("source", {}).get("location", "")
        row = rows.setdefault(c.key, {"name": c.key, "description": where, "cached": [], "disk_bytes": {}})
        row["cached"].append(c.precision)
        row["disk_bytes"][c.precision] = c.disk_bytes
    rows = list(rows.values())
    if json:
        print_json({"cache_dir": str(config.models_dir()), "models": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "cached (size on disk)", "description", box=None)
    for r in rows:
        cached = ", ".join(f"{p} ({_size(r['disk_bytes'][p])})" for p in r["cached"])
        table.add_row(r["name"], cached or "-", r["description"])
    Console().print(table)


@app.command("pull")
def pull(
    name: Name = None,
    precision: Precision = "fp32",
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Fetch and convert a model now (otherwise the first use does it)."""
    from ..modelstore.resolve import ensure_model, resolve

    source = resolve(_target(name), _models())
    folder = ensure_model(source, precision, reporter(quiet), quiet)
    if json:
        print_json({"name": source.key, "precision": precision, "path": str(folder)})
    elif not quiet:
        err(f"[green]ready:[/green] {source.key} ({precision}) in {folder}")


@app.command("info")
def info(name: Name = None, json: Json = False, quiet: Quiet = False):
    """Show a model's source and, if converted, its manifest."""
    from ..modelstore.resolve import resolve, store

    source = resolve(_target(name), _models())
    converted = {p: c for p in PRECISIONS if (c := store().get(source.key, p))}
    versions = {p: c.manifest for p, c in converted.items()}
    data = {
        "name": source.key,
        "kind": source.kind,
        "location": source.location,
        "description": source.description,
        "converted": versions,
    }
    if json:
        print_json(data)
        return
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{source.key}[/bold]  {source.description}")
    if not versions:
        console.print("not converted yet: 'nlpsuite models pull' or the first use converts it")
    for precision, cached in converted.items():
        manifest = cached.manifest
        arch = manifest.get("architecture", {})
        console.print(
            f"  {precision}: {arch.get('model_type')} {arch.get('num_layers')} layers, "
            f"hidden {arch.get('hidden_size')}, vocab {arch.get('vocab_size')}, "
            f"context {arch.get('context_length')}, {_size(cached.size_bytes)}, "
            f"created {manifest.get('created')}"
        )


@app.command("verify")
def verify(
    name: Name = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="Only this precision [default: every one in the cache].")
    ] = None,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Hash every file of a model's cache entries (pre-packed copies too) and say which is damaged."""
    from ..modelstore.integrity import mismatched
    from ..modelstore.resolve import store
    from ..runtime import prepacked

    if precision is not None and precision not in PRECISIONS:
        raise NlpsuiteError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    key = _cache_key(_target(name))
    wanted = [precision] if precision else list(PRECISIONS)
    entries = [c for p in wanted if (c := store().get(key, p))]
    if not entries:
        raise NlpsuiteError(f"{key} ({precision or 'any precision'}) is not in the cache: nothing to verify")
    rows = []
    for cached in entries:
        bad = mismatched(cached.path, cached.manifest["sha256"], trust_stamp=False)
        files = {n: n not in bad for n in cached.manifest["sha256"]} | prepacked.verify(cached.path)
        rows.append(
            {"precision": cached.precision, "path": str(cached.path), "ok": all(files.values()), "files": files}
        )
    damaged = [f"{r['precision']}/{n}" for r in rows for n, ok in r["files"].items() if not ok]
    if json:
        print_json({"name": key, "ok": not damaged, "entries": rows})
    elif not quiet:
        for r in rows:
            state = "ok" if r["ok"] else "damaged: " + ", ".join(n for n, ok in r["files"].items() if not ok)
            print(f"{key} {r['precision']}: {state} ({len(r['files'])} files hashed)")
    if damaged:
        raise NlpsuiteError(
            f"{key} is damaged (content differs from the sha256 recorded when written): {', '.join(damaged)}; "
            f"the next use rebuilds it, or remove it with 'nlpsuite models rm {key}'"
        )


def _cache_key(name: str) -> str:
    """The cache key of a model name; the name itself when its source is gone."""
    from ..modelstore.resolve import resolve

    try:
        return resolve(name, _models()).key
    except NlpsuiteError:
        return name


@app.command("rm")
def rm(name: Name = None, json: Json = False, quiet: Quiet = False):
    """Delete a model's converted files from the cache."""
    from ..modelstore.resolve import store

    key = _cache_key(_target(name))
    if not store().remove(key):
        raise NlpsuiteError(f"{key} is not in the cache")
    if json:
        print_json({"removed": key})
    elif not quiet:
        err(f"removed {key}")
