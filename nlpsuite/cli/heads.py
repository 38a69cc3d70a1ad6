"""`nlpsuite heads train|list|rm`: probe heads, small classifiers trained on the backbone's embeddings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import NlpsuiteError
from . import options as opt
from .progress import progress_bar

app = typer.Typer(help="Probe heads: small classifiers trained on the backbone's embeddings.", no_args_is_help=True)


@app.command("train")
def heads_train(
    name: Annotated[str, typer.Argument(help="Name of the head, e.g. 'tickets'.")],
    data: Annotated[Path, typer.Argument(help="CSV, TSV or JSONL with text and label columns.")],
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the label.")] = "label",
    json: opt.Json = False,
    model: opt.Model = None,
    device: opt.Device = "auto",
    precision: opt.Precision = "fp32",
    quiet: opt.Quiet = False,
) -> None:
    """Train a probe head on labelled texts; use it with 'nlpsuite classify --head NAME'."""
    from ..heads.probe import NAME
    from ..records import label_field, read_records, text_field

    if not NAME.match(name):
        raise NlpsuiteError(f"bad head name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    rows = read_records(data, (text_column, label_column))
    texts = [text_field(data, line, record, text_column) for line, record in rows]
    labels = [label_field(data, line, record, label_column) for line, record in rows]
    suite = opt.open_suite(model, device, precision, quiet)
    with progress_bar("embedding texts", quiet, transient=False) as bar:
        report = suite.head("probe").train(name, texts, labels, progress=bar)
    if json:
        opt.print_json(report)
        return
    held = report.get("holdout_accuracy")
    extra = f"; held-out accuracy {held:.3f} on {report['holdout_examples']} examples" if held is not None else ""
    sys.stdout.write(f"trained head {name!r}: {len(report['labels'])} labels, {report['examples']} examples{extra}\n")


@app.command("list")
def heads_list(
    json: opt.Json = False, model: opt.Model = None, precision: opt.Precision = "fp32", quiet: opt.Quiet = False
) -> None:
    """Trained probe heads of the model."""
    store = _store(model, precision)
    rows = []
    for name in store.names():
        probe = store.load(name)
        rows.append({"name": name, "labels": probe.labels, **{k: v for k, v in probe.info.items() if k != "labels"}})
    if json:
        opt.print_json({"model": store.model_key, "heads": rows})
    elif not rows:
        opt.err("no trained heads; train one with 'nlpsuite heads train NAME DATA'")
    else:
        for row in rows:
            sys.stdout.write(f"{row['name']}\t{', '.join(row['labels'])}\t{row.get('examples', '?')} examples\n")


@app.command("rm")
def heads_rm(name: str, model: opt.Model = None, precision: opt.Precision = "fp32") -> None:
    """Remove a trained probe head."""
    _store(model, precision).remove(name)
    opt.err(f"removed head {name!r}")


def _store(model: str | None, precision: str):
    from ..heads.probe import ProbeStore
    from ..modelstore.resolve import resolve
    from ..plugins import registry

    return ProbeStore(resolve(model, registry().models).key, precision)
