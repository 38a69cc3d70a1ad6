"""`nlpsuite plugins` and `nlpsuite doctor`: what is installed and what really runs."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from .. import config
from ..plugins import registry
from .options import Json, Quiet, print_json

PACKAGES = (
    "nlpsuite",
    "onnxruntime-gpu",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "typer",
    "rich",
    "pluggy",
    "torch",
    "transformers",
)


def plugins(json: Json = False, quiet: Quiet = False) -> None:
    """List plugins, the hooks each implements and any error that kept it out."""
    found = registry().plugins
    if json:
        print_json([p.as_dict() for p in found])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "hooks", "status", box=None)
    for p in found:
        status = f"[red]{p.error}[/red]" if p.error else ("built-in" if p.builtin else "ok")
        table.add_row(p.name, ", ".join(h.replace("register_", "") for h in p.hooks), status)
    Console().print(table)


def _dir_size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def doctor(json: Json = False, quiet: Quiet = False) -> None:
    """Versions, the execution provider that really runs, the cache and the plugins."""
    from ..runtime.device import CUDA, plan, probe_cuda, quiet_onnxruntime

    ort = quiet_onnxruntime()
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    device_plan = plan(config.default_device())  # NLPSUITE_DEVICE=cuda without a usable GPU says why
    data = {
        "device": "cuda" if device_plan.providers[0] == CUDA else "cpu",
        "device_note": device_plan.note,
        "providers_available": ort.get_available_providers(),
        "providers_planned": device_plan.providers,
        "versions": versions,
        "cache_dir": str(config.home()),
        "cache_bytes": _dir_size(config.home()),
        "default_model": config.default_model(),
        "plugins": [p.as_dict() for p in registry().plugins],
        "platform": f"{platform.system()} {platform.machine()}",
    }
    if device_plan.providers[0] == CUDA:
        data.update(probe_cuda(ort))
    if json:
        print_json(data)
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    console.print(f"[bold]device[/bold]      {data['device']}  {escape(data['device_note'])}")
    console.print(f"[bold]providers[/bold]   available: {', '.join(data['providers_available'])}")
    console.print(f"[bold]cache[/bold]       {data['cache_dir']} ({data['cache_bytes'] / 1e6:,.0f} MB)")
    console.print(f"[bold]model[/bold]       {data['default_model']}")
    console.print("[bold]versions[/bold]    " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for p in data["plugins"]:
        console.print(f"[bold]plugin[/bold]      {p['name']}: " + (f"[red]{p['error']}[/red]" if p["error"] else "ok"))
    sys.stdout.flush()
