"""Write the ONNX backbone graph for Llama-family decoders (Llama, Mistral, Qwen2, Qwen3, SmolLM).

The graph is built node by node from the transformers model's weights rather than traced, so it
has exactly the backbone contract's inputs and outputs, a fused QKV and gate/up projection per
layer, the KV cache as plain inputs/outputs, and logits only for the last positions asked for.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from .graph import GraphWriter, attention_bias, contract_io, finish, kv_cache_io, logits


def _weight(tensor) -> np.ndarray:
    return tensor.detach().to("cpu").float().numpy()


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
        # A sliding-window model (Mistral) is exact only within its window, so that is its context here.
        "context_length": min(config.max_position_embeddings, getattr(config, "sliding_window", None) or 2**62),
    }


def build_graph(model) -> onnx.ModelProto:
    """Return the backbone graph of a transformers ``*ForCausalLM`` of the Llama family."""
    cfg = model.config
    arch = describe(cfg)
    n_layers, nh, kv, hd = (arch[k] for k in ("num_layers", "num_heads", "num_kv_heads", "head_dim"))
    hidden, vocab = arch["hidden_size"], arch["vocab_size"]
    groups = nh // kv
    eps = float(cfg.rms_norm_eps)
    core = model.model
    rotary = core.rotary_emb
    inv_freq = rotary.inv_freq.detach().float().numpy()
    rope_scale = float(getattr(rotary, "attention_scaling", 1.0))

    g = GraphWriter()
    inputs, outputs = contract_io(vocab, hidden)
    names = kv_cache_io(inputs, outputs, n_layers, kv, hd)

    # Embedding and rotary tables (cos/sin for every position in the batch).
    embed = g.const(_weight(core.embed_tokens.weight), "embed_tokens")
    x = g.op("Gather", [embed, "input_ids"], "embedded", axis=0)
    pos = g.op("Cast", ["position_ids"], "pos_f", to=TensorProto.FLOAT)
    pos = g.op("Unsqueeze", [pos, g.ints([-1])], "pos_col")
    freqs = g.op("Mul", [pos, g.const(inv_freq.astype(np.float32), "inv_freq")], "freqs")
    emb = g.op("Concat", [freqs, freqs], "rope_angles", axis=-1)
    emb = g.op("Unsqueeze", [emb, g.ints([1])], "rope_angles_h")  # [B,1,S,D]
    cos, sin = g.op("Cos", [emb], "cos"), g.op("Sin", [emb], "sin")
    if rope_scale != 1.0:
        scale = g.const(np.array(rope_scale, np.float32), "rope_scale")
        cos, sin = g.op("Mul", [cos, scale]), g.op("Mul", [sin, scale])

    # Attention bias [B,1,groups*S,T]: one copy per query head that shares a KV head (see below).
    bias = attention_bias(g)
    if groups > 1:
        bias = g.op("Tile", [bias, g.ints([1, 1, groups, 1])], "attn_bias_g")

    two = g.const(np.array(2.0, np.float32), "two")
    q_scale = g.const(np.array(hd**-0.5, np.float32), "q_scale")
    split_qkv = g.ints([nh * hd, kv * hd, kv * hd], "qkv_split")
    halves = g.ints([hd // 2, hd // 2], "halves")

    def rms_norm(inp: str, weight, tag: str) -> str:
        sq = g.op("Pow", [inp, two], f"{tag}_sq")  # Pow, not Mul: ONNX Runtime fuses this pattern
        mean = g.op("ReduceMean", [sq, g.ints([-1])], f"{tag}_mean", keepdims=1)
        denom = g.op("Sqrt", [g.op("Add", [mean, g.const(np.array(eps, np.float32), "eps")])], f"{tag}_rms")
        normed = g.op("Div", [inp, denom], f"{tag}_normed")
        return g.op("Mul", [normed, g.const(_weight(weight), f"{tag}_weight")], tag)

    def heads(t: str, n: int, tag: str) -> str:  # [B,S,n*D] -> [B,n,S,D]
        t = g.op("Reshape", [t, g.ints([0, 0, n, hd])], f"{tag}_4d")
        return g.op("Transpose", [t], f"{tag}_heads", perm=[0, 2, 1, 3])

    def rope(t: str, tag: str) -> str:
        a, b = g.op("Split", [t, halves], f"{tag}_half", n_out=2, axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [b]), a], f"{tag}_rot", axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rotated, sin])], f"{tag}_rope")

    def linear_bias(t: str, *biases) -> str:
        if all(b is None for b in biases):
            return t
        parts = [_weight(b) if b is not None else np.zeros(0, np.float32) for b in biases]
        return g.op("Add", [t, g.const(np.concatenate(parts), "bias")])

    for i, layer in enumerate(core.layers):
        past_k, past_v, pres_k, pres_v = names[i]
        att, mlp = layer.self_attn, layer.mlp
        h = rms_norm(x, layer.input_layernorm.weight, f"l{i}_ln1")
        w_qkv = np.concatenate([_weight(att.q_proj.weight), _weight(att.k_proj.weight), _weight(att.v_proj.weight)])
        qkv = g.op("MatMul", [h, g.const(w_qkv.T, f"l{i}_qkv_w")], f"l{i}_qkv")
        qkv = linear_bias(qkv, att.q_proj.bias, att.k_proj.bias, att.v_proj.bias)
        q, k, v = g.op("Split", [qkv, split_qkv], f"l{i}_qkv_part", n_out=3, axis=-1)
        q, k = heads(q, nh, f"l{i}_q"), heads(k, kv, f"l{i}_k")
        if getattr(att, "q_norm", None) is not None:  # Qwen3: per-head RMSNorm of queries and keys before RoPE
            q = rms_norm(q, att.q_norm.weight, f"l{i}_q_norm")
            k = rms_norm(k, att.k_norm.weight, f"l{i}_k_norm")
        q, k = rope(q, f"l{i}_q"), rope(k, f"l{i}_k")
        v = heads(v, kv, f"l{i}_v")
        g.named("Concat", [past_k, k], pres_k, axis=2)
        g.named("Concat", [past_v, v], pres_v, axis=2)
        # Query heads that share a KV head are stacked along the sequence axis: no KV copies.
        q = g.op("Reshape", [g.op("Mul", [q, q_scale]), g.ints([0, kv, -1, hd])], f"l{i}_q_grouped")
        k_t = g.op("Transpose", [pres_k], f"l{i}_k_t", perm=[0, 1, 3, 2])
        scores = g.op("Add", [g.op("MatMul", [q, k_t]), bias], f"l{i}_scores")
        probs = g.op("Softmax", [scores], f"l{i}_probs", axis=-1)
        ctx = g.op("MatMul", [probs, pres_v], f"l{i}_ctx")
        ctx = g.op("Reshape", [ctx, g.ints([0, nh, -1, hd])], f"l{i}_ctx_heads")
        ctx = g.op("Transpose", [ctx], f"l{i}_ctx_seq", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, g.ints([0, 0, nh * hd])], f"l{i}_ctx_flat")
        out = g.op("MatMul", [ctx, g.const(_weight(att.o_proj.weight).T, f"l{i}_o_w")], f"l{i}_attn_out")
        out = linear_bias(out, att.o_proj.bias)
        x = g.op("Add", [x, out], f"l{i}_resid1")

        h = rms_norm(x, layer.post_attention_layernorm.weight, f"l{i}_ln2")
        w_gu = np.concatenate([_weight(mlp.gate_proj.weight), _weight(mlp.up_proj.weight)])
        gu = g.op("MatMul", [h, g.const(w_gu.T, f"l{i}_gate_up_w")], f"l{i}_gate_up")
        gu = linear_bias(gu, getattr(mlp.gate_proj, "bias", None), getattr(mlp.up_proj, "bias", None))
        gate, up = g.op("Split", [gu, g.ints([mlp.gate_proj.out_features] * 2)], f"l{i}_gu", n_out=2, axis=-1)
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up], f"l{i}_act")
        down = g.op("MatMul", [act, g.const(_weight(mlp.down_proj.weight).T, f"l{i}_down_w")], f"l{i}_down")
        down = linear_bias(down, getattr(mlp.down_proj, "bias", None))
        x = g.op("Add", [x, down], f"l{i}_resid2")

    final = rms_norm(x, core.norm.weight, "final_norm")
    # Logits for the last num_logits_to_keep positions only; the head shares the embedding when tied.
    lm_weight = model.lm_head.weight
    if lm_weight.data_ptr() == core.embed_tokens.weight.data_ptr():
        head = embed
    else:
        head = g.const(_weight(lm_weight), "lm_head")
    logits(g, final, head, hidden, vocab)
    return finish(g, "nlpsuite_backbone", inputs, outputs)
