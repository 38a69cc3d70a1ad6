"""`nlpsuite models list | pull | info | verify | rm`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import config
from ..artefacts import PRECISIONS
from ..errors import NlpsuiteError
from .options import Device, Json, Model, Precision, Quiet, err, print_json, reporter

app = typer.Typer(help="List, fetch, inspect and remove models.", no_args_is_help=True)
Name = Annotated[
    str | None, typer.Argument(help="Catalog name, local path or hub id [default: --model or the default model].")
]
OnePrecision = Annotated[
    str | None, typer.Option("--precision", help="Only this precision [default: every one in the cache].")
]


def _models() -> dict:
    """The models plugins registered, beside the built-in catalog."""
    from ..plugins import registry

    return registry().models


def _target(name: str | None, model: str | None) -> str:
    """The model a subcommand acts on: its argument, else --model, else the default."""
    return name or model or config.default_model()


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _precisions(precision: str | None) -> tuple[str, ...]:
    """The precisions a subcommand acts on: the one given, else every one."""
    if precision is not None and precision not in PRECISIONS:
        raise NlpsuiteError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return (precision,) if precision else PRECISIONS


@app.command("list")
def list_models(json: Json = False, quiet: Quiet = False, model: Model = None, device: Device = "auto") -> None:
    """Catalog models and converted models in the cache."""
    from ..modelstore.resolve import cached_models, catalog

    rows = {
        name: {"name": name, "description": e.get("description", ""), "cached": [], "disk": {}, "total_bytes": 0}
        for name, e in sorted(catalog(_models()).entries.items())
    }
    for c in cached_models():
        where = c.manifest.get("source", {}).get("location", "")
        row = rows.setdefault(c.key, {"name": c.key, "description": where, "cached": [], "disk": {}, "total_bytes": 0})
        row["cached"].append(c.precision)
        row["disk"][c.precision] = c.footprint()
        row["total_bytes"] += row["disk"][c.precision]["total_bytes"]
    rows = list(rows.values())
    if json:
        print_json({"cache_dir": str(config.models_dir()), "models": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "cached (on disk: model, pre-packed copy, derived)", "description", box=None)
    for r in rows:
        cached = ", ".join(f"{p} {_size(r['disk'][p]['total_bytes'])}" for p in r["cached"])
        table.add_row(r["name"], cached or "-", r["description"])
    Console().print(table)


@app.command("pull")
def pull(
    name: Name = None,
    precision: Precision = "fp32",
    json: Json = False,
    quiet: Quiet = False,
    model: Model = None,
    device: Device = "auto",
) -> None:
    """Fetch and convert a model now (otherwise the first use does it)."""
    from ..modelstore.resolve import ensure_model, resolve

    source = resolve(_target(name, model), _models())
    folder = ensure_model(source, precision, reporter(quiet), quiet)
    if json:
        print_json({"name": source.key, "precision": precision, "path": str(folder)})
    elif not quiet:
        err(f"[green]ready:[/green] {source.key} ({precision}) in {folder}")


@app.command("info")
def info(name: Name = None, json: Json = False, quiet: Quiet = False, model: Model = None, device: Device = "auto"):
    """Show a model's source and, if converted, its manifest."""
    from ..modelstore.resolve import resolve, store

    source = resolve(_target(name, model), _models())
    converted = {p: c for p in PRECISIONS if (c := store().get(source.key, p))}
    disk = {p: {**c.footprint(), "packed_copy": _packed_copy(c)} for p, c in converted.items()}
    data = {
        "name": source.key,
        "kind": source.kind,
        "location": source.location,
        "description": source.description,
        "converted": {p: c.manifest for p, c in converted.items()},
        "disk": disk,
        "total_bytes": sum(d["total_bytes"] for d in disk.values()),
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
    if len(converted) > 1:
        console.print(f"  in all {_size(data['total_bytes'])}")


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
    model: Model = None,
    device: Device = "auto",
) -> None:
    """Hash every file of a model's cache entries (pre-packed copies too) and say which is damaged."""
    from ..modelstore.integrity import mismatched
    from ..modelstore.resolve import store
    from ..runtime import prepacked

    wanted = _precisions(precision)
    key = _cache_key(_target(name, model))
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
def rm(
    name: Name = None,
    precision: OnePrecision = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking.")] = False,
    json: Json = False,
    quiet: Quiet = False,
    model: Model = None,
    device: Device = "auto",
):
    """Delete a model's converted files (every precision, or one), its pre-packed copies and what tasks derived
    from it; asks first on a terminal."""
    from ..modelstore.resolve import store

    wanted = _precisions(precision)
    key = _cache_key(_target(name, model))
    entries = [c for p in wanted if (c := store().get(key, p))]
    if not entries and (precision or not (store().root / key).is_dir()):
        raise NlpsuiteError(f"{key} ({precision}) is not in the cache" if precision else f"{key} is not in the cache")
    freed = sum(c.footprint()["total_bytes"] for c in entries)
    what = f"{key} ({', '.join(c.precision for c in entries) or 'unfinished files'}, {_size(freed)})"
    if not yes:
        if not sys.stdin.isatty():
            raise NlpsuiteError(f"not removing {what} without asking: add --yes (no terminal to ask on)")
        if not typer.confirm(f"remove {what} from the cache?", default=False, err=True):
            raise NlpsuiteError(f"nothing removed: {key} stays")
    store().remove(key, wanted)
    if json:
        print_json({"removed": key, "precisions": [c.precision for c in entries], "freed_bytes": freed})
    elif not quiet:
        err(f"removed {what}")
