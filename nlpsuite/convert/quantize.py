"""fp32 backbone -> 8-bit weights: every weight MatMul becomes ONNX Runtime's block-quantized MatMulNBits.

Symmetric int8 per block of 32 input features keeps the logits close to fp32, and MatMulNBits with
accuracy_level 4 multiplies in int8, which is where the speed comes from on CPUs without VNNI too.
(onnxruntime.quantization.quantize_dynamic was tried first: per-channel garbled the logits, per-tensor
agreed with fp32 on only half of the next tokens.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..artefacts import MODEL_FILE, TOKENIZER_FILE
from . import save_graph

BLOCK = 32
ACCURACY_LEVEL = 4  # int8 activations inside the kernel


def quantize_blocks(weight: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float weight -> (uint8 [N, blocks, block] with zero point 128, float scales [N * blocks])."""
    k, n = weight.shape
    blocks = -(-k // block)
    w = np.zeros((n, blocks * block), np.float32)
    w[:, :k] = weight.T
    w = w.reshape(n, blocks, block)
    scale = np.abs(w).max(axis=-1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[..., None]), -127, 127).astype(np.int16) + 128
    return q.astype(np.uint8), scale.astype(np.float32).reshape(-1)


def dequantize_blocks(q: np.ndarray, scale: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] float weight that MatMulNBits computes with (for tests)."""
    n, blocks, block = q.shape
    w = (q.astype(np.float32) - 128) * scale.reshape(n, blocks)[..., None]
    return w.reshape(n, blocks * block)[:, :k].T


def _head_as_matmul(model) -> None:
    """Rewrite the output head Gemm(transB=1) as MatMul on its own [in, out] copy of the weight.

    The tied embedding then stays fp32 for Gather while the head is quantized like every other MatMul.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gemm" and node.input[1] in inits:
            weight = numpy_helper.to_array(inits[node.input[1]])
            head = numpy_helper.from_array(weight.T.copy(), node.input[1] + "_head_t")
            model.graph.initializer.append(head)
            node.op_type = "MatMul"
            del node.attribute[:]
            node.input[1] = head.name


def quantize_int8(fp32_dir: Path, out: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_dir / MODEL_FILE))
    _head_as_matmul(model)
    inits = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        q, scale = quantize_blocks(w)
        q_name, s_name = weight.name + "_q8", weight.name + "_scale"
        model.graph.initializer.extend([numpy_helper.from_array(q, q_name), numpy_helper.from_array(scale, s_name)])
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], q_name, s_name],
                list(node.output),
                name=node.name,
                domain="com.microsoft",
                K=w.shape[0],
                N=w.shape[1],
                bits=8,
                block_size=BLOCK,
                accuracy_level=ACCURACY_LEVEL,
            )
        )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in model.graph.node for name in node.input}
    keep = [t for t in model.graph.initializer if t.name in used]  # e.g. an untied head's fp32 original
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    save_graph(model, out)
    shutil.copy(fp32_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
