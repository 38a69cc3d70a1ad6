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
from .projections import Projections
from .rope import rotary


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
    return LlamaGraph(config, weights, g, bits, wide_bits, half, blocks).build()


class LlamaGraph:
    """Writes the graph by part, in order: the embedding, the rotary tables and attention biases, then per layer
    the attention block and the MLP block, then the final norm and the head. A new architecture's trait goes in
    the part it changes (the Gemma and Qwen3 ones are marked where they are)."""

    def __init__(self, config, weights, g: GraphWriter, bits, wide_bits, half: bool, blocks) -> None:
        arch = describe(config)
        self.config, self.weights, self.g = config, weights, g
        self.n_layers, self.nh, self.kv, self.hd = (
            arch[k] for k in ("num_layers", "num_heads", "num_kv_heads", "head_dim")
        )
        self.hidden, self.vocab = arch["hidden_size"], arch["vocab_size"]
        self.bits, self.wide_bits, self.half = bits, wide_bits, half
        self.dtype, self.elem = (np.float16, TensorProto.FLOAT16) if half else (np.float32, TensorProto.FLOAT)
        self.project = Projections(g, weights, bits, self.dtype, blocks)
        self.act = activation(config)
        self.windows = layer_windows(config)

    def build(self):
        config, g = self.config, self.g
        kinds = getattr(config, "layer_types", None) or [None] * self.n_layers
        inputs, outputs = contract_io(self.vocab, self.hidden)
        names = kv_cache_io(inputs, outputs, self.n_layers, self.kv, self.hd, self.elem)
        x = self._embedding()
        rope_tables = self._rotary_tables()
        self.biases = self._attention_biases()
        self._shared_constants()
        for i in range(self.n_layers):
            tables = rope_tables[kinds[i] if kinds[i] in rope_tables else None]
            x = self._attention(i, x, names[i], tables)
            x = self._mlp(i, x)
        self._head(x)
        contrib = self.bits or self.act != "silu"
        return finish(g, "nlpsuite_backbone", inputs, outputs, {"com.microsoft": 1} if contrib else None)

    # -- small pieces every part uses ----------------------------------------------------------------------
    def to(self, t: str, to: int) -> str:
        return self.g.op("Cast", [t], f"{t}_as", to=to) if self.half else t

    def rms_norm(self, inp: str, weight: str, tag: str, out=None) -> str:
        g = self.g
        inp = self.to(inp, TensorProto.FLOAT)  # fp16 squares overflow past 256
        sq = g.op("Pow", [inp, self.two], f"{tag}_sq")  # Pow, not Mul: ONNX Runtime fuses this pattern
        mean = g.op("ReduceMean", [sq, g.ints([-1])], f"{tag}_mean", keepdims=1)
        eps = g.const(np.array(float(self.config.rms_norm_eps), np.float32), "eps")
        denom = g.op("Sqrt", [g.op("Add", [mean, eps])], f"{tag}_rms")
        normed = g.op("Div", [inp, denom], f"{tag}_normed")
        return self.to(g.op("Mul", [normed, g.const(self.weights.get(weight), f"{tag}_weight")], tag), out or self.elem)

    def linear_bias(self, t: str, *biases: str, sizes: list[int]) -> str:
        weights = self.weights
        if not any(weights.has(b) for b in biases):
            return t
        pairs = zip(biases, sizes, strict=True)
        parts = [weights.get(b) if weights.has(b) else np.zeros(n, np.float32) for b, n in pairs]
        return self.g.op("Add", [t, self.g.const(np.concatenate(parts).astype(self.dtype), "bias")])

    def softcap(self, t: str, cap: float, tag: str) -> str:  # Gemma 2: cap * tanh(t / cap)
        g = self.g
        c = g.const(np.array(cap, np.float32), f"{tag}_cap")
        return g.op("Mul", [g.op("Tanh", [g.op("Div", [t, c])]), c], tag)

    # -- the parts, in the order they are written -----------------------------------------------------------
    def _embedding(self) -> str:
        """Token embeddings. A quantized model's stays in its 8-bit blocks too (GatherBlockQuantized): an fp32
        copy would be a third of an int8 model."""
        g, config, weights, dtype = self.g, self.config, self.weights, self.dtype
        self.tied = getattr(config, "tie_word_embeddings", False) or not weights.has("lm_head.weight")
        embed_name = "model.embed_tokens.weight"
        if self.bits is None:
            self.embed = g.const(weights.get(embed_name).astype(dtype, copy=False), "embed_tokens")
            x = g.op("Gather", [self.embed, "input_ids"], "embedded", axis=0)
        else:
            self.embed_bits = self.wide_bits or self.bits
            rows, self.blobs, self.embed_scales, self.embed_block = self.project.embedding(embed_name, self.embed_bits)
            gather = [rows, "input_ids", self.embed_scales]
            x = g.op(
                "GatherBlockQuantized", gather, "embedded", domain="com.microsoft",
                gather_axis=0, quantize_axis=1, block_size=self.embed_block, bits=self.embed_bits,
            )  # fmt: skip
            if self.hidden % self.embed_block:  # no block size divides a row (hidden 72): its last block is padded
                x = g.op("Slice", [x, g.ints([0]), g.ints([self.hidden]), g.ints([-1])], "embedded_rows")
        if config.model_type.startswith("gemma"):  # Gemma scales the embedding (not the tied head) by sqrt(hidden),
            # rounded as the model's dtype does
            x = g.op("Mul", [x, g.const(np.array(self.hidden**0.5, dtype), "embed_scale")], "embedded_scaled")
        return x

    def _rotary_tables(self) -> dict[str | None, tuple[str, str]]:
        """{layer type: (cos, sin)} for every position in the batch, [B,1,S,D] (Gemma 3: one per layer type)."""
        g = self.g
        pos = g.op("Cast", ["position_ids"], "pos_f", to=TensorProto.FLOAT)
        pos = g.op("Unsqueeze", [pos, g.ints([-1])], "pos_col")
        tables = {}
        for kind, (inv_freq, rope_scale) in rotary(self.config).items():
            freqs = g.op("Mul", [pos, g.const(inv_freq.astype(np.float32), "inv_freq")], "freqs")
            emb = g.op("Concat", [freqs, freqs], "rope_angles", axis=-1)
            emb = g.op("Unsqueeze", [emb, g.ints([1])], "rope_angles_h")  # [B,1,S,D]
            cos, sin = g.op("Cos", [emb], "cos"), g.op("Sin", [emb], "sin")
            if rope_scale != 1.0:
                scale = g.const(np.array(rope_scale, np.float32), "rope_scale")
                cos, sin = g.op("Mul", [cos, scale]), g.op("Mul", [sin, scale])
            tables[kind] = (self.to(cos, self.elem), self.to(sin, self.elem))
        return tables

    def _attention_biases(self) -> dict[int | None, str]:
        """{window: attention bias [B,1,groups*S,T]}: one copy per query head that shares a KV head."""
        biases, groups = {}, self.nh // self.kv
        for window in set(self.windows):
            bias = attention_bias(self.g, window)
            if groups > 1:
                bias = self.g.op("Tile", [bias, self.g.ints([1, 1, groups, 1])], "attn_bias_g")
            biases[window] = bias
        return biases

    def _shared_constants(self) -> None:
        g, config, hd = self.g, self.config, self.hd
        self.two = g.const(np.array(2.0, np.float32), "two")
        scalar = float(getattr(config, "query_pre_attn_scalar", None) or hd)
        self.q_scale = g.const(np.array(scalar**-0.5, self.dtype), "q_scale")
        self.split_qkv = g.ints([self.nh * hd, self.kv * hd, self.kv * hd], "qkv_split")
        self.halves = g.ints([hd // 2, hd // 2], "halves")

    def _heads(self, t: str, n: int, tag: str) -> str:  # [B,S,n*D] -> [B,n,S,D]
        t = self.g.op("Reshape", [t, self.g.ints([0, 0, n, self.hd])], f"{tag}_4d")
        return self.g.op("Transpose", [t], f"{tag}_heads", perm=[0, 2, 1, 3])

    def _rope(self, t: str, tag: str, cos: str, sin: str) -> str:
        g = self.g
        a, b = g.op("Split", [t, self.halves], f"{tag}_half", n_out=2, axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [b]), a], f"{tag}_rot", axis=-1)
        return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rotated, sin])], f"{tag}_rope")

    def _attention(self, i: int, x: str, names: tuple[str, ...], tables: tuple[str, str]) -> str:
        """Layer ``i``'s attention block and its residual: fused QKV, RoPE, the KV cache, grouped queries."""
        g, weights, nh, kv, hd = self.g, self.weights, self.nh, self.kv, self.hd
        p = f"model.layers.{i}."
        att, (cos, sin) = p + "self_attn.", tables
        past_k, past_v, pres_k, pres_v = names
        h = self.rms_norm(x, p + "input_layernorm.weight", f"l{i}_ln1")
        qkv = self.project(h, [f"{att}{m}_proj.weight" for m in "qkv"], f"l{i}_qkv", self.wide_bits)
        qkv = self.linear_bias(qkv, *(f"{att}{m}_proj.bias" for m in "qkv"), sizes=[nh * hd, kv * hd, kv * hd])
        q, k, v = g.op("Split", [qkv, self.split_qkv], f"l{i}_qkv_part", n_out=3, axis=-1)
        q, k = self._heads(q, nh, f"l{i}_q"), self._heads(k, kv, f"l{i}_k")
        if weights.has(att + "q_norm.weight"):  # Qwen3: per-head RMSNorm of queries and keys before RoPE
            q = self.rms_norm(q, att + "q_norm.weight", f"l{i}_q_norm")
            k = self.rms_norm(k, att + "k_norm.weight", f"l{i}_k_norm")
        q, k = self._rope(q, f"l{i}_q", cos, sin), self._rope(k, f"l{i}_k", cos, sin)
        v = self._heads(v, kv, f"l{i}_v")
        g.named("Concat", [past_k, k], pres_k, axis=2)
        g.named("Concat", [past_v, v], pres_v, axis=2)
        # Query heads that share a KV head are stacked along the sequence axis: no KV copies.
        q = g.op("Reshape", [g.op("Mul", [q, self.q_scale]), g.ints([0, kv, -1, hd])], f"l{i}_q_grouped")
        k_t = g.op("Transpose", [pres_k], f"l{i}_k_t", perm=[0, 1, 3, 2])
        scores = self.to(g.op("MatMul", [q, k_t], f"l{i}_qk"), TensorProto.FLOAT)
        attn_cap = getattr(self.config, "attn_logit_softcapping", None)
        if attn_cap:
            scores = self.softcap(scores, float(attn_cap), f"l{i}_qk_capped")
        scores = g.op("Add", [scores, self.biases[self.windows[i]]], f"l{i}_scores")
        probs = self.to(g.op("Softmax", [scores], f"l{i}_probs", axis=-1), self.elem)
        ctx = g.op("MatMul", [probs, pres_v], f"l{i}_ctx")
        ctx = g.op("Reshape", [ctx, g.ints([0, nh, -1, hd])], f"l{i}_ctx_heads")
        ctx = g.op("Transpose", [ctx], f"l{i}_ctx_seq", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, g.ints([0, 0, nh * hd])], f"l{i}_ctx_flat")
        out = self.project(ctx, [att + "o_proj.weight"], f"l{i}_attn_out")
        out = self.linear_bias(out, att + "o_proj.bias", sizes=[self.hidden])
        if self._sandwich(i):
            out = self.rms_norm(out, p + "post_attention_layernorm.weight", f"l{i}_attn_post_norm")
        return g.op("Add", [x, out], f"l{i}_resid1")

    def _sandwich(self, i: int) -> bool:
        """Gemma 2/3: norms before and after each block."""
        return self.weights.has(f"model.layers.{i}.pre_feedforward_layernorm.weight")

    def _mlp(self, i: int, x: str) -> str:
        """Layer ``i``'s gated MLP block and its residual: fused gate/up, SiLU or GELU, down."""
        g, p, sandwich = self.g, f"model.layers.{i}.", self._sandwich(i)
        mlp = p + "mlp."
        norm = p + ("pre_feedforward_layernorm" if sandwich else "post_attention_layernorm") + ".weight"
        h = self.rms_norm(x, norm, f"l{i}_ln2")
        gu = self.project(h, [mlp + "gate_proj.weight", mlp + "up_proj.weight"], f"l{i}_gate_up")
        inter = int(self.config.intermediate_size)
        gu = self.linear_bias(gu, mlp + "gate_proj.bias", mlp + "up_proj.bias", sizes=[inter, inter])
        gate, up = g.op("Split", [gu, g.ints([inter, inter])], f"l{i}_gu", n_out=2, axis=-1)
        if self.act == "silu":
            gate = g.op("Mul", [gate, g.op("Sigmoid", [gate])], f"l{i}_silu")
        else:
            gate = g.op(self.act, [gate], f"l{i}_gelu", domain="com.microsoft")
        act = g.op("Mul", [gate, up], f"l{i}_act")
        down = self.project(act, [mlp + "down_proj.weight"], f"l{i}_down", self.wide_bits)
        down = self.linear_bias(down, mlp + "down_proj.bias", sizes=[self.hidden])
        if sandwich:
            down = self.rms_norm(down, p + "post_feedforward_layernorm.weight", f"l{i}_mlp_post_norm")
        return g.op("Add", [x, down], f"l{i}_resid2")

    def _head(self, x: str) -> None:
        """The final norm (fp32 hidden states out) and the logits of the last num_logits_to_keep positions only;
        a tied head is the embedding matrix."""
        g, hidden, vocab = self.g, self.hidden, self.vocab
        final = self.rms_norm(x, "model.norm.weight", "final_norm", TensorProto.FLOAT)
        if self.bits is None:
            lm_head = self.weights.get("lm_head.weight") if not self.tied else None
            head = self.embed if self.tied else g.const(lm_head.astype(self.dtype, copy=False), "lm_head")
        elif self.tied:

            def head(flat: str) -> str:
                inits = [self.blobs, self.embed_scales]
                return self.project.node(flat, inits, hidden, vocab, self.embed_bits, "logits_flat", self.embed_block)

        else:
            head = lambda flat: self.project(flat, ["lm_head.weight"], "logits_flat", self.wide_bits)  # noqa: E731
        final_cap = getattr(self.config, "final_logit_softcapping", None)
        if final_cap or self.half:
            matrix = head

            def head(flat: str) -> str:
                flat = self.to(flat, self.elem)
                scores = matrix(flat) if callable(matrix) else g.op("Gemm", [flat, matrix], "logits_raw", transB=1)
                scores = self.to(scores, TensorProto.FLOAT)
                return self.softcap(scores, float(final_cap), "logits_capped") if final_cap else scores

        logits(g, final, head, hidden, vocab)
