"""fp32 backbone -> int8 weights (dynamic quantization of every MatMul and the output head)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..artefacts import MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE


def _untie_head(model) -> None:
    """Give the output head its own copy of a tied embedding, so quantizing it leaves Gather in fp32."""
    from onnx import numpy_helper

    gathered = {n.input[0] for n in model.graph.node if n.op_type == "Gather"}
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gemm" and node.input[1] in gathered and node.input[1] in inits:
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[1]]), node.input[1] + "_head")
            model.graph.initializer.append(copy)
            node.input[1] = copy.name


def quantize_int8(fp32_dir: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_dir / MODEL_FILE))
    _untie_head(model)
    staged = out / "staged.onnx"
    onnx.save_model(model, str(staged), save_as_external_data=True, location="staged.data", size_threshold=1024)
    del model
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice meant for image models
    quantize_dynamic(
        staged,
        out / "quantized.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Gemm"],
        use_external_data_format=True,
        extra_options={"MatMulConstBOnly": True},
    )
    model = onnx.load(str(out / "quantized.onnx"))
    del model.graph.value_info[:]  # the quantizer's inferred shapes are wrong for the tied head
    for stray in out.iterdir():
        stray.unlink()
    onnx.save_model(
        model,
        str(out / MODEL_FILE),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )
    shutil.copy(fp32_dir / TOKENIZER_FILE, out / TOKENIZER_FILE)
