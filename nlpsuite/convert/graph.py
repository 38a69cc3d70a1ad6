"""ONNX graph writing shared by every backbone, converted or trained: the node writer and the pieces of
the backbone contract (inputs and outputs, KV-cache I/O and state spec, causal attention bias, logits
of the last positions). Needs onnx and numpy only.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..artefacts import io_names

OPSET = 18
IR_VERSION = 10
MASKED = -1e30  # additive bias for masked keys; finite so a fully padded row stays NaN-free
F32, I64 = TensorProto.FLOAT, TensorProto.INT64
END = 2**62  # a Slice end past any real length


EXTERNAL_MIN = 1024  # initializers this big or bigger live in the weights file, as onnx.save would put them
ALIGN_MIN, ALIGN = 1 << 20, 1 << 16  # big tensors start on a 64 KiB boundary (onnx's default), so they can be mapped


class ExternalWeights:
    """Streams initializers into one external-data file as they are made: the graph holds only references,
    so a converted model is never held in memory as a whole."""

    def __init__(self, path) -> None:
        self.location = path.name
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close(), after the last tensor

    def add(self, name: str, array: np.ndarray) -> onnx.TensorProto:
        array = np.ascontiguousarray(array)
        offset = self._fh.tell()
        if array.nbytes >= ALIGN_MIN and offset % ALIGN:
            self._fh.write(b"\0" * (ALIGN - offset % ALIGN))
            offset = self._fh.tell()
        self._fh.write(array.data if array.nbytes else b"")
        return self.reference(name, array.dtype, array.shape, offset, array.nbytes)

    def reference(self, name: str, dtype, shape, offset: int, length: int) -> onnx.TensorProto:
        """A tensor whose bytes are already in the file (one stored tensor may be read under two shapes)."""
        tensor = onnx.TensorProto()
        tensor.name = name
        tensor.data_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        tensor.dims.extend(int(d) for d in shape)
        for key, value in (("location", self.location), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        tensor.data_location = onnx.TensorProto.EXTERNAL
        return tensor

    def close(self) -> None:
        self._fh.close()


class GraphWriter:
    """Appends nodes and initializers with unique names."""

    def __init__(self, first: int = 0, weights: ExternalWeights | None = None) -> None:
        """``first``: where the name counter starts, so a subgraph's names differ from its parent's;
        ``weights``: where big initializers are written as they come (else they stay in the graph)."""
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.weights = weights
        self._count = first

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs):
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def named(self, op_type: str, inputs: list[str], output: str, **attrs) -> None:
        """A node whose one output has a fixed name (a graph output or a subgraph's)."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=self.fresh(op_type), **attrs))

    def const(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        if self.weights is not None and array.nbytes >= EXTERNAL_MIN:
            self.initializers.append(self.weights.add(name, array))
        else:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def alias(self, name: str, shape: tuple[int, ...], hint: str) -> str:
        """Another initializer with the same bytes as ``name`` under another shape (one copy in the weights file)."""
        source = next(t for t in self.initializers if t.name == name)
        alias = self.fresh(hint)
        if source.data_location == TensorProto.EXTERNAL:
            where = {e.key: e.value for e in source.external_data}
            dtype = helper.tensor_dtype_to_np_dtype(source.data_type)
            tensor = self.weights.reference(alias, dtype, shape, int(where["offset"]), int(where["length"]))
        else:
            tensor = numpy_helper.from_array(numpy_helper.to_array(source).reshape(shape), alias)
        self.initializers.append(tensor)
        return alias

    def ints(self, values: list[int], hint: str = "shape") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint)


def contract_io(vocab: int, hidden: int) -> tuple[list, list]:
    """The inputs and outputs every backbone has, before its state."""
    inputs = [
        helper.make_tensor_value_info("input_ids", I64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", I64, ["batch", "total"]),
        helper.make_tensor_value_info("position_ids", I64, ["batch", "seq"]),
        helper.make_tensor_value_info("num_logits_to_keep", I64, []),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", F32, ["batch", "kept", vocab]),
        helper.make_tensor_value_info("last_hidden_state", F32, ["batch", "seq", hidden]),
    ]
    return inputs, outputs


def kv_cache_io(
    inputs: list, outputs: list, layers: int, kv_heads: int, head_dim: int, elem: int = F32
) -> list[tuple[str, ...]]:
    """Append each layer's past/present key and value (``elem``: their ONNX type); returns their names per layer
    (artefacts.io_names)."""
    names = io_names(layers)
    for past_k, past_v, pres_k, pres_v in names:
        for name in (past_k, past_v):
            inputs.append(helper.make_tensor_value_info(name, elem, ["batch", kv_heads, "past", head_dim]))
        for name in (pres_k, pres_v):
            outputs.append(helper.make_tensor_value_info(name, elem, ["batch", kv_heads, "total", head_dim]))
    return names


def kv_state_spec(layers: int, kv_heads: int, head_dim: int, dtype: str = "float32") -> list[dict]:
    """The manifest's state entries of a KV cache: batch axis first, growing along axis 2; ``dtype`` (numpy's
    name) is written only when it is not float32, so older manifests read the same."""
    extra = {} if dtype == "float32" else {"dtype": dtype}
    return [
        {"input": past, "output": present, "shape": [None, kv_heads, 0, head_dim], "grow_axis": 2, **extra}
        for (pk, pv, ok, ov) in io_names(layers)
        for past, present in ((pk, ok), (pv, ov))
    ]


def attention_bias(g: GraphWriter, window: int | None = None) -> str:
    """Additive bias [B,1,S,T]: causal over absolute positions (the cache comes first) plus the padding mask;
    ``window``: keys fewer than this many positions behind the query only (sliding-window attention)."""
    zero, one = g.ints([0], "zero"), g.ints([1], "one")
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), one], "seq_len", axis=0)
    total = g.op("Gather", [g.op("Shape", ["attention_mask"]), one], "total_len", axis=0)
    past_len = g.op("Sub", [total, seq_len], "past_len")
    scalar = g.ints([], "scalar_shape")
    step = g.const(np.array(1, np.int64), "step")
    total_scalar = g.op("Reshape", [total, scalar], "total_scalar")
    q_pos = g.op("Range", [g.op("Reshape", [past_len, scalar]), total_scalar, step], "q_pos")
    k_pos = g.op("Range", [g.const(np.array(0, np.int64), "start"), total_scalar, step], "k_pos")
    causal = g.op("LessOrEqual", [g.op("Unsqueeze", [k_pos, zero]), g.op("Unsqueeze", [q_pos, one])], "causal")
    keep = g.op("Cast", ["attention_mask"], "keep", to=TensorProto.BOOL)
    keep = g.op("Unsqueeze", [keep, g.ints([1, 2])], "keep_4d")
    if window is not None:  # distance counted in unmasked tokens, so padding anywhere in the cache does not count
        k_seen = g.op("CumSum", ["attention_mask", g.const(np.array(1, np.int64), "axis")], "k_seen")  # [B,T]
        q_seen = g.op("Slice", [k_seen, g.op("Neg", [seq_len]), g.ints([END]), one], "q_seen")  # [B,S]
        dist = g.op("Sub", [g.op("Unsqueeze", [q_seen, g.ints([2])]), g.op("Unsqueeze", [k_seen, one])], "dist")
        near = g.op("Less", [dist, g.const(np.array(window, np.int64), "window")], "in_window")
        causal = g.op("And", [causal, g.op("Unsqueeze", [near, one])], "causal_window")  # [B,1,S,T]
    allowed = g.op("And", [causal, keep], "allowed")
    return g.op(
        "Where",
        [allowed, g.const(np.array(0.0, np.float32), "open"), g.const(np.array(MASKED, np.float32), "closed")],
        "attn_bias",
    )


