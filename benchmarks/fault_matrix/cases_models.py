"""Model files (MF): damaged GGUF headers, configs that disagree with their weights, odd widths, damaged caches.
The files are built as the tests build them (tests/test_model_files.py, tests/conftest.py)."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

from . import Case, Ctx, Verdict, refused
from .cases_state import MODEL, damaged_cache
from .cases_trust import TESTS, tiny_folder

FILES = "tests/test_model_files.py::"


def gguf(ctx: Ctx, name: str) -> Path:
    sys.path.insert(0, str(TESTS))
    from test_convert_stream import write_gguf
    from test_model_files import HANDMADE, header, text

    folder = ctx.data / "gguf"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.gguf"
    if name in HANDMADE:
        path.write_bytes(HANDMADE[name] + b"\0" * 4000)
    elif name in ("trunc", "cutmeta"):
        whole = folder / "whole.gguf"
        write_gguf(whole)
        data = whole.read_bytes()
        path.write_bytes(data[: len(data) // 2] if name == "trunc" else data[:60])
    else:  # an architecture nlpsuite does not convert
        path.write_bytes(header(0, 1) + text("general.architecture") + struct.pack("<I", 8) + text(name) + b"\0" * 64)
    return path


def gguf_case(id: str, name: str, says: str, what: str) -> Case:
    def run(ctx: Ctx) -> Verdict:
        got = ctx.sh(f"nlpsuite generate Hi --model {gguf(ctx, name)}", timeout=300)
        ok, said = refused(got, says)
        models = list((ctx.home / "models").glob(f"{name}*"))
        return ok and not models, said + (f"; left {models}" if models else "")

    return Case(
        id,
        f"nlpsuite generate Hi --model data/gguf/{name}.gguf ({what})",
        run,
        FILES + "test_a_damaged_gguf_file_is_one_plain_line_and_leaves_nothing",
    )


def hf_case(id: str, fields: dict, says: str, extra: str = "") -> Case:
    def run(ctx: Ctx) -> Verdict:
        folder = tiny_folder(ctx, f"{id.lower()}-{'-'.join(fields)}")
        config = json.loads((folder / "config.json").read_text())
        config.update(fields)
        (folder / "config.json").write_text(json.dumps(config))
        got = ctx.sh(f"nlpsuite generate Hi --model {folder} --max-tokens 4 {extra}", timeout=300)
        ok, said = refused(got, says)
        cached = [p.name for p in (ctx.home / "models").glob(f"{folder.name}*")]
        return ok and not cached, said + (f"; cached {cached}" if cached else "")

    return Case(
        id,
        f"a tiny Llama folder whose config says {fields}: generate Hi",
        run,
        FILES + "test_a_config_that_disagrees_with_its_weights_is_refused_before_it_is_read",
        slow=True,
    )


def mf07(ctx: Ctx) -> Verdict:
    results = [
        refused(ctx.sh(f"nlpsuite generate Hi --model {gguf(ctx, a)}"), "not supported")
        for a in ("mamba", "bert", "nosucharch")
    ]
    return all(ok for ok, _ in results), "; ".join(said for _, said in results)


def flip(packed: bool):
    def damage(folder: Path) -> None:
        path = next(folder.glob("cpu-*/model.onnx.data")) if packed else folder / "model.onnx.data"
        stat = path.stat()
        with open(path, "r+b") as f:
            f.seek(stat.st_size // 3)
            byte = f.read(1)
            f.seek(stat.st_size // 3)
            f.write(bytes([byte[0] ^ 0xFF]))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return damage


def verified(ctx: Ctx, packed: bool) -> Verdict:
    home = ctx.root / "homes" / "cache"
    if not (home / MODEL / "manifest.json").exists():
        home = ctx.home_copy("cache")
    flip(packed)(home / MODEL)
    check = ctx.sh("nlpsuite models verify smollm2-135m-instruct", home=home, timeout=600)
    named = "model.onnx.data" in check.out + check.err
    ok, said = damaged_cache(ctx, lambda folder: None)
    return ok and check.rc == 1 and named, f"verify exit {check.rc}, names the file: {named}; then {said}"


def mf12(ctx: Ctx) -> Verdict:
    sys.path.insert(0, str(TESTS))
    from conftest import build_tiny_llama

    folder = ctx.root / "sec" / "odd72"
    if not (folder / "config.json").exists():
        build_tiny_llama(folder, hidden=72)
    results = []
    for precision in ("fp32", "int8", "int4"):
        got = ctx.sh(
            f'nlpsuite generate "the quick brown fox" --raw --model {folder} --precision {precision} --max-tokens 4',
            timeout=300,
        )
        results.append((precision, got.rc, "Traceback" in got.err))
    return all(rc == 0 and not tb for _, rc, tb in results), f"{results}"


CASES = [
    gguf_case("MF01", "trunc", "damaged GGUF file", "cut to half"),
    gguf_case("MF02", "cutmeta", "damaged GGUF file", "cut inside its metadata"),
    gguf_case("MF03", "tensors2p40", "damaged GGUF file", "a header claiming 2^40 tensors"),
    gguf_case("MF04", "str2p40", "damaged GGUF file", "a metadata string claiming 2^40 bytes"),
    gguf_case("MF05", "kv2p40", "damaged GGUF file", "kv_count 2^40"),
    gguf_case("MF06", "dims", "damaged GGUF file", "tensor dims 2^31 x 2^31"),
    Case(
        "MF07",
        "GGUF files of architecture mamba, bert, nosucharch: generate Hi",
        mf07,
        "tests/test_gguf_source.py::test_an_architecture_nlpsuite_does_not_convert_is_refused_before_its_tokenizer_is_read",
    ),
    hf_case("MF08", {"hidden_size": 10_000_000}, "hidden"),
    hf_case("MF09", {"num_hidden_layers": 1_000_000_000}, "layers"),
    Case(
        "MF10",
        "one byte flipped in fp32/model.onnx.data: models verify, then generate",
        lambda ctx: verified(ctx, packed=False),
        "tests/test_integrity.py::test_models_verify_says_which_file_is_damaged",
        slow=True,
    ),
    Case(
        "MF11",
        "one byte flipped in the packed copy, mtime kept: models verify, then generate",
        lambda ctx: verified(ctx, packed=True),
        "tests/test_integrity.py::test_same_size_corruption_of_the_packed_copy_is_rebuilt",
        slow=True,
    ),
    Case(
        "MF12",
        'nlpsuite generate "the quick brown fox" --raw --model sec/odd72 --precision fp32|int8|int4 (hidden 72)',
        mf12,
        "tests/test_quantize.py::test_rows_that_no_block_size_divides_still_make_a_working_model",
        slow=True,
    ),
    Case(
        "MF13",
        "generate Hi --precision fp16 on CPU; --precision int3",
        lambda ctx: (lambda a, b: (a[0] and b[0], f"{a[1]}; {b[1]}"))(
            refused(ctx.sh("nlpsuite generate Hi --precision fp16"), "fp16"),
            refused(ctx.sh("nlpsuite generate Hi --precision int3"), "unknown precision"),
        ),
        "tests/test_fp16.py::test_fp16_is_refused_on_the_cpu_in_one_line_before_any_conversion",
    ),
]

# MF09's other fields, as the review tried them
CASES.insert(9, hf_case("MF09b", {"max_position_embeddings": 2**40}, "position"))
CASES.insert(10, hf_case("MF09c", {"hidden_size": -64, "num_attention_heads": 0}, "hidden"))
