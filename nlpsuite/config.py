"""Where state lives and which defaults apply; environment variables override both."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"


def home() -> Path:
    """The root of nlpsuite's cache and state (``NLPSUITE_HOME`` overrides the platform dir)."""
    override = os.environ.get("NLPSUITE_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_path

    return user_cache_path("nlpsuite", appauthor=False)


def models_dir() -> Path:
    return home() / "models"


def downloads_dir() -> Path:
    return home() / "downloads"


def state_dir() -> Path:
    """Chat history and transcripts: user data, so not under the cache, which may be wiped."""
    if os.environ.get("NLPSUITE_HOME"):
        return home() / "state"
    from platformdirs import user_state_path

    return user_state_path("nlpsuite", appauthor=False)


def default_model() -> str:
    return os.environ.get("NLPSUITE_MODEL") or DEFAULT_MODEL


def default_device() -> str:
    return os.environ.get("NLPSUITE_DEVICE") or "auto"


def strict_plugins() -> bool:
    return os.environ.get("NLPSUITE_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def packed_copy() -> bool:
    """Whether fp32 models keep ONNX Runtime's pre-packed weights in a copy for this CPU (runtime/prepacked.py):
    ``NLPSUITE_PACKED_COPY=0`` saves its disk (twice the weights) for a slower start."""
    return os.environ.get("NLPSUITE_PACKED_COPY", "") not in ("0", "false", "no", "off")
