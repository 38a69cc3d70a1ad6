"""The filesystem around the cache: nothing written outside it, disk full and read-only caches said in one line."""

from __future__ import annotations

import os
import subprocess
import sys

from nlpsuite.catalog import Catalog
from nlpsuite.loader import ensure_model


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
