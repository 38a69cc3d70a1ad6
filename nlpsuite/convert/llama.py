"""Write the ONNX backbone graph for Llama-family decoders (Llama, Mistral, Qwen2, Qwen3, SmolLM, Phi-3, Gemma 1-3).

The graph is built node by node from the config and the source's weights, read one tensor at a time,
rather than traced, so it has exactly the backbone contract's inputs and outputs, a fused QKV and
gate/up projection per layer, the KV cache as plain inputs/outputs, and logits only for the last
positions asked for.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..errors import NlpsuiteError
from .graph import GraphWriter, attention_bias, contract_io, finish, kv_cache_io, logits
from .quantize import ACCURACY_LEVEL, BLOCK, block_size, fitting_block, pack_zero_points, quantize_rows
from .sources import Rows


def describe(config) -> dict:
    """The architecture facts the runtime needs, read from a transformers config."""
    n_heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    return {
        "model_type": config.model_type,
        "num_layers": config.num_hidden_layers,
        "num_heads": n_heads,
        "num_kv_heads": getattr(config, "num_key_value_heads", None) or n_heads,
        "head_dim": head_dim,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "context_length": context_length(config),
    }


def layer_windows(config) -> list[int | None]:
    """Each layer's sliding window (keys closer than this many positions), None for full attention: Gemma 2
    alternates, Gemma 3 has five local layers to one global; the graph masks the rest of the cache."""
    types = getattr(config, "layer_types", None) or []
    return [config.sliding_window if t == "sliding_attention" else None for t in types] or [None] * int(
        config.num_hidden_layers
    )


def context_length(config) -> int:
    # Mistral's window is not masked in the graph, so it is exact only within its window: that is its context here.
    window = None if getattr(config, "layer_types", None) else getattr(config, "sliding_window", None)
    return min(config.max_position_embeddings, window or 2**62)


GELU = {"gelu_pytorch_tanh": "FastGelu", "gelu_tanh": "FastGelu", "gelu": "Gelu"}  # com.microsoft operators


def activation(config) -> str:
    """The MLP gate's activation: "silu", or the com.microsoft GELU operator that computes the config's GELU."""
    name = getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", None) or "silu"
    if name == "silu" or name in GELU:
        return GELU.get(name, "silu")
    raise NlpsuiteError(
        f"{config.model_type} with the activation {name!r} is not supported yet (silu, gelu, gelu_tanh)"
    )


def rotary(config) -> dict[str | None, tuple[np.ndarray, float]]:
    """{layer type: (inv_freq, attention scaling)} as the architecture's own rotary module computes them (RoPE
    scaling too); Gemma 3's local and global layers have their own theta, every other model one entry (None)."""
    import importlib

    from transformers import AutoModelForCausalLM

    model_class = AutoModelForCausalLM._model_mapping[type(config)]
    module = importlib.import_module(model_class.__module__)
    rotary_emb = getattr(module, model_class.__name__.replace("ForCausalLM", "RotaryEmbedding"))(config=config)
    tables = {}
    for kind in sorted(set(getattr(config, "layer_types", None) or [])):
        if hasattr(rotary_emb, f"{kind}_inv_freq"):
            scale = getattr(rotary_emb, f"{kind}_attention_scaling", 1.0)
            tables[kind] = (getattr(rotary_emb, f"{kind}_inv_freq").detach().float().numpy(), float(scale))
    if not tables:
        tables[None] = (
            rotary_emb.inv_freq.detach().float().numpy(),
            float(getattr(rotary_emb, "attention_scaling", 1.0)),
        )
    return tables


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