def current_mask(g: GraphWriter, seq: str) -> str:
    """The attention-mask entries [B,S] of this call's positions (``seq``: their count, shape [1])."""
    return g.op("Slice", ["attention_mask", g.op("Neg", [seq]), g.ints([END]), g.ints([1])], "current_mask")


def last_positions(g: GraphWriter, t: str, output: str | None = None) -> str:
    """The last ``num_logits_to_keep`` positions (axis 1) of ``t``; ``output`` names it as a graph output."""
    one = g.ints([1], "one")
    start = g.op("Neg", [g.op("Reshape", ["num_logits_to_keep", one])], "keep_start")
    inputs = [t, start, g.ints([END], "end"), one]
    if output is None:
        return g.op("Slice", inputs, "kept_hidden")
    g.named("Slice", inputs, output)
    return output


def logits(g: GraphWriter, final: str, head, hidden: int, vocab: int, bias: str | None = None) -> None:
    """Write ``last_hidden_state`` (= ``final`` [B,S,H]) and ``logits`` = head projection of its last positions.

    ``head``: a [vocab, hidden] initializer's name, or a function that writes the projection of [rows, hidden]."""
    g.named("Identity", [final], "last_hidden_state")
    kept = last_positions(g, final)
    flat = g.op("Reshape", [kept, g.ints([-1, hidden])], "kept_flat")
    if callable(head):
        scores = head(flat)
    else:
        scores = g.op("Gemm", [flat, head] + ([bias] if bias else []), "logits_flat", transB=1)
    zero = g.ints([0], "zero")
    lead = g.op("Slice", [g.op("Shape", [kept]), zero, g.ints([2]), zero], "lead_dims")
    out_shape = g.op("Concat", [lead, g.ints([vocab])], "logits_shape", axis=0)
    g.named("Reshape", [scores, out_shape], "logits")


def finish(g: GraphWriter, name: str, inputs: list, outputs: list, extra_opsets: dict | None = None) -> onnx.ModelProto:
    """The model at the opset and IR version ONNX Runtime reads; ``extra_opsets``: domain -> version."""
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="nlpsuite")
    model.ir_version = IR_VERSION  # what ONNX Runtime reads, not what the onnx package writes
    return model
