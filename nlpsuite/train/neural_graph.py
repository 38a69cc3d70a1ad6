"""ONNX backbones of the trained networks, written node by node from their weights (numpy arrays).

Recurrent models run each layer as a Scan whose body is the torch cell; a step whose attention-mask
entry is 0 keeps the previous state, so left padding never disturbs it. The state is
``past_hidden`` (and ``past_cell`` for LSTM), shaped ``[layers, batch, hidden]``, with no growth axis.
The Transformer keeps a KV cache per layer, like the converted Llama backbones.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..convert.graph import (
    F32,
    I64,
    GraphWriter,
    attention_bias,
    contract_io,
    current_mask,
    finish,
    kv_cache_io,
    logits,
)

Weights = dict[str, np.ndarray]


def recurrent_state_names(kind: str) -> list[tuple[str, str]]:
    names = [("past_hidden", "present_hidden")]
    return names + [("past_cell", "present_cell")] if kind == "lstm" else names


def _cell_body(kind: str, layer: int, hidden: int, w_hh: str, b_hh: str | None) -> onnx.GraphProto:
    """One time step: (state..., projected input x_t, mask m_t) -> (new state..., output h_t)."""
    b = GraphWriter(first=10_000 * (layer + 1))  # names unique across the outer graph and every body
    states = ["h_prev", "c_prev"] if kind == "lstm" else ["h_prev"]
    proj = b.op("MatMul", ["h_prev", w_hh], "h_proj")
    if kind == "lstm":
        gates = b.op("Add", ["x_t", proj], "gates")
        i, f, c, o = b.op("Split", [gates], "gate", n_out=4, axis=-1, num_outputs=4)
        c_new = b.op(
            "Add",
            [
                b.op("Mul", [b.op("Sigmoid", [f]), "c_prev"]),
                b.op("Mul", [b.op("Sigmoid", [i]), b.op("Tanh", [c])]),
            ],
            "c_new",
        )
        new = [b.op("Mul", [b.op("Sigmoid", [o]), b.op("Tanh", [c_new])], "h_new"), c_new]
    elif kind == "gru":
        proj = b.op("Add", [proj, b_hh], "h_proj_b")
        xr, xz, xn = b.op("Split", ["x_t"], "x_gate", n_out=3, axis=-1, num_outputs=3)
        hr, hz, hn = b.op("Split", [proj], "h_gate", n_out=3, axis=-1, num_outputs=3)
        r = b.op("Sigmoid", [b.op("Add", [xr, hr])], "r")
        z = b.op("Sigmoid", [b.op("Add", [xz, hz])], "z")
        n = b.op("Tanh", [b.op("Add", [xn, b.op("Mul", [r, hn])])], "n")
        new = [b.op("Add", [n, b.op("Mul", [z, b.op("Sub", ["h_prev", n])])], "h_new")]
    else:
        new = [b.op("Tanh", [b.op("Add", ["x_t", proj])], "h_new")]
    keep = b.op("Cast", ["m_t"], "keep", to=TensorProto.BOOL)
    outs = [f"{s}_out" for s in states] + ["y_t"]
    for value, prev, out in zip(new, states, outs[:-1], strict=True):
        b.named("Where", [keep, value, prev], out)
    b.named("Identity", [outs[0]], "y_t")
    width = {"lstm": 4, "gru": 3, "rnn": 1}[kind] * hidden
    body_inputs = [helper.make_tensor_value_info(s, F32, ["batch", hidden]) for s in states] + [
        helper.make_tensor_value_info("x_t", F32, ["batch", width]),
        helper.make_tensor_value_info("m_t", I64, ["batch", 1]),
    ]
    body_outputs = [helper.make_tensor_value_info(o, F32, ["batch", hidden]) for o in outs]
    return helper.make_graph(b.nodes, f"{kind}_step_{layer}", body_inputs, body_outputs, b.initializers)


def build_recurrent_graph(kind: str, w: Weights, layers: int, hidden: int) -> onnx.ModelProto:
    """RNN / LSTM / GRU in torch's layout: weight_ih_l{k} [G*H, in], weight_hh_l{k}, bias_ih/hh_l{k}."""
    vocab = w["embed.weight"].shape[0]
    g = GraphWriter()
    inputs, outputs = contract_io(vocab, hidden)
    state_names = recurrent_state_names(kind)
    for past, present in state_names:
        inputs.append(helper.make_tensor_value_info(past, F32, [layers, "batch", hidden]))
        outputs.append(helper.make_tensor_value_info(present, F32, [layers, "batch", hidden]))
    embed = g.const(w["embed.weight"], "embed")
    x = g.op("Gather", [embed, "input_ids"], "embedded", axis=0)
    seq = g.op("Slice", [g.op("Shape", ["input_ids"]), g.ints([1]), g.ints([2])], "seq_len")
    mask = g.op("Unsqueeze", [current_mask(g, seq), g.ints([-1])], "mask_3d")  # [B,S,1]
    finals: list[list[str]] = [[] for _ in state_names]
    for layer in range(layers):
        w_ih, w_hh = w[f"rnn.weight_ih_l{layer}"], w[f"rnn.weight_hh_l{layer}"]
        b_ih, b_hh = w[f"rnn.bias_ih_l{layer}"], w[f"rnn.bias_hh_l{layer}"]
        in_bias = b_ih if kind == "gru" else b_ih + b_hh  # GRU's hidden bias sits inside r * (W h + b)
        xp = g.op("Add", [g.op("MatMul", [x, g.const(w_ih.T, f"l{layer}_w_ih")]), g.const(in_bias, f"l{layer}_b")])
        w_hh_name = g.const(w_hh.T, f"l{layer}_w_hh")
        b_hh_name = g.const(b_hh, f"l{layer}_b_hh") if kind == "gru" else None
        first, after = g.ints([layer]), g.ints([layer + 1])
        initial = [
            g.op("Squeeze", [g.op("Slice", [past, first, after, g.ints([0])]), g.ints([0])], f"l{layer}_{past}")
            for past, _ in state_names
        ]
        body = _cell_body(kind, layer, hidden, w_hh_name, b_hh_name)
        results = g.op(
            "Scan",
            [*initial, xp, mask],
            f"l{layer}_scan",
            n_out=len(state_names) + 1,
            body=body,
            num_scan_inputs=2,
            scan_input_axes=[1, 1],
            scan_output_axes=[1],
        )
        for store, value in zip(finals, results[:-1], strict=True):
            store.append(g.op("Unsqueeze", [value, g.const(np.array([0], np.int64), "axis0")]))
        x = results[-1]
    for (_, present), values in zip(state_names, finals, strict=True):
        g.named("Concat", values, present, axis=0)
    logits(g, x, embed, hidden, vocab, g.const(w["head_bias"], "head_bias"))
    return finish(g, f"nlpsuite_{kind}", inputs, outputs)


