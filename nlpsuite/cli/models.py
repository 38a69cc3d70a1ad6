"""`nlpsuite models list | pull | info | verify | rm`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import config
from ..artefacts import PRECISIONS
from ..errors import NlpsuiteError
from .options import Json, Precision, Quiet, err, print_json, reporter

app = typer.Typer(help="List, fetch, inspect and remove models.", no_args_is_help=True)
Name = Annotated[str | None, typer.Argument(help="Catalog name, local path or hub id [default: the default model].")]
OnePrecision = Annotated[
    str | None, typer.Option("--precision", help="Only this precision [default: every one in the cache].")
]


def _models() -> dict:
    """The models plugins registered, beside the built-in catalog."""
    from ..plugins import registry

    return registry().models


def _target(name: str | None) -> str:
    """The model a subcommand acts on: its argument, else the default (NLPSUITE_MODEL, else the catalog's)."""
    return name or config.default_model()


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _precisions(precision: str | None) -> tuple[str, ...]:
    """The precisions a subcommand acts on: the one given, else every one."""
    if precision is not None and precision not in PRECISIONS:
        raise NlpsuiteError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return (precision,) if precision else PRECISIONS


@app.command("list")
def list_models(json: Json = False, quiet: Quiet = False) -> None:
    """Catalog models and converted models in the cache."""
    from ..modelstore.resolve import cached_models, catalog

    known = catalog(_models())
    rows = {}
    for name, e in sorted(known.entries.items()):
        download = _download_bytes(known.resolve(name))
        rows[name] = {"name": name, "description": e.get("description", ""), "cached": [], "disk": {}}
        rows[name] |= {"download_bytes": download, "total_bytes": download}
    for c in cached_models():
        where = c.manifest.get("source", {}).get("location", "")
        empty = {"name": c.key, "description": where, "cached": [], "disk": {}, "download_bytes": 0, "total_bytes": 0}
        row = rows.setdefault(c.key, empty)
        row["cached"].append(c.precision)
        row["disk"][c.precision] = c.footprint()
        row["total_bytes"] += row["disk"][c.precision]["total_bytes"]
    rows = list(rows.values())
    if json:
        print_json({"cache_dir": str(config.models_dir()), "models": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "on disk (each precision: model, pre-packed copy, derived)", "description", box=None)
    for r in rows:
        parts = [f"{p} {_size(r['disk'][p]['total_bytes'])}" for p in r["cached"]]
        parts += [f"download {_size(r['download_bytes'])}"] if r["download_bytes"] else []
        table.add_row(r["name"], ", ".join(parts) or "-", r["description"])
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
    disk = {p: {**c.footprint(), "packed_copy": _packed_copy(c)} for p, c in converted.items()}
    download = _download_bytes(source)
    data = {
        "name": source.key,
        "kind": source.kind,
        "location": source.location,
        "description": source.description,
        "converted": {p: c.manifest for p, c in converted.items()},
        "disk": disk,
        "download_bytes": download,
        "total_bytes": download + sum(d["total_bytes"] for d in disk.values()),
    }
    if json:
        print_json(data)
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.print(f"[bold]{source.key}[/bold]  {escape(source.description)}")
    if not converted:
        console.print("not converted yet: 'nlpsuite models pull' or the first use converts it")
    for precision, cached in converted.items():
        manifest, d = cached.manifest, disk[precision]
        arch = manifest.get("architecture", {})
        console.print(
            f"  {precision}: {arch.get('model_type')} {arch.get('num_layers')} layers, "
            f"hidden {arch.get('hidden_size')}, vocab {arch.get('vocab_size')}, "
            f"context {arch.get('context_length')}, created {manifest.get('created')}"
        )
        console.print(
            f"    on disk {_size(d['total_bytes'])}: model {_size(d['model_bytes'])}, "
            f"pre-packed copy {_size(d['packed_copy_bytes'])}, derived {_size(d['derived_bytes'])}"
        )
        kept = "kept" if d["packed_copy"]["kept"] else "none"
        console.print(f"    pre-packed copy: {kept}: {escape(d['packed_copy']['why'])}")
    if download:
        console.print(f"  download {_size(download)}: the source file, kept to convert another precision offline")
    if len(converted) + bool(download) > 1:
        console.print(f"  in all {_size(data['total_bytes'])}")


def _download_bytes(source) -> int:
    """The size of the file a catalog model was downloaded as (kept to convert again), 0 if none."""
    from ..modelstore.resolve import download_of

    path = download_of(source)
    try:
        return path.stat().st_size if path else 0
    except OSError:
        return 0


def _packed_copy(cached) -> dict:
    """Whether the entry keeps a pre-packed copy for this machine's CPU, and why (runtime/prepacked.py's rule)."""
    from ..runtime import prepacked

    kept, why = prepacked.policy(cached.path, cached.precision)
    return {"kept": kept, "why": why}


@app.command("verify")
def verify(
    name: Name = None,
    precision: OnePrecision = None,
    json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Hash every file of a model's cache entries (pre-packed copies too) and say which is damaged."""
    from ..modelstore.integrity import mismatched
    from ..modelstore.resolve import store
    from ..runtime import prepacked

    wanted = _precisions(precision)
    key = _resolved(_target(name))[0]
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


def _resolved(name: str):
    """(cache key, source) of a model name; (the name itself, None) when its source is gone."""
    from ..modelstore.resolve import resolve

    try:
        source = resolve(name, _models())
    except NlpsuiteError:
        return name, None
    return source.key, source


@app.command("rm")
def rm(
    name: Name = None,
    precision: OnePrecision = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking.")] = False,
    json: Json = False,
    quiet: Quiet = False,
):
    """Delete a model's converted files (every precision, or one), its pre-packed copies, what tasks derived
    from it and, with every precision, its download; asks first on a terminal."""
    from ..modelstore.resolve import remove_download, store

    wanted = _precisions(precision)
    key, source = _resolved(_target(name))
    entries = [c for p in wanted if (c := store().get(key, p))]
    download = 0 if precision or source is None else _download_bytes(source)
    if not entries and not download and (precision or not (store().root / key).is_dir()):
        raise NlpsuiteError(f"{key} ({precision}) is not in the cache" if precision else f"{key} is not in the cache")
    freed = download + sum(c.footprint()["total_bytes"] for c in entries)
    parts = [c.precision for c in entries] + (["download"] if download else [])
    what = f"{key} ({', '.join(parts) or 'unfinished files'}, {_size(freed)})"
    if not yes:
        if not sys.stdin.isatty():
            raise NlpsuiteError(f"not removing {what} without asking: add --yes (no terminal to ask on)")
        if not typer.confirm(f"remove {what} from the cache?", default=False, err=True):
            raise NlpsuiteError(f"nothing removed: {key} stays")
    store().remove(key, wanted)
    if download:
        remove_download(source)
    if json:
        removed = {"removed": key, "precisions": [c.precision for c in entries], "download": bool(download)}
        print_json({**removed, "freed_bytes": freed})
    elif not quiet:
        err(f"removed {what}")
