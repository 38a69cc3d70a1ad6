"""Fetch a catalog model's weights from a PyPI wheel without installing the wheel's dependencies.

Like ``spacy download``, this leans on pip, so the user's index, proxy and certificate settings
apply. Only the wheel file is downloaded (``--no-deps``); the one member we need is extracted and
checked against the sha256 pinned in the catalog.
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

from ..errors import NlpsuiteError
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
