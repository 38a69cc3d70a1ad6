"""The prompt cache: the model state of prompt prefixes, kept in memory and reused by every later prompt that
starts the same way (the next turn of a chat, requests that share a system prompt, a task's instructions).

A KV cache is kept in blocks of BLOCK positions, each keyed by a hash of every token up to the block's end, so a
block stands for its whole prefix and a prompt reuses the longest run of blocks from its start. A recurrent
state has mixed every token in and cannot be cut into positions: whole-prefix snapshots are kept at block
boundaries instead, and a prompt resumes from the longest one it starts with. The least recently used entries
go first once the byte budget is full. Only the owner of a batch calls it, but Suites may be shared by threads:
each call holds a lock.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict

import numpy as np

from .backbone import Backbone, State

BLOCK = 16  # positions per block: a prompt reuses whole blocks only
ENTRY_OVERHEAD = 256  # bytes an entry costs besides its arrays (key, dict, array headers), roughly
DEFAULT_SHARE = 8  # by default the cache may take this fraction of the memory available at start...
DEFAULT_MAX_MB = 1024  # ...but no more than this
DEFAULT_MIN_MB = 64


def default_budget_mb() -> int:
    """The default byte budget, in MiB: an eighth of the memory available now, 64 MiB to 1 GiB."""
    available = _available_bytes()
    if available is None:
        return 256
    return int(min(DEFAULT_MAX_MB, max(DEFAULT_MIN_MB, available / DEFAULT_SHARE / 2**20)))


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class PromptCache:
    """Prefix states of one backbone, within ``budget_bytes``."""

    def __init__(self, backbone: Backbone, budget_bytes: int, block: int = BLOCK) -> None:
        self.backbone = backbone
        self.budget = budget_bytes
        self.block = block
        self.blocks = backbone.can_rewind  # else whole-prefix snapshots
        self._entries: OrderedDict[bytes, tuple[State, int]] = OrderedDict()  # key -> (arrays, bytes)
        self.bytes = 0
        self._lock = threading.Lock()

    @property
    def entries(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def keys(self, tokens: list[int]) -> list[bytes]:
        """One key per whole block of ``tokens``: a hash of every token up to that block's end."""
        ids = np.asarray(tokens, np.int64)
        out, digest = [], b""
        for end in range(self.block, len(ids) + 1, self.block):
            digest = hashlib.blake2b(digest + ids[end - self.block : end].tobytes(), digest_size=16).digest()
            out.append(digest)
        return out

    def match(self, keys: list[bytes], held: int, limit: int) -> int:
        """How many leading tokens of the prompt with ``keys`` the cache could give, at most ``limit``; ``held``
        (the tokens whose state the row holds already, a whole number of blocks) when it has nothing more."""
        with self._lock:
            return self._match(keys, held, limit)

    def restore(self, keys: list[bytes], held: int, limit: int) -> tuple[int, State | None]:
        """(tokens covered, state) from the cache for a row holding ``held`` tokens: for a KV cache the positions
        from ``held`` on (batch of one) to append to the row's own, for a recurrent state the snapshot that
        replaces it; (``held``, None) when the cache has nothing more."""
        with self._lock:
            end = self._match(keys, held, limit)
            if end <= held:
                return held, None
            first, last = held // self.block, end // self.block
            self._touch(keys[first:last] if self.blocks else keys[last - 1 : last])
            if not self.blocks:
                return end, self._entries[keys[last - 1]][0]
            parts = [self._entries[key][0] for key in keys[first:last]]
        return end, self.backbone.concat_positions(parts)

    def store(self, tokens: list[int], state: State, row: int, columns: np.ndarray) -> None:
        """Keep the blocks of ``tokens`` not kept yet (a recurrent state: a snapshot at the last token, when that
        ends a block), taken from batch row ``row`` of ``state``, whose past positions ``columns`` hold them."""
        keys = self.keys(tokens[: len(columns)])
        if not keys:
            return
        if not self.blocks:
            if len(columns) % self.block == 0:
                with self._lock:
                    known = keys[-1] in self._entries
                if not known:
                    self._add(keys[-1], self.backbone.row_state(state, row))
            return
        with self._lock:
            missing = [i for i, key in enumerate(keys) if key not in self._entries]
        for i in reversed(missing):  # a chain's first blocks last, so that a full budget drops its end instead
            span = columns[i * self.block : (i + 1) * self.block]
            self._add(keys[i], self.backbone.row_state(state, row, span))
        with self._lock:
            self._touch(keys)

    def _match(self, keys: list[bytes], held: int, limit: int) -> int:
        most = min(len(keys), limit // self.block)
        if self.blocks:
            n = held // self.block
            while n < most and keys[n] in self._entries:
                n += 1
            return max(held, n * self.block)
        for n in range(most, held // self.block, -1):
            if keys[n - 1] in self._entries:
                return n * self.block
        return held

    def _touch(self, keys: list[bytes]) -> None:
        """Most recent last; a prefix's first blocks last of all, so eviction takes chains from their ends."""
        for key in reversed(keys):
            if key in self._entries:
                self._entries.move_to_end(key)

    def _add(self, key: bytes, arrays: State) -> None:
        size = sum(a.nbytes for a in arrays.values()) + ENTRY_OVERHEAD
        if size > self.budget:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (arrays, size)
            self.bytes += size
            while self.bytes > self.budget:
                _, (_, freed) = self._entries.popitem(last=False)
                self.bytes -= freed
