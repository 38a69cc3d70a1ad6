"""Weight matrices in ONNX Runtime's MatMulNBits layout: 8- or 4-bit codes in blocks of 32 input features.

Symmetric blocks keep the logits close to fp32, and MatMulNBits with accuracy_level 4 multiplies in int8,
which is where the speed comes from on CPUs without VNNI too. (onnxruntime.quantization.quantize_dynamic
was tried first: per-channel garbled the logits, per-tensor agreed with fp32 on only half of the next
tokens.) Layout, from ONNX Runtime's contrib-operator spec: B is uint8 [N, K/32, 32*bits/8] with codes
packed low nibble first along K, scales [N, K/32] in the activations' dtype, and no zero points means
2^(bits-1). GGUF's Q8_0 and Q4_0 blocks (32 codes and one fp16 scale, zero at 0 and 8) are the same
numbers in another byte order, so they are imported without rounding again.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as GGML

BLOCK = 32
ACCURACY_LEVEL = 4  # int8 activations inside the kernel
ROWS_AT_ONCE = 1 << 22  # values quantized per chunk: bounds the temporaries for a big matrix


def fitting_block(k: int, largest: int) -> int:
    """The largest of ``largest``, ``largest``/2, ... down to 32 that divides a row of ``k`` values (a padded last
    block costs for nothing; a gathered embedding row must come back exactly ``k`` long); 32 when none does."""
    block = largest
    while block > BLOCK and k % block:
        block //= 2
    return block


def block_size(packed: np.ndarray, bits: int) -> int:
    """The values per block of MatMulNBits blobs [N, blocks, block*bits/8]."""
    return packed.shape[-1] * 8 // bits


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """uint8 codes [..., 32] -> the MatMulNBits blob [..., 32*bits/8] (4 bits: element 2i low, 2i+1 high)."""
    return codes if bits == 8 else codes[..., 0::2] | (codes[..., 1::2] << 4)


def _unpack(blob: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return blob
    codes = np.empty(blob.shape[:-1] + (blob.shape[-1] * 2,), np.uint8)
    codes[..., 0::2], codes[..., 1::2] = blob & 0xF, blob >> 4
    return codes


def quantize_rows(
    weight: np.ndarray, bits: int = 8, asymmetric: bool = False, block: int = BLOCK
) -> tuple[np.ndarray, ...]:
    """[N, K] float weight (out x in) -> (uint8 blobs [N, K/block, block*bits/8], float32 scales [N, K/block]),
    plus uint8 zero points [N, K/block] when ``asymmetric`` (each block's min..max over all codes). ``weight``
    is read a slice of rows at a time (``weight[a:b]``): an array, or a source's ``Rows`` read as they come."""
    n, k = weight.shape
    blocks = -(-k // block)
    packed = np.empty((n, blocks, block * bits // 8), np.uint8)
    scales = np.empty((n, blocks), np.float32)
    zeros = np.empty((n, blocks), np.uint8) if asymmetric else None
    step = max(1, ROWS_AT_ONCE // max(k, 1))
    for start in range(0, n, step):
        rows = np.zeros((min(step, n - start), blocks * block), np.float32)
        rows[:, :k] = weight[start : start + step]
        w = rows.reshape(len(rows), blocks, block)
        if asymmetric:
            top = 2**bits - 1
            low, high = np.minimum(w.min(axis=-1), 0), np.maximum(w.max(axis=-1), 0)
            scale = (high - low) / top
            scale[scale == 0] = 1.0
            zero = np.clip(np.rint(-low / scale), 0, top)
            codes = np.clip(np.rint(w / scale[..., None] + zero[..., None]), 0, top)
            packed[start : start + len(rows)] = _pack(codes.astype(np.uint8), bits)
            scales[start : start + len(rows)] = scale
            zeros[start : start + len(rows)] = zero
            continue
        if bits == 8:
            scale = np.abs(w).max(axis=-1) / 127.0
            low, high = -127, 127
        else:  # the value of largest magnitude maps to -8, as in llama.cpp's Q4_0: all 16 codes are used
            extreme = np.take_along_axis(w, np.abs(w).argmax(axis=-1)[..., None], axis=-1)[..., 0]
            scale = extreme / -8.0
            low, high = -8, 7
        scale[scale == 0] = 1.0
        codes = np.clip(np.rint(w / scale[..., None]), low, high) + 2 ** (bits - 1)
        packed[start : start + len(rows)] = _pack(codes.astype(np.uint8), bits)
        scales[start : start + len(rows)] = scale
    return (packed, scales) if zeros is None else (packed, scales, zeros)


def dequantize_rows(packed: np.ndarray, scales: np.ndarray, bits: int, k: int, zeros=None) -> np.ndarray:
    """The [N, K] float weight that MatMulNBits computes with (``zeros``: unpacked uint8 [N, K/32])."""
    zero = 2 ** (bits - 1) if zeros is None else zeros[..., None].astype(np.float32)
    codes = _unpack(packed, bits).astype(np.float32) - zero
    n, blocks = scales.shape
    return (codes * scales[..., None]).reshape(n, -1)[:, :k]


def quantize_blocks(weight: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float weight -> (uint8 [N, blocks, block] with zero point 128, float scales [N * blocks])."""
    assert block == BLOCK
    q, scale = quantize_rows(weight.T, 8)
    return q, scale.reshape(-1)


def dequantize_blocks(q: np.ndarray, scale: np.ndarray, k: int) -> np.ndarray:
    """The [K, N] float weight of 8-bit blocks (for tests)."""
    return dequantize_rows(q, scale.reshape(q.shape[0], -1), 8, k).T


def pack_zero_points(zeros: np.ndarray, bits: int) -> np.ndarray:
    """uint8 zero points [N, blocks] -> MatMulNBits' packed [N, ceil(blocks*bits/8)] (low nibble first)."""
    if bits == 8:
        return zeros
    if zeros.shape[1] % 2:
        zeros = np.concatenate([zeros, np.zeros((zeros.shape[0], 1), np.uint8)], axis=1)
    return zeros[:, 0::2] | (zeros[:, 1::2] << 4)


def gguf_blocks(raw: np.ndarray, qtype: GGML, bits: int) -> tuple[np.ndarray, np.ndarray] | None:
    """GGUF rows of Q8_0 or Q4_0 blocks (uint8 [N, row bytes]) as MatMulNBits (blobs, scales), exactly;
    None for any other pairing (those are dequantized and quantized again)."""
    n = raw.shape[0]
    if qtype == GGML.Q8_0 and bits == 8:
        blocks = raw.reshape(n, -1, 2 + BLOCK)
        codes = blocks[..., 2:] ^ np.uint8(0x80)  # int8 two's complement + 128: zero point 128
    elif qtype == GGML.Q4_0 and bits in (4, 8):
        blocks = raw.reshape(n, -1, 2 + BLOCK // 2)
        nibbles = blocks[..., 2:]
        codes = np.concatenate([nibbles & 0xF, nibbles >> 4], axis=-1)  # GGUF: low nibbles are elements 0-15
        if bits == 8:
            codes = codes + np.uint8(120)  # zero point 8 -> 128: the same values at 8 bits
    else:
        return None
    scales = np.ascontiguousarray(blocks[..., :2]).view(np.float16)[..., 0].astype(np.float32)
    return _pack(np.ascontiguousarray(codes), bits), scales
