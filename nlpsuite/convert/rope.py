"""Rotary position tables computed here, in numpy: conversion needs no torch.

For each rotary scheme the supported architectures use (the original RoPE; linear, dynamic-NTK, YaRN and
Llama 3.1 scaling; Phi-3's LongRoPE; Gemma 3's own base per layer type) this gives the inverse frequencies and
the factor cos/sin are scaled by, as the model's rotary module holds them when it is built. Every step rounds to
float32 as that module computes in float32, with the one power computed exactly and rounded once: the tables
agree with transformers' within one unit in the last place (tests/test_rope.py).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import NlpsuiteError

F32 = np.float32


def rotary(config) -> dict[str | None, tuple[np.ndarray, float]]:
    """{layer type: (inv_freq float32 [head_dim / 2], attention scaling)}: Gemma 3's local and global layers have
    their own parameters, every other model one entry (None). ``config`` is a transformers config (version 5:
    its ``rope_parameters``)."""
    params = config.rope_parameters
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kinds = sorted(set(getattr(config, "layer_types", None) or []))
    if kinds and all(isinstance(params.get(kind), dict) for kind in kinds):  # one set of parameters per layer type
        return {kind: _table(params[kind], head_dim, config.max_position_embeddings, params) for kind in kinds}
    return {None: _table(params, head_dim, config.max_position_embeddings, params)}


def _table(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind not in SCHEMES:
        raise NlpsuiteError(f"the rotary scaling {kind!r} is not supported yet ({', '.join(SCHEMES)})")
    return SCHEMES[kind](rope, dim, max_positions, top)


def _exponents(dim: int) -> np.ndarray:
    """0, 2, 4 .. dim - 2 over dim, in float32."""
    return np.arange(0, dim, 2, dtype=F32) / F32(dim)


def _powers(base: float, dim: int) -> np.ndarray:
    """base ** (2i / dim) for each pair of dimensions: float32, each the exact power rounded once."""
    return (np.float64(F32(base)) ** _exponents(dim).astype(np.float64)).astype(F32)


def _inverse(base: float, dim: int) -> np.ndarray:
    return F32(1.0) / _powers(base, dim)


def default(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """The original RoPE: theta ** (-2i / dim)."""
    return _inverse(rope["rope_theta"], dim), 1.0


def linear(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """Position interpolation: every frequency divided by the factor."""
    return _inverse(rope["rope_theta"], dim) / F32(rope["factor"]), 1.0


def dynamic(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """Dynamic NTK: the base grows with the sequence past the trained length. A graph's table is the one for the
    trained length itself, where the base is unchanged (its growth is the identity up to rounding)."""
    factor = rope["factor"]
    growth = (factor * max_positions / max_positions - (factor - 1)) ** (dim / (dim - 2))
    return _inverse(rope["rope_theta"] * growth, dim), 1.0


def _yarn_scale(factor: float, mscale: float = 1.0) -> float:
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def yarn(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """YaRN: interpolate the low frequencies, keep the high ones, blend linearly between (Peng et al. 2023, with
    the attention factor of its eq. 21)."""
    base, original = rope["rope_theta"], rope["original_max_position_embeddings"]
    factor = rope.get("factor") or max_positions / original
    scaling, mscale, mscale_all = rope.get("attention_factor"), rope.get("mscale"), rope.get("mscale_all_dim")
    if scaling is None:
        scaling = _yarn_scale(factor, mscale) / _yarn_scale(factor, mscale_all) if mscale and mscale_all else None
        scaling = _yarn_scale(factor) if scaling is None else scaling
    fast, slow = rope.get("beta_fast") or 32, rope.get("beta_slow") or 1

    def dimension(rotations: float) -> float:  # the dimension that turns this many times over the original context
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = dimension(fast), dimension(slow)
    if top.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    high = high + 0.001 if low == high else high
    ramp = np.clip((np.arange(dim // 2, dtype=F32) - F32(low)) / F32(high - low), 0, 1)
    keep = F32(1) - ramp  # the share of each frequency left as trained (extrapolated)
    powers = _powers(base, dim)
    interpolated, extrapolated = F32(1.0) / (F32(factor) * powers), F32(1.0) / powers
    return interpolated * (F32(1) - keep) + extrapolated * keep, scaling


def longrope(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """LongRoPE (Phi-3 "su"): a factor per frequency; the short ones within the original context, which is what a
    model's table holds when it is built (the long ones apply only past that length)."""
    original = rope["original_max_position_embeddings"]
    factor = rope.get("factor") or max_positions / original
    scaling = rope.get("attention_factor")
    if scaling is None:
        scaling = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original))
    short = np.asarray(rope["short_factor"], dtype=F32)
    return F32(1.0) / (short * _powers(rope["rope_theta"], dim)), scaling


def llama3(rope: dict, dim: int, max_positions: int, top: dict) -> tuple[np.ndarray, float]:
    """Llama 3.1: wavelengths longer than the original context / low_freq_factor are divided by the factor, those
    shorter than it / high_freq_factor kept, and those between blended smoothly."""
    inv = _inverse(rope["rope_theta"], dim)
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    original = rope["original_max_position_embeddings"]
    wavelength = F32(2 * math.pi) / inv
    scaled = np.where(wavelength > F32(original / low), inv / F32(factor), inv)
    smooth = (F32(original) / wavelength - F32(low)) / F32(high - low)
    blended = (F32(1) - smooth) * scaled / F32(factor) + smooth * scaled
    between = ~(wavelength < F32(original / high)) & ~(wavelength > F32(original / low))
    return np.where(between, blended, scaled).astype(F32), 1.0


SCHEMES = {
    "default": default,
    "linear": linear,
    "dynamic": dynamic,
    "yarn": yarn,
    "longrope": longrope,
    "su": longrope,  # the early name of LongRoPE in Phi-3 configs
    "llama3": llama3,
}
