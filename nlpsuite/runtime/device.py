"""Pick ONNX Runtime execution providers and say, in one line, what really runs and why."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
from dataclasses import dataclass

from ..errors import DeviceError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class DevicePlan:
    requested: str
    providers: list[str]
    note: str  # what runs and why; empty when nothing needs saying


def quiet_onnxruntime():
    """Import onnxruntime with its telemetry off and its own logging limited to fatal errors."""
    # ONNX Runtime 1.31 keeps a device id and queued telemetry under ~/.cache/Microsoft, outside the
    # user's nlpsuite dirs, from the moment it is imported; only this variable, set before the import,
    # stops it. disable_telemetry_events() covers a process that imported onnxruntime before us.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    ort.disable_telemetry_events()
    ort.set_default_logger_severity(4)
    return ort


def check_precision(precision: str, providers: list[str]) -> None:
    """Refuse fp16 weights where only the CPU runs them: ONNX Runtime's CPU kernels run an fp16 graph, but
    slower than fp32 (see the README), so int8 or int4 is the small model for a CPU."""
    if precision == "fp16" and CUDA not in providers:
        raise DeviceError(
            "--precision fp16 is for a CUDA GPU and CUDA is not usable here; "
            "on the CPU use --precision int8 or int4 (smaller and faster) or fp32"
        )


def cuda_driver_problem() -> str | None:
    """Why CUDA cannot work on this machine, or None if a driver is present."""
    try:
        ctypes.CDLL("nvcuda.dll" if os.name == "nt" else "libcuda.so.1")
    except OSError:
        return "no NVIDIA driver found (libcuda could not be loaded)"
    return None


def plan(requested: str) -> DevicePlan:
    if requested not in DEVICES:
        raise DeviceError(f"unknown device {requested!r}: choose one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return DevicePlan(requested, [CPU], "")
    ort = quiet_onnxruntime()
    problem = None
    if CUDA not in ort.get_available_providers():
        problem = "this onnxruntime build has no CUDA support (install onnxruntime-gpu)"
    else:
        problem = cuda_driver_problem()
    if problem:
        if requested == "cuda":
            raise DeviceError(f"--device cuda is not usable: {problem}")
        return DevicePlan(requested, [CPU], f"running on CPU: {problem}")
    if hasattr(ort, "preload_dlls"):
        # Picks up CUDA/cuDNN from the nvidia-* pip packages. It prints its own failures; ours is the one
        # line that check_session gives if the session then falls back to the CPU.
        with (
            contextlib.suppress(Exception),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            ort.preload_dlls()
    return DevicePlan(requested, [CUDA, CPU], "")


def check_session(device_plan: DevicePlan, session) -> tuple[str, str, bool]:
    """(device that really runs, note, whether to warn) once the session exists.

    Only a surprising fallback warns: a GPU driver is present but CUDA still cannot run. A machine
    without a GPU running on its CPU is normal; `nlpsuite doctor` says why all the same.
    """
    active = session.get_providers()
    if device_plan.providers[0] == CUDA and (not active or active[0] != CUDA):
        why = (
            "ONNX Runtime could not load the CUDA runtime, cuBLAS or cuDNN libraries its GPU build needs "
            "(pip install 'nlpsuite[cuda]' brings them)"
        )
        if device_plan.requested == "cuda":
            raise DeviceError(f"--device cuda is not usable: {why}")
        return "cpu", f"running on CPU: {why}", True
    return ("cuda" if active and active[0] == CUDA else "cpu"), device_plan.note, False


def probe_cuda(ort) -> dict:
    """Create a one-node session on CUDA to learn whether it really runs (not just whether it is listed)."""
    from onnx import helper

    from ..convert.graph import F32, GraphWriter, finish

    g = GraphWriter()
    g.named("Identity", ["x"], "y")
    io = [helper.make_tensor_value_info(name, F32, [1]) for name in ("x", "y")]
    model = finish(g, "probe", io[:1], io[1:])
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=[CUDA, CPU])
    active = session.get_providers()
    if active[0] != CUDA:
        why = "ONNX Runtime could not load its CUDA libraries (pip install 'nlpsuite[cuda]' brings them)"
        return {"device": "cpu", "device_note": f"running on CPU: {why}"}
    return {"providers_active": active}
