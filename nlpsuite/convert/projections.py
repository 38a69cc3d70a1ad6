"""The weight matrices of a converted graph at one precision: fp32 MatMul nodes, or MatMulNBits over 8- or 4-bit
blocks (a GGUF's own blocks where they fit, else quantized here a slice of rows at a time), and a quantized
embedding whose bytes a tied head reads too."""

from __future__ import annotations

import numpy as np

from .graph import GraphWriter
from .quantize import ACCURACY_LEVEL, BLOCK, block_size, fitting_block, pack_zero_points, quantize_rows
from .sources import Rows


class Projections:
    """Writes the weight matrices at one precision: fp32 MatMul, or MatMulNBits over 8- or 4-bit blocks
    (a GGUF's own Q8_0/Q4_0 blocks when they fit, else quantized here one matrix at a time)."""

    def __init__(self, g: GraphWriter, weights, bits: int | None, dtype=np.float32, blocks=None) -> None:
        """``dtype``: that of unquantized matrices (float16 for the CUDA execution provider); ``blocks``: {bits:
        values per block} of the matrices quantized here (a GGUF's own blocks keep their 32)."""
        self.g, self.weights, self.bits, self.dtype = g, weights, bits, dtype
        self.blocks = {8: BLOCK, 4: BLOCK, **(blocks or {})}

    def __call__(self, x: str, names: list[str], tag: str, bits: int | None = None) -> str:
        """``x`` [.., K] times the source matrices ``names`` ([N_i, K] each) stacked along N."""
        g, bits = self.g, bits or self.bits
        if bits is None:
            w = np.concatenate([self.weights.get(n) for n in names]) if len(names) > 1 else self.weights.get(names[0])
            return g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T, self.dtype), f"{tag}_w")], tag)
        found_blocks = {name: self.weights.blocks(name, bits) for name in names}
        # a fused matrix is one node with one block size: a GGUF's 32 if any of its parts comes as such blocks
        block = BLOCK if any(f is not None for f in found_blocks.values()) else self.blocks[bits]
        parts = []
        for name, found in found_blocks.items():
            if found is None:
                w = Rows(self.weights, name)  # read and quantized a slice of rows at a time
                k = w.shape[1]
                block = fitting_block(k, block)
                # 4 bits: each block's own min..max (zero points) follows asymmetric sources such as Q4_1
                found = quantize_rows(w, bits, asymmetric=bits == 4, block=block)
            else:
                k = found[1].shape[1] * BLOCK
            parts.append(found)
        packed = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        scales = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        initializers = [g.const(packed, f"{tag}_q{bits}"), g.const(scales, f"{tag}_scales")]
        if any(len(p) == 3 for p in parts):  # symmetric parts of a fused matrix get their implied zero point
            mid = np.uint8(2 ** (bits - 1))
            zeros = np.concatenate([p[2] if len(p) == 3 else np.full(p[1].shape, mid, np.uint8) for p in parts])
            initializers.append(g.const(pack_zero_points(zeros, bits), f"{tag}_zero_points"))
        return self.node(x, initializers, k, packed.shape[0], bits, tag, block_size(packed, bits))

    def node(self, x: str, initializers: list[str], k: int, n: int, bits: int, tag: str, block: int = BLOCK) -> str:
        """MatMulNBits over blocks already written (blobs, scales[, zero points])."""
        return self.g.op(
            "MatMulNBits",
            [x, *initializers],
            tag,
            domain="com.microsoft",
            K=k,
            N=n,
            bits=bits,
            block_size=block,
            accuracy_level=ACCURACY_LEVEL,
        )

    def embedding(self, name: str, bits: int) -> tuple[str, str, str, int]:
        """Write a [vocab, hidden] matrix once as symmetric blocks: (Gather-shaped blobs, MatMulNBits-shaped
        blobs, scales, block size); both shapes name the same bytes, so a tied head costs no second copy."""
        found = self.weights.blocks(name, bits)
        if found is None:  # read and quantized a slice of rows at a time: never whole in float32
            w = Rows(self.weights, name)  # a gathered row must be exactly the hidden size: blocks that divide it
            found = quantize_rows(w, bits, block=fitting_block(w.shape[1], self.blocks[bits]))
        packed, scales = found[:2]
        blobs = self.g.const(packed, f"{name}_q{bits}")
        rows = self.g.alias(blobs, (packed.shape[0], packed.shape[1] * packed.shape[2]), "embed_tokens_rows")
        return rows, blobs, self.g.const(scales, "embed_tokens_scales"), block_size(packed, bits)
