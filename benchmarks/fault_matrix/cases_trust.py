"""What nlpsuite must not trust: plugins, model folders, index, calibration and head files (P, S, X, L)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from . import Case, Ctx, Verdict, answered, refused

TESTS = Path(__file__).resolve().parents[2] / "tests"


def tiny_folder(ctx: Ctx, name: str) -> Path:
    """A tiny random Llama folder, built as the tests build it (tests/conftest.py)."""
    folder = ctx.root / "sec" / name
    base = ctx.root / "sec" / "tiny-base"
    if not (base / "config.json").exists():
        sys.path.insert(0, str(TESTS))
        from conftest import build_tiny_llama

        build_tiny_llama(base)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder)
    return folder


def with_template(ctx: Ctx, name: str, template: str) -> Path:
    folder = tiny_folder(ctx, name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    return folder


def template_case(id: str, template: str, says: str, marker: str = "") -> Case:
    def run(ctx: Ctx) -> Verdict:
        folder = with_template(ctx, id.lower(), template.replace("MARKER", str(ctx.root / marker)))
        ok, said = refused(ctx.sh(f"nlpsuite generate Hello --model {folder} --max-tokens 2", timeout=300), says)
        ran = bool(marker) and (ctx.root / marker).exists()
        return ok and not ran, said + ("; the payload RAN" if ran else "")

    return Case(
        id,
        f"a tiny model folder whose chat template is {template[:70]!r}; generate Hello",
        run,
        "tests/test_chat_template.py::test_templates_that_would_exhaust_the_machine_are_refused"
        if id in ("S05", "S06")
        else "tests/test_chat_template.py::test_cli_refuses_such_a_template_in_one_line",
        slow=True,
    )


def s07(ctx: Ctx) -> Verdict:
    import pickle

    folder = tiny_folder(ctx, "s07")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (ctx.root / "PWNED_PICKLE", "ran"))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    ok, said = refused(ctx.sh(f"nlpsuite generate Hello --model {folder}"), ".safetensors")
    ran = (ctx.root / "PWNED_PICKLE").exists()
    return ok and not ran, said + ("; the pickle RAN" if ran else "")


def remote_code(ctx: Ctx, model_type: str, typed: bool) -> Verdict:
    sys.path.insert(0, str(TESTS))
    from test_remote_code import custom_code_folder

    shutil.rmtree(ctx.root / "sec" / f"custom-{model_type}", ignore_errors=True)
    folder, marker = custom_code_folder(tiny_folder(ctx, f"rc-{model_type}"), ctx.root / "sec", model_type)
    marker.unlink(missing_ok=True)
    cmd = f"nlpsuite generate Hello --model {folder} --max-tokens 2"
    if typed:  # an interactive terminal where the user types y at any prompt
        cmd = f"(sleep 8; echo y; sleep 8; echo y; sleep 20) | script -qec '{cmd}' /dev/null"
    run = ctx.sh(cmd, timeout=300)
    ran = marker.exists()
    if model_type == "llama":
        ok, said = answered(run) if not typed else (run.rc == 0, f"exit {run.rc}")
    else:
        ok, said = (
            run.rc == 1 and "custom code" in run.out + run.err and "Traceback" not in run.out + run.err,
            f"exit {run.rc}, {(run.err or run.out).strip().splitlines()[-1][:150]!r}",
        )
    return ok and not ran, said + ("; its Python RAN" if ran else "; no code ran")


SECURITY = [
    template_case("S01", "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}", "unsafe", "PWNED"),
    template_case("S02", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    template_case("S03", "{{ self.__init__.__globals__['__builtins__'] }}", "unsafe", "PWNED2"),
    template_case("S04", "{{ x.__mro__ }}", "chat template"),
    template_case("S05", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps"),
    template_case("S06", "{{ 'x' * 2000000000 }}", "characters"),
    Case(
        "S07",
        "a tiny model folder holding only a pickled pytorch_model.bin (payload writes PWNED_PICKLE)",
        s07,
        "tests/test_remote_code.py::test_a_hub_download_never_fetches_python_files",
        slow=True,
    ),
    Case(
        "S08",
        "model_type 'evil' with auto_map, then model_type llama with auto_map: generate",
        lambda ctx: _both(ctx, typed=False),
        "tests/test_remote_code.py::test_a_folder_that_needs_its_own_code_is_refused_before_transformers",
        slow=True,
    ),
    Case(
        "S09",
        "the same in an interactive terminal (script -qc), 'y' typed at any prompt",
        lambda ctx: _both(ctx, typed=True),
        "tests/test_remote_code.py::test_a_folder_that_needs_its_own_code_is_refused_before_transformers",
        slow=True,
    ),
]


def _both(ctx: Ctx, typed: bool) -> Verdict:
    (ok1, said1), (ok2, said2) = remote_code(ctx, "evil", typed), remote_code(ctx, "llama", typed)
    return ok1 and ok2, f"custom: {said1}; llama+auto_map: {said2}"


def tampered_index(ctx: Ctx, name: str, tamper) -> Verdict:
    """A copy of the 'base' index, tampered; search must refuse it in one line."""
    folder = ctx.home / "indexes" / name
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ctx.home / "indexes" / "base", folder)
    try:
        gen = next(folder.glob("gen-*"))
        tamper(folder, gen)
        return refused(ctx.sh(f"nlpsuite search {name} river"), "damaged")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def object_npy(folder, gen):
    np.save(gen / "embeddings.npy", np.array([object()], dtype=object), allow_pickle=True)


def retarget(folder, gen):
    manifest = json.loads((folder / "index.json").read_text())
    manifest["data"] = "../base"
    (folder / "index.json").write_text(json.dumps(manifest))


def huge_npy(folder, gen):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 576), }"
    (gen / "embeddings.npy").write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64
    )


def no_source(folder, gen):
    passages = json.loads((gen / "passages.json").read_text())
    (gen / "passages.json").write_text(json.dumps([{"text": "x"} for _ in passages]))


def x07(ctx: Ctx) -> Verdict:
    copy = ctx.home / "indexes" / "x07copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ctx.home / "indexes" / "base", copy)
    try:
        listed = ctx.sh("nlpsuite index list --json")
        names = [e.get("name") for e in json.loads(listed.out)["indexes"]] if listed.rc == 0 else []
        found = ctx.sh("nlpsuite search x07copy river --json")
        ok = "x07copy" in names and found.rc == 0
        return ok, f"index list names {names}; search of the copy exit {found.rc}"
    finally:
        shutil.rmtree(copy, ignore_errors=True)


X = "tests/test_retrieval.py::test_a_tampered_index_is_refused_in_one_line"
INDEXES = [
    Case(
        "X01",
        "an index copy whose embeddings.npy holds object values; search",
        lambda ctx: tampered_index(ctx, "x01", object_npy),
        X,
    ),
    Case(
        "X02",
        "an index copy whose passages.json is [1,2,3]; search",
        lambda ctx: tampered_index(ctx, "x02", lambda f, g: (g / "passages.json").write_text("[1,2,3]")),
        X,
    ),
    Case(
        "X03",
        "an index copy whose manifest names a data folder that is not one of its generations; search",
        lambda ctx: tampered_index(ctx, "x03", retarget),
        X,
    ),
    Case(
        "X04",
        "an index copy whose embeddings.npy has shape (n, 10); search",
        lambda ctx: tampered_index(ctx, "x04", lambda f, g: np.save(g / "embeddings.npy", np.zeros((21, 10), "f4"))),
        X,
    ),
    Case(
        "X05",
        "an index copy whose embeddings.npy header claims (10**11, 576); search",
        lambda ctx: tampered_index(ctx, "x05", huge_npy),
        X,
    ),
    Case(
        "X06",
        "an index copy whose passages lack a source; search",
        lambda ctx: tampered_index(ctx, "x06", no_source),
        X,
    ),
    Case(
        "X07",
        "cp -a indexes/base indexes/x07copy; index list; search x07copy",
        x07,
        "tests/test_retrieval.py::test_index_list_names_folders_and_checks_counts",
    ),
]


def calibration_case(ctx: Ctx, content: str | bytes, says: str) -> Verdict:
    where = ctx.sh(
        'python -c "from nlpsuite.eval.calibration import path, task_key; '
        "print(path('smollm2-135m-instruct', 'fp32', task_key('sentiment', ['positive', 'negative', 'neutral'])))\""
    ).out.strip()
    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        return refused(ctx.sh("nlpsuite sentiment 'A gorgeous film.' --json"), says)
    finally:
        path.unlink(missing_ok=True)


CALIBRATION = '{"labels": ["positive", "negative", "neutral"], "bias": %s, "temperature": %s}'


def l04(ctx: Ctx) -> Verdict:
    csv = ctx.data / "tickets.csv"
    csv.write_text(
        "text,label\n"
        + "".join(
            f"My invoice {i} is wrong,billing\nI cannot log in ({i}),login\nWhere is my parcel {i},shipping\n"
            for i in range(6)
        )
    )
    ctx.sh(f"nlpsuite heads train tickets {csv}", timeout=600)
    head = next(ctx.home.rglob("heads/**/tickets"))
    results = []
    for name, damage in (
        ("h1", lambda d: _npz_wrong_mean(d)),
        ("h2", lambda d: (d / "probe.json").write_text("[1,2]")),
        ("h3", lambda d: _huge_bias(d)),
    ):
        copy = head.parent / name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(head, copy)
        try:
            damage(copy)
            results.append(refused(ctx.sh(f"nlpsuite classify 'My invoice is wrong' --head {name}"), "damaged"))
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    return all(ok for ok, _ in results), "; ".join(said for _, said in results)


def _npz_wrong_mean(folder: Path) -> None:
    weights = dict(np.load(folder / "weights.npz"))
    weights["mean"] = np.zeros(10, "f4")
    np.savez(folder / "weights.npz", **weights)


def _huge_bias(folder: Path) -> None:
    weights = dict(np.load(folder / "weights.npz"))
    key = "bias" if "bias" in weights else sorted(weights)[0]
    weights[key] = np.full_like(weights[key], 1e30)
    np.savez(folder / "weights.npz", **weights)


CAL = "tests/test_calibration.py::test_a_tampered_calibration_file_is_refused_in_one_line"
FILES = [
    Case(
        "L01",
        "a calibration file for sentiment with temperature 0; sentiment",
        lambda ctx: calibration_case(ctx, CALIBRATION % ("[0, 0, 0]", "0"), "temperature"),
        CAL,
    ),
    Case(
        "L02",
        "a calibration file whose bias is a string / the wrong shape; sentiment",
        lambda ctx: calibration_case(ctx, CALIBRATION % ('"abc"', "1"), "bias"),
        CAL,
    ),
    Case(
        "L03",
        "a calibration file that is not UTF-8 JSON; sentiment",
        lambda ctx: calibration_case(ctx, b'{"labels": "\xff\xfe"}', "damaged"),
        CAL,
    ),
    Case(
        "L04",
        "probe head copies: wrong mean shape (h1), probe.json [1,2] (h2), bias 1e30 (h3); classify --head",
        l04,
        "tests/test_probe_files.py::test_a_tampered_probe_is_refused_in_one_line",
        slow=True,
    ),
]


CASES = SECURITY + INDEXES + FILES