def build_graph(
    config,
    weights,
    g: GraphWriter,
    bits: int | None = None,
    wide_bits: int | None = None,
    half: bool = False,
    blocks: dict[int, int] | None = None,
):
    """The backbone graph of a Llama-family config and its ``weights`` (sources.py); ``bits``: None for fp32
    MatMuls, 8 or 4 for block-quantized ones; ``wide_bits``: those of the matrices most sensitive to rounding
    (q/k/v, down projection, output head), if they differ; ``half``: fp16 weights, activations and KV cache
    (for CUDA), with norms, rotary tables, soft caps and softmax in fp32, and fp32 logits and hidden states;
    ``blocks``: {bits: values per block} where not 32."""
    arch = describe(config)
    n_layers, nh, kv, hd = (arch[k] for k in ("num_layers", "num_heads", "num_kv_heads", "head_dim"))
    hidden, vocab = arch["hidden_size"], arch["vocab_size"]
    groups = nh // kv
    eps = float(config.rms_norm_eps)
    dtype, elem = (np.float16, TensorProto.FLOAT16) if half else (np.float32, TensorProto.FLOAT)
    project = Projections(g, weights, bits, dtype, blocks)
    act = activation(config)

    def to(t: str, to: int) -> str:
        return g.op("Cast", [t], f"{t}_as", to=to) if half else t

    windows = layer_windows(config)
    kinds = getattr(config, "layer_types", None) or [None] * n_layers
    gemma = config.model_type.startswith("gemma")

    inputs, outputs = contract_io(vocab, hidden)
    names = kv_cache_io(inputs, outputs, n_layers, kv, hd, elem)

    # Embedding and rotary tables (cos/sin for every position in the batch). A quantized model's embedding
    # stays in its 8-bit blocks too (GatherBlockQuantized): an fp32 copy would be a third of an int8 model.
    tied = getattr(config, "tie_word_embeddings", False) or not weights.has("lm_head.weight")
    embed_name = "model.embed_tokens.weight"
    if bits is None:
        embed = g.const(weights.get(embed_name).astype(dtype, copy=False), "embed_tokens")
        x = g.op("Gather", [embed, "input_ids"], "embedded", axis=0)
    else:
        embed_bits = wide_bits or bits
        rows, blobs, embed_scales, embed_block = project.embedding(embed_name, embed_bits)
        gather = [rows, "input_ids", embed_scales]
        x = g.op(
            "GatherBlockQuantized", gather, "embedded", domain="com.microsoft",
            gather_axis=0, quantize_axis=1, block_size=embed_block, bits=embed_bits,
        )  # fmt: skip
        if hidden % embed_block:  # no block size divides a row (hidden 72): its last block is padded, cut it off
            x = g.op("Slice", [x, g.ints([0]), g.ints([hidden]), g.ints([-1])], "embedded_rows")
    if gemma:  # Gemma scales the embedding (not the tied head) by sqrt(hidden), rounded as the model's dtype does
        x = g.op("Mul", [x, g.const(np.array(hidden**0.5, dtype), "embed_scale")], "embedded_scaled")
    pos = g.op("Cast", ["position_ids"], "pos_f", to=TensorProto.FLOAT)
    pos = g.op("Unsqueeze", [pos, g.ints([-1])], "pos_col")
    rope_tables = {}
    for kind, (inv_freq, rope_scale) in rotary(config).items():
        freqs = g.op("Mul", [pos, g.const(inv_freq.astype(np.float32), "inv_freq")], "freqs")
        emb = g.op("Concat", [freqs, freqs], "rope_angles", axis=-1)
        emb = g.op("Unsqueeze", [emb, g.ints([1])], "rope_angles_h")  # [B,1,S,D]
        cos, sin = g.op("Cos", [emb], "cos"), g.op("Sin", [emb], "sin")
        if rope_scale != 1.0:
            scale = g.const(np.array(rope_scale, np.float32), "rope_scale")
            cos, sin = g.op("Mul", [cos, scale]), g.op("Mul", [sin, scale])
        rope_tables[kind] = (to(cos, elem), to(sin, elem))

    # Attention bias [B,1,groups*S,T] per window: one copy per query head that shares a KV head (see below).
    biases = {}
    for window in set(windows):
        bias = attention_bias(g, window)
        if groups > 1:
            bias = g.op("Tile", [bias, g.ints([1, 1, groups, 1])], "attn_bias_g")
        biases[window] = bias

    two = g.const(np.array(2.0, np.float32), "two")
    q_scale = g.const(np.array(float(getattr(config, "query_pre_attn_scalar", None) or hd) ** -0.5, dtype), "q_scale")
    attn_cap = getattr(config, "attn_logit_softcapping", None)
    split_qkv = g.ints([nh * hd, kv * hd, kv * hd], "qkv_split")
    halves = g.ints([hd // 2, hd // 2], "halves")

    def rms_norm(inp: str, weight: str, tag: str, out=elem) -> str:
        inp = to(inp, TensorProto.FLOAT)  # fp16 squares overflow past 256
        sq = g.op("Pow", [inp, two], f"{tag}_sq")  # Pow, not Mul: ONNX Runtime fuses this pattern
        mean = g.op("ReduceMean", [sq, g.ints([-1])], f"{tag}_mean", keepdims=1)
        denom = g.op("Sqrt", [g.op("Add", [mean, g.const(np.array(eps, np.float32), "eps")])], f"{tag}_rms")
        normed = g.op("Div", [inp, denom], f"{tag}_normed")
        return to(g.op("Mul", [normed, g.const(weights.get(weight), f"{tag}_weight")], tag), out)

    def heads(t: str, n: int, tag: str) -> str:  # [B,S,n*D] -> [B,n,S,D]
        t = g.op("Reshape", [t, g.ints([0, 0, n, hd])], f"{tag}_4d")
        return g.op("Transpose", [t], f"{tag}_heads", perm=[0, 2, 1, 3])

    def rope(t: str, tag: str, cos: str, sin: str) -> str:
        a, b = g.op("Split", [t, halves], f"{tag}_half", n_out=2, axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [b]), a], f"{tag}_rot", axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rotated, sin])], f"{tag}_rope")

    def linear_bias(t: str, *biases: str, sizes: list[int]) -> str:
        if not any(weights.has(b) for b in biases):
            return t
        pairs = zip(biases, sizes, strict=True)
        parts = [weights.get(b) if weights.has(b) else np.zeros(n, np.float32) for b, n in pairs]
        return g.op("Add", [t, g.const(np.concatenate(parts).astype(dtype), "bias")])

    def softcap(t: str, cap: float, tag: str) -> str:  # Gemma 2: cap * tanh(t / cap)
        c = g.const(np.array(cap, np.float32), f"{tag}_cap")
        return g.op("Mul", [g.op("Tanh", [g.op("Div", [t, c])]), c], tag)

    for i in range(n_layers):
        p = f"model.layers.{i}."
        cos, sin = rope_tables[kinds[i] if kinds[i] in rope_tables else None]
        att, mlp = p + "self_attn.", p + "mlp."
        past_k, past_v, pres_k, pres_v = names[i]
        h = rms_norm(x, p + "input_layernorm.weight", f"l{i}_ln1")
        qkv = project(h, [f"{att}{m}_proj.weight" for m in "qkv"], f"l{i}_qkv", wide_bits)
        qkv = linear_bias(qkv, *(f"{att}{m}_proj.bias" for m in "qkv"), sizes=[nh * hd, kv * hd, kv * hd])
        q, k, v = g.op("Split", [qkv, split_qkv], f"l{i}_qkv_part", n_out=3, axis=-1)
        q, k = heads(q, nh, f"l{i}_q"), heads(k, kv, f"l{i}_k")
        if weights.has(att + "q_norm.weight"):  # Qwen3: per-head RMSNorm of queries and keys before RoPE
            q = rms_norm(q, att + "q_norm.weight", f"l{i}_q_norm")
            k = rms_norm(k, att + "k_norm.weight", f"l{i}_k_norm")
        q, k = rope(q, f"l{i}_q", cos, sin), rope(k, f"l{i}_k", cos, sin)
        v = heads(v, kv, f"l{i}_v")
        g.named("Concat", [past_k, k], pres_k, axis=2)
        g.named("Concat", [past_v, v], pres_v, axis=2)
        # Query heads that share a KV head are stacked along the sequence axis: no KV copies.
        q = g.op("Reshape", [g.op("Mul", [q, q_scale]), g.ints([0, kv, -1, hd])], f"l{i}_q_grouped")
        k_t = g.op("Transpose", [pres_k], f"l{i}_k_t", perm=[0, 1, 3, 2])
        scores = to(g.op("MatMul", [q, k_t], f"l{i}_qk"), TensorProto.FLOAT)
        if attn_cap:
            scores = softcap(scores, float(attn_cap), f"l{i}_qk_capped")
        scores = g.op("Add", [scores, biases[windows[i]]], f"l{i}_scores")
        probs = to(g.op("Softmax", [scores], f"l{i}_probs", axis=-1), elem)
        ctx = g.op("MatMul", [probs, pres_v], f"l{i}_ctx")
        ctx = g.op("Reshape", [ctx, g.ints([0, nh, -1, hd])], f"l{i}_ctx_heads")
        ctx = g.op("Transpose", [ctx], f"l{i}_ctx_seq", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, g.ints([0, 0, nh * hd])], f"l{i}_ctx_flat")
        out = project(ctx, [att + "o_proj.weight"], f"l{i}_attn_out")
        out = linear_bias(out, att + "o_proj.bias", sizes=[hidden])
        sandwich = weights.has(p + "pre_feedforward_layernorm.weight")  # Gemma 2/3: norms before and after each block
        if sandwich:
            out = rms_norm(out, p + "post_attention_layernorm.weight", f"l{i}_attn_post_norm")
        x = g.op("Add", [x, out], f"l{i}_resid1")

        h = rms_norm(
            x, p + ("pre_feedforward_layernorm" if sandwich else "post_attention_layernorm") + ".weight", f"l{i}_ln2"
        )
        gu = project(h, [mlp + "gate_proj.weight", mlp + "up_proj.weight"], f"l{i}_gate_up")
        inter = int(config.intermediate_size)
        gu = linear_bias(gu, mlp + "gate_proj.bias", mlp + "up_proj.bias", sizes=[inter, inter])
        gate, up = g.op("Split", [gu, g.ints([inter, inter])], f"l{i}_gu", n_out=2, axis=-1)
        if act == "silu":
            gate = g.op("Mul", [gate, g.op("Sigmoid", [gate])], f"l{i}_silu")
        else:
            gate = g.op(act, [gate], f"l{i}_gelu", domain="com.microsoft")
        down = project(g.op("Mul", [gate, up], f"l{i}_act"), [mlp + "down_proj.weight"], f"l{i}_down", wide_bits)
        down = linear_bias(down, mlp + "down_proj.bias", sizes=[hidden])
        if sandwich:
            down = rms_norm(down, p + "post_feedforward_layernorm.weight", f"l{i}_mlp_post_norm")
        x = g.op("Add", [x, down], f"l{i}_resid2")

    final = rms_norm(x, "model.norm.weight", "final_norm", TensorProto.FLOAT)  # fp32 hidden states out
    # Logits for the last num_logits_to_keep positions only; a tied head is the embedding matrix.
    if bits is None:
        head = embed if tied else g.const(weights.get("lm_head.weight").astype(dtype, copy=False), "lm_head")
    elif tied:

        def head(flat: str) -> str:
            return project.node(flat, [blobs, embed_scales], hidden, vocab, embed_bits, "logits_flat", embed_block)

    else:
        head = lambda flat: project(flat, ["lm_head.weight"], "logits_flat", wide_bits)  # noqa: E731
    final_cap = getattr(config, "final_logit_softcapping", None)
    if final_cap or half:
        matrix = head

        def head(flat: str) -> str:
            flat = to(flat, elem)
            scores = matrix(flat) if callable(matrix) else g.op("Gemm", [flat, matrix], "logits_raw", transB=1)
            scores = to(scores, TensorProto.FLOAT)
            return softcap(scores, float(final_cap), "logits_capped") if final_cap else scores

    logits(g, final, head, hidden, vocab)
    contrib = bits or act != "silu"
    return finish(g, "nlpsuite_backbone", inputs, outputs, {"com.microsoft": 1} if contrib else None)
