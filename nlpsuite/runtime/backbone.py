"""One ONNX Runtime session over a converted backbone, driven only through the backbone contract."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artefacts import MODEL_FILE
from ..errors import NlpsuiteError
from ..modelstore.store import damaged, read_manifest
from . import prepacked
from .device import CPU, DevicePlan, check_precision, check_session, plan, quiet_onnxruntime

State = dict[str, np.ndarray]


class NotWritten(Exception):
    """A load that reads only met a model whose load writes (its pre-packed copy is missing or unusable)."""


@dataclass
class Step:
    """What one forward pass returns."""

    logits: np.ndarray  # [batch, kept positions, vocab]
    hidden: np.ndarray | None  # [batch, seq, hidden]
    state: State  # keyed by the state *input* names, ready to feed back


def session_options(ort):
    """Fresh session options with nlpsuite's settings."""
    options = ort.SessionOptions()
    options.log_severity_level = 4
    # ONNX Runtime's memory-reuse planner is superlinear in graph size: 1.1 s of a 30-layer model's
    # 1.9 s load. Without it decode speed was the same side by side (38.2 vs 38.5 tok/s) and peak RSS
    # did not move. (Parallel prepacking was tried too: 0.2 s faster, +365 MB peak RSS, so no.)
    options.enable_mem_reuse = False
    threads = os.environ.get("NLPSUITE_THREADS", "")
    if threads:
        if not threads.isdigit():
            raise NlpsuiteError(f"NLPSUITE_THREADS must be a whole number, not {threads!r}")
        options.intra_op_num_threads = int(threads)
    return options


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, attention mask, position ids) of a left-padded batch: every row's last token is in the last column."""
    width = max(map(len, sequences))
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = seq
        mask[row, width - len(seq) :] = 1
    return ids, mask, np.maximum(mask.cumsum(axis=1) - 1, 0)


def on_host(state: dict) -> dict:
    """``state`` with any value kept on the device (see Backbone.forward's ``device_state``) copied into numpy."""
    return {name: v if isinstance(v, np.ndarray) else v.numpy() for name, v in state.items()}