def build_transformer_graph(w: Weights, layers: int, heads: int) -> onnx.ModelProto:
    """The TransformerLM of models.py with a KV cache (past_key_values.{i}.key/value [B, heads, past, hd])."""
    vocab, hidden = w["embed.weight"].shape
    hd = hidden // heads
    g = GraphWriter()
    inputs, outputs = contract_io(vocab, hidden)
    names = kv_cache_io(inputs, outputs, layers, heads, hd)
    embed = g.const(w["embed.weight"], "embed")
    x = g.op(
        "Add",
        [
            g.op("Gather", [embed, "input_ids"], axis=0),
            g.op("Gather", [g.const(w["pos.weight"], "pos"), "position_ids"], axis=0),
        ],
        "x0",
    )

    bias = attention_bias(g)
    q_scale = g.const(np.array(hd**-0.5, np.float32), "q_scale")
    root_half = g.const(np.array(0.5**0.5, np.float32), "root_half")
    half, unit = g.const(np.array(0.5, np.float32), "half"), g.const(np.array(1.0, np.float32), "unit")

    def norm(t: str, prefix: str) -> str:
        scale, shift = g.const(w[f"{prefix}.weight"], f"{prefix}_w"), g.const(w[f"{prefix}.bias"], f"{prefix}_b")
        return g.op("LayerNormalization", [t, scale, shift], prefix.replace(".", "_"), axis=-1, epsilon=1e-5)

    def linear(t: str, prefix: str) -> str:
        out = g.op("MatMul", [t, g.const(w[f"{prefix}.weight"].T, f"{prefix}_w")])
        return g.op("Add", [out, g.const(w[f"{prefix}.bias"], f"{prefix}_b")], prefix.replace(".", "_"))

    def split_heads(t: str) -> str:
        return g.op("Transpose", [g.op("Reshape", [t, g.ints([0, 0, heads, hd])])], perm=[0, 2, 1, 3])

    for i in range(layers):
        p = f"blocks.{i}"
        past_k, past_v, pres_k, pres_v = names[i]
        q, k, v = g.op("Split", [linear(norm(x, f"{p}.ln1"), f"{p}.qkv")], n_out=3, axis=-1, num_outputs=3)
        q = g.op("Mul", [split_heads(q), q_scale])
        g.named("Concat", [past_k, split_heads(k)], pres_k, axis=2)
        g.named("Concat", [past_v, split_heads(v)], pres_v, axis=2)
        scores = g.op("Add", [g.op("MatMul", [q, g.op("Transpose", [pres_k], perm=[0, 1, 3, 2])]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), pres_v], f"l{i}_ctx")
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), g.ints([0, 0, hidden])])
        x = g.op("Add", [x, linear(ctx, f"{p}.proj")], f"l{i}_resid1")
        h = linear(norm(x, f"{p}.ln2"), f"{p}.fc1")
        gelu = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [unit, g.op("Erf", [g.op("Mul", [h, root_half])])])])
        x = g.op("Add", [x, linear(gelu, f"{p}.fc2")], f"l{i}_resid2")
    logits(g, norm(x, "norm"), embed, hidden, vocab)
    return finish(g, "nlpsuite_transformer", inputs, outputs)


def recurrent_state_spec(kind: str, layers: int, hidden: int) -> list[dict]:
    return [
        {"input": past, "output": present, "shape": [layers, None, hidden], "grow_axis": None}
        for past, present in recurrent_state_names(kind)
    ]
