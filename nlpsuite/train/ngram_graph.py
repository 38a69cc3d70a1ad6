"""The Kneser-Ney model as an ONNX backbone: lookup tables, no weights to learn.

Its state is the last order-1 token ids (stored as id + 1 in a float tensor; 0 = no token, as at the
start of a text or under padding). Per position and order the context code is looked up with a
LabelEncoder (a hash map), the rows' entries are gathered, and the distribution is built from the
uniform one upwards: p = gamma * p, then the row's discounted masses are scatter-added. The log of
the distribution is both ``last_hidden_state`` and, for the last positions, ``logits``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..convert.graph import END, F32, I64, GraphWriter, contract_io, current_mask, finish, last_positions
from .ngram import KneserNey

STATE_IN, STATE_OUT = "past_history", "present_history"
ML_OPSET = 2


def build_ngram_graph(model: KneserNey) -> onnx.ModelProto:
    vocab, m = model.vocab_size, model.order - 1
    g = GraphWriter()
    inputs, outputs = contract_io(vocab, vocab)
    inputs.append(helper.make_tensor_value_info(STATE_IN, F32, ["batch", m]))
    outputs.append(helper.make_tensor_value_info(STATE_OUT, F32, ["batch", m]))
    one, two, end = g.ints([1], "one"), g.ints([2], "two"), g.ints([END], "end")
    shape = g.op("Shape", ["input_ids"], "ids_shape")
    seq = g.op("Slice", [shape, one, two], "seq_len")
    # Tokens under padding count as absent: a context that reaches into them backs off.
    current = g.op("Mul", [g.op("Add", ["input_ids", g.ints([1])]), current_mask(g, seq)], "current_plus1")
    history = g.op("Cast", [STATE_IN], "history", to=I64)
    combined = g.op("Concat", [history, current], "combined", axis=1)  # [B, m + S], ids + 1
    present = g.op("Slice", [combined, g.ints([-m]), end, one], "present_ids")
    g.named("Cast", [present], STATE_OUT, to=F32)
    ids = g.op("Sub", [combined, g.ints([1])], "ids")  # -1 = absent

    p_shape = g.op("Concat", [shape, g.ints([vocab])], "p_shape", axis=0)
    p = g.op("Expand", [g.const(np.array(1.0 / vocab, np.float32), "uniform"), p_shape], "p0")
    for k, table in enumerate(model.tables, start=1):
        tag = f"o{k}"
        rows_count = len(table.ctx_codes)
        if k == 1:
            row = g.op("Mul", ["input_ids", g.const(np.array(0, np.int64), "nil")], f"{tag}_row")  # one context
        else:
            back = []
            for j in range(k - 1):  # the token j steps before each position (0: the position's own token)
                start = g.ints([m - j])
                back.append(g.op("Slice", [ids, start, g.op("Add", [seq, start]), one], f"{tag}_back{j}"))
            code = back[-1]
            for token in reversed(back[:-1]):  # oldest first, newest least significant
                code = g.op("Add", [g.op("Mul", [code, g.const(np.array(vocab, np.int64), "vocab")]), token])
            valid = g.op("GreaterOrEqual", [g.op("Min", back), g.const(np.array(0, np.int64), "zero_s")])
            code = g.op("Where", [valid, code, g.const(np.array(-1, np.int64), "absent")], f"{tag}_code")
            row = g.op(
                "LabelEncoder",
                [code],
                f"{tag}_row",
                domain="ai.onnx.ml",
                keys_int64s=table.ctx_codes.tolist(),
                values_int64s=list(range(rows_count)),
                default_int64=rows_count,
            )
        gamma = g.op("Gather", [g.const(table.gamma.astype(np.float32), f"{tag}_gamma"), row], f"{tag}_g")
        p = g.op("Mul", [p, g.op("Unsqueeze", [gamma, g.ints([-1])])], f"{tag}_backoff")
        fanout = int(table.counts.max())
        if fanout == 0:
            continue
        span = g.const(np.arange(fanout, dtype=np.int64), f"{tag}_span")
        first = g.op("Unsqueeze", [g.op("Gather", [g.const(table.starts, f"{tag}_starts"), row]), g.ints([-1])])
        count = g.op("Unsqueeze", [g.op("Gather", [g.const(table.counts, f"{tag}_counts"), row]), g.ints([-1])])
        index = g.op(
            "Min", [g.op("Add", [first, span]), g.const(np.array(len(table.words) - 1, np.int64), f"{tag}_last")]
        )
        inside = g.op("Less", [span, count], f"{tag}_inside")
        words = g.op("Gather", [g.const(table.words, f"{tag}_words"), index], f"{tag}_w")
        values = g.op("Gather", [g.const(table.values.astype(np.float32), f"{tag}_values"), index])
        values = g.op("Where", [inside, values, g.const(np.array(0.0, np.float32), "nothing")], f"{tag}_v")
        p = g.op("ScatterElements", [p, words, values], f"{tag}_p", axis=2, reduction="add")
    g.named("Log", [p], "last_hidden_state")
    last_positions(g, "last_hidden_state", output="logits")
    return finish(g, "nlpsuite_ngram", inputs, outputs, extra_opsets={"ai.onnx.ml": ML_OPSET})


def ngram_state_spec(order: int) -> list[dict]:
    return [{"input": STATE_IN, "output": STATE_OUT, "shape": [None, order - 1], "grow_axis": None}]
