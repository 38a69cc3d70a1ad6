"""Write a random-weight Llama as a Hugging Face folder, shard by shard, without building it in torch.

For conversion benchmarks of models bigger than memory (default: Llama-2-7B's shapes, fp16, ~13.5 GB):

    python benchmarks/make_random_llama.py /tmp/llama-7b-random
    /usr/bin/time -v nlpsuite models pull /tmp/llama-7b-random --precision int8

The tokenizer is a converted model's tokenizer.json (--tokenizer); only the weights' shapes matter here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LLAMA_7B = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float16",
}


def tensor_shapes(c: dict) -> list[tuple[str, tuple[int, ...]]]:
    h, inter, kv = c["hidden_size"], c["intermediate_size"], c["num_key_value_heads"]
    hd = h // c["num_attention_heads"]
    shapes = [("model.embed_tokens.weight", (c["vocab_size"], h))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.q_proj.weight", (h, h)),
            (p + "self_attn.k_proj.weight", (kv * hd, h)),
            (p + "self_attn.v_proj.weight", (kv * hd, h)),
            (p + "self_attn.o_proj.weight", (h, h)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_proj.weight", (inter, h)),
            (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]
    return shapes + [("model.norm.weight", (h,)), ("lm_head.weight", (c["vocab_size"], h))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokenizer", type=Path, help="a tokenizer.json (default: the cached default model's)")
    parser.add_argument("--shard-gb", type=float, default=2.0)
    args = parser.parse_args()
    from safetensors.numpy import save_file

    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = args.tokenizer
    if tokenizer is None:
        from nlpsuite import config

        tokenizer = next(config.models_dir().glob("*/*/tokenizer.json"))
    (args.out / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    (args.out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    (args.out / "config.json").write_text(json.dumps(LLAMA_7B, indent=2))
    rng = np.random.default_rng(0)
    shard, size, index = {}, 0, 0
    for name, shape in tensor_shapes(LLAMA_7B) + [("", ())]:
        if shard and (not name or size + 2 * np.prod(shape) > args.shard_gb * 1e9):
            save_file(shard, str(args.out / f"model-{index:05d}.safetensors"))
            print(f"shard {index}: {size / 1e9:.2f} GB", flush=True)
            shard, size, index = {}, 0, index + 1
        if not name:
            break
        if len(shape) == 1:
            shard[name] = np.ones(shape, np.float16)
        else:
            shard[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
        size += shard[name].nbytes


if __name__ == "__main__":
    main()