class Backbone:
    """A converted model: session, manifest and the recurrent state it threads between steps."""

    def __init__(
        self, folder: Path, device: str | DevicePlan = "auto", packed_copy: bool = False, write: bool = True
    ) -> None:
        """``packed_copy``: on CPU, keep a pre-packed copy of the weights beside the model (see prepacked.py).
        ``write=False``: a load that reads only (a head start, runtime/preload.py): it neither writes nor removes a
        pre-packed copy, and raises NotWritten where the load would have to write one."""
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        if manifest is None:
            raise NlpsuiteError(f"{self.folder} holds no complete converted model (manifest missing or stale)")
        self.manifest = manifest
        self.name = manifest.get("name") or str(self.folder)
        if bad := damaged(self.folder, manifest):  # before a session, or a packed copy, is built from it
            raise NlpsuiteError(
                f"{self.folder} is damaged (content differs from the sha256 in its manifest): {', '.join(bad)}; "
                f"remove it with 'nlpsuite models rm {self.name}' and the next use converts it again"
            )
        self.precision = manifest.get("precision", "fp32")
        ort = quiet_onnxruntime()
        device_plan = device if isinstance(device, DevicePlan) else plan(device)
        check_precision(self.precision, device_plan.providers)
        options = session_options(ort)
        started = time.perf_counter()
        self.session = self._open(ort, options, device_plan.providers, packed_copy, write)
        self.load_s = time.perf_counter() - started
        self.device, self.device_note, self.device_warning = check_session(device_plan, self.session)
        # On CUDA the decoding loop's state stays on the GPU between steps (I/O binding) instead of a round trip
        # through numpy per step. Unverified on a GPU so far (none here); tests run the same path on the CPU.
        self.bind_state = self.device == "cuda"
        check_precision(self.precision, self.session.get_providers())  # CUDA may have failed to load after all
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.state_spec = manifest["state"]
        self._to_input = {s["output"]: s["input"] for s in self.state_spec}
        self._batch_axis = {s["input"]: s["shape"].index(None) for s in self.state_spec}
        self._grow_axis = {s["input"]: s.get("grow_axis") for s in self.state_spec}

    def _open(self, ort, options, providers: list[str], packed_copy: bool, write: bool):
        portable = self.folder / MODEL_FILE
        # fp32 only (prepacked.policy): ONNX Runtime's saved pre-packed MatMulNBits (int8) weights load wrong
        # (logits garbled on every load after the first; tests/test_prepacked.py), and int8 packing is quick anyway.
        usable = packed_copy and providers == [CPU]
        if usable and not prepacked.policy(self.folder, self.precision)[0]:  # none kept here: free an old one
            if write:
                prepacked.discard_all(self.folder)
            usable = False
        key = prepacked.machine_key(ort) if usable else None
        packed = prepacked.find(self.folder, key, tidy=write) if key else None
        if packed:
            packed_options = session_options(ort)
            packed_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done already
            try:
                return ort.InferenceSession(str(packed), packed_options, providers=providers)
            except Exception:  # noqa: BLE001 - a copy that does not load is rebuilt from the portable model
                if not write:
                    raise NotWritten(f"{self.folder}: its pre-packed copy does not load") from None
                prepacked.discard(self.folder, key)
        if key and not write:
            raise NotWritten(f"{self.folder}: no pre-packed copy yet")
        partial = prepacked.request(options, ort, self.folder) if key else None
        if partial:
            try:
                session = ort.InferenceSession(str(portable), options, providers=providers)
            except Exception:  # noqa: BLE001 - e.g. no room for the optional copy: load without writing it
                shutil.rmtree(partial, ignore_errors=True)
                options = session_options(ort)
            else:
                prepacked.publish(partial, self.folder, key)
                return session
        try:
            return ort.InferenceSession(str(portable), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail/RuntimeError types
            raise NlpsuiteError(f"ONNX Runtime could not load {self.folder}: {str(exc).splitlines()[0]}") from None

    @property
    def context_length(self) -> int:
        return int(self.manifest["architecture"]["context_length"])

    @property
    def hidden_size(self) -> int:
        return int(self.manifest["architecture"]["hidden_size"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["architecture"]["vocab_size"])

    def empty_state(self, batch: int) -> State:
        state = {}
        for spec in self.state_spec:
            shape = [batch if d is None else d for d in spec["shape"]]
            state[spec["input"]] = np.zeros(shape, dtype=spec.get("dtype", "float32"))
        return state

    # The state's batch axis differs by architecture (first for a KV cache, second for an RNN's
    # [layers, batch, hidden]): these are the only places that know where it is.

    def concat_states(self, states: list[State]) -> State:
        """One state holding the rows of ``states``, in order."""
        return {name: np.concatenate([s[name] for s in states], axis=self._batch_axis[name]) for name in states[0]}

    def select_rows(self, state: State, rows: list[int]) -> State:
        """The state of the batch rows ``rows``, in that order."""
        return {name: np.take(value, rows, axis=self._batch_axis[name]) for name, value in state.items()}

    def widen_state(self, state: State, n: int) -> State:
        """``state`` with ``n`` empty past positions put before the old ones (for rows whose mask gains ``n``
        leading zeros); a state with no growing axis (an RNN's) is returned as it is."""
        out = {}
        for spec in self.state_spec:
            value, axis = state[spec["input"]], spec.get("grow_axis")
            if axis is None or n == 0:
                out[spec["input"]] = value
                continue
            shape = list(value.shape)
            shape[axis] = n
            out[spec["input"]] = np.concatenate([np.zeros(shape, value.dtype), value], axis=axis)
        return out

    def trim_state(self, state: State, n: int) -> State:
        """``state`` without its first ``n`` past positions (columns that are padding in every row)."""
        out = {}
        for spec in self.state_spec:
            value, axis = state[spec["input"]], spec.get("grow_axis")
            out[spec["input"]] = value if axis is None or n == 0 else np.take(value, range(n, value.shape[axis]), axis)
        return out

    def row_state(self, state: State, row: int, positions: np.ndarray | None = None) -> State:
        """A copy of batch row ``row`` of ``state`` (a batch of one), keeping only the past ``positions`` given of
        a growing state."""
        out = {}
        for spec in self.state_spec:
            name, axis = spec["input"], spec.get("grow_axis")
            value = state[name]
            index = [slice(None)] * value.ndim
            index[self._batch_axis[name]] = slice(row, row + 1)
            value = value[tuple(index)]
            out[name] = value.copy() if axis is None or positions is None else np.take(value, positions, axis=axis)
        return out

    def concat_positions(self, states: list[State]) -> State:
        """One state holding the past positions of ``states`` one after another (rows alike in each)."""
        out = {}
        for spec in self.state_spec:
            name, axis = spec["input"], spec.get("grow_axis")
            parts = [s[name] for s in states]
            out[name] = parts[-1] if axis is None else np.concatenate(parts, axis=axis)
        return out

    def repeat_state(self, state: State, n: int) -> State:
        """Each row of ``state`` repeated ``n`` times, copies side by side."""
        return {name: np.repeat(value, n, axis=self._batch_axis[name]) for name, value in state.items()}

    @property
    def can_rewind(self) -> bool:
        """Whether the state can drop its latest positions (a KV cache can; a recurrent state has mixed them in)."""
        return all(axis is not None for axis in self._grow_axis.values())

    def state_shapes(self, batch: int, length: int) -> dict[str, tuple[int, ...]]:
        """The shape of each state array after ``length`` positions of ``batch`` rows."""
        shapes = {}
        for spec in self.state_spec:
            shape = [batch if d is None else d for d in spec["shape"]]
            if spec.get("grow_axis") is not None:
                shape[spec["grow_axis"]] = length
            shapes[spec["input"]] = tuple(shape)
        return shapes

    def keep_positions(self, state: State, length: int) -> State:
        """``state`` cut back to its first ``length`` positions: what drafted tokens that were rejected added goes."""
        if not self.can_rewind:
            raise NlpsuiteError(f"{self.name}'s state cannot be rewound (it is recurrent)")
        cut = {}
        for name, value in on_host(state).items():
            index = [slice(None)] * value.ndim
            index[self._grow_axis[name]] = slice(0, length)
            cut[name] = value[tuple(index)]
        return cut

    def forward(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        position_ids: np.ndarray,
        state: State,
        num_logits: int = 1,
        want_hidden: bool = False,
        want_state: bool = True,
        device_state: bool = False,
    ) -> Step:
        """One pass. Outputs a caller won't use (hidden states, the new state) are not fetched. ``device_state``:
        where ``bind_state`` is on, the new state stays on the device (ONNX Runtime values, fed back as they are
        by the next call; keep_positions takes them too); elsewhere it is numpy as always."""
        feed = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "num_logits_to_keep": np.array(num_logits, dtype=np.int64),
            **state,
        }
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        wanted = (
            ["logits"] + (["last_hidden_state"] if want_hidden else []) + (list(self._to_input) if want_state else [])
        )
        if device_state and self.bind_state:
            values = self._run_bound(wanted, feed)
        else:
            values = dict(zip(wanted, self.session.run(wanted, feed), strict=True))  # the CPU path, as it was
        self._check_finite(values["logits"], values.get("last_hidden_state"))
        new_state = {self._to_input[name]: values[name] for name in self._to_input} if want_state else {}
        return Step(values["logits"], values.get("last_hidden_state"), new_state)

    def _run_bound(self, wanted: list[str], feed: dict) -> dict:
        """``session.run`` through I/O binding: logits and hidden states come back in numpy, the state stays
        where the session runs."""
        binding = self.session.io_binding()
        for name, value in feed.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        for name in wanted:
            binding.bind_output(name, "cpu" if name in ("logits", "last_hidden_state") else self.device)
        self.session.run_with_iobinding(binding)
        outputs = dict(zip(wanted, binding.get_outputs(), strict=True))
        return {name: v.numpy() if name in ("logits", "last_hidden_state") else v for name, v in outputs.items()}

    def _check_finite(self, *arrays: np.ndarray | None) -> None:
        """NaN or infinity out of the model would become silent garbage (empty text, NaN scores): refuse it."""
        # ~20 us for one decode step's logits (49152 floats): noise beside the forward pass that made them.
        if all(a is None or np.isfinite(a).all() for a in arrays):
            return
        raise NlpsuiteError(
            f"{self.name} gave non-finite numbers (NaN or infinity): its weights are damaged or broken; "
            f"check them with 'nlpsuite models verify {self.name}', rebuild with 'nlpsuite models rm {self.name}'"
        )
