"""Loading a converted backbone with what it needs besides (tokenizer, chat template), and a head start on it.

``load`` builds the ONNX Runtime session on a second thread while the calling thread reads the tokenizer and
compiles the chat template: ONNX Runtime releases the GIL while it builds a session, so on two cores the
tokenizer's read is hidden in the session's build.

``start`` begins the same load on a thread of its own before the caller knows for sure what it will load (the CLI
calls it from a cheap look at its arguments, before its command line is parsed), and ``take`` hands the result
over only when it is exactly what the caller would have loaded itself: the same folder holding the same conversion,
the same device plan and the same use of the pre-packed copy. A guess that turns out wrong costs the work it did,
never a different result. A head start reads only: it fetches, converts, writes and discards nothing, and gives up
where a load would have to write (a pre-packed copy not made yet).

The threads are not daemons: a process that exits while ONNX Runtime is still building a session on another thread
crashes on the way out (abort or segmentation fault), so the interpreter waits for them at exit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Loaded:
    """A backbone and what loading it prepared besides (``tokenizer``, ``chat_template``; absent if they failed:
    they are made again, and fail again with their own error, on first use)."""

    backbone: Any
    early: dict[str, Any] = field(default_factory=dict)


class Background:
    """``function()`` running on a thread of its own; ``result()`` waits for its value or raises its error."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function,), daemon=False)
        self._thread.start()

    def _run(self, function) -> None:
        try:
            self._value = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as it is
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def tokenizer(folder: Path, manifest: dict):
    from .tokenizer import Tokenizer

    return Tokenizer(folder, manifest.get("special_tokens", {}))


def chat_template(manifest: dict, tok):
    from .tokenizer import ChatTemplate

    return ChatTemplate(manifest.get("chat_template"), tok.bos_token, tok.eos_token)


def load(folder: Path, device_plan, packed: bool, write: bool = True) -> Loaded:
    """The backbone in ``folder`` (see runtime.backbone.Backbone), its tokenizer and compiled chat template."""
    from ..modelstore.store import read_manifest
    from .backbone import Backbone

    loading = Background(lambda: Backbone(folder, device_plan, packed_copy=packed, write=write))
    early: dict[str, Any] = {}
    manifest = read_manifest(folder)
    if manifest is not None:
        with contextlib.suppress(Exception):  # a broken tokenizer or template fails again, as before, on first use
            early["tokenizer"] = tokenizer(folder, manifest)
            early["chat_template"] = template = chat_template(manifest, early["tokenizer"])
            template.compile()
    return Loaded(loading.result(), early)


@dataclass
class _HeadStart:
    target: tuple  # (folder, device plan, packed): what load() was asked for
    loading: Background


_pending: _HeadStart | None = None  # the head start not taken yet
_started: Background | None = None  # the last one started, taken or not


def start(model: str | None, precision: str, device: str | None) -> bool:
    """Begin loading what ``Suite(model, device, precision)`` would load, if its conversion is already in the cache;
    whether it began. What it needs to know first (the folder, the device plan: ONNX Runtime imported) is done on
    the calling thread, the load on another. Errors are kept to themselves: the real load meets them again."""
    global _pending, _started
    target = _target(model, precision, device)
    if target is None:
        return False
    _started = Background(lambda: load(*target, write=False))
    _pending = _HeadStart(target, _started)
    return True


def busy() -> bool:
    """Whether a head start is still loading (a process that exits now has to wait for it; see the module's doc)."""
    return _started is not None and not _started.done()


def _target(model: str | None, precision: str, device: str | None) -> tuple | None:
    from .. import config
    from ..modelstore.resolve import cached_folder, resolve
    from .device import plan

    try:
        source = resolve(model)  # the built-in catalog, paths and hub ids: a plugin's model name is not guessed
        folder = cached_folder(source, precision)
        if folder is None:
            return None
        return folder, plan(device or config.default_device()), source.in_our_cache
    except Exception:  # noqa: BLE001 - a guess that fails is no head start, and no error
        return None


def take(folder: Path, device_plan, packed: bool) -> Loaded | None:
    """The head start's load if it is exactly ``load(folder, device_plan, packed)`` and succeeded, else None (a
    head start for anything else is dropped: it finishes on its own). Waits for it only when it is the one."""
    global _pending
    head, _pending = _pending, None
    if head is None:
        return None
    started_folder, started_plan, started_packed = head.target
    if (Path(started_folder).resolve(), started_plan, started_packed) != (Path(folder).resolve(), device_plan, packed):
        return None
    try:
        loaded = head.loading.result()
    except Exception:  # noqa: BLE001 - the real load meets the same problem and reports it
        return None
    return loaded if _same_conversion(folder, loaded.backbone.manifest) else None


def _same_conversion(folder: Path, manifest: dict) -> bool:
    """Whether ``folder`` still holds the conversion a head start loaded (it may have been rebuilt meanwhile)."""
    from ..modelstore.store import read_manifest

    now = read_manifest(Path(folder))
    return now is not None and now.get("created") == manifest.get("created") and now["sha256"] == manifest["sha256"]
