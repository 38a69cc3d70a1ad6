"""LoRA fine-tuning of a source model in torch: load it (a Hugging Face folder or GGUF file of the Llama family,
weights read tensor by tensor and dequantized), add low-rank adapters to its projections, train them on a task's
examples (nlpsuite.tasks.Example), and merge them back into plain weights saved as a Hugging Face folder, which
converts to ONNX like any other model.

LoRA is written here rather than taken from peft: it is one layer (W x + s B A x) and one merge (W + s B A), and
what is trained must end as plain Llama weights that the converter reads; peft would add a dependency for that.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NlpsuiteError

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TUNABLE = ("llama", "mistral", "qwen2", "qwen3")  # read as stored; Gemma's offset norms and Phi-3's fused rows are not


class LoRALinear(nn.Module):
    """``base(x) + scale * x A^T B^T`` with ``A`` [rank, in] and ``B`` [out, rank]; ``B`` starts at zero, so the
    model starts exactly as it was."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> nn.Linear:
        """The plain linear layer with the adapter folded into its weight."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def add_lora(model: nn.Module, rank: int, alpha: float) -> dict[str, LoRALinear]:
    """Freeze ``model`` and put an adapter on every projection named in TARGETS; returns them by module name."""
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = {}
    for name, module in list(model.named_modules()):
        for child, layer in list(module.named_children()):
            if child in TARGETS and isinstance(layer, nn.Linear):
                adapter = LoRALinear(layer, rank, alpha)
                setattr(module, child, adapter)
                adapters[f"{name}.{child}" if name else child] = adapter
    if not adapters:
        raise NlpsuiteError("this model has no projections to put adapters on")
    return adapters


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every adapter by its merged linear layer (in place)."""
    for module in list(model.modules()):
        for child, layer in list(module.named_children()):
            if isinstance(layer, LoRALinear):
                setattr(module, child, layer.merged())
    return model


def adapter_state(adapters: dict[str, LoRALinear]) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{part}": getattr(a, part).detach() for name, a in adapters.items() for part in ("lora_a", "lora_b")
    }


def load_adapter_state(adapters: dict[str, LoRALinear], tensors: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, a in adapters.items():
            for part in ("lora_a", "lora_b"):
                getattr(a, part).copy_(tensors[f"{name}.{part}"])


def load_source(location: str, gguf_file: str | None):
    """(torch model in float32, transformers tokenizer, generation config) of a Llama-family source."""
    from transformers import AutoModelForCausalLM

    from ..convert import _generation_config, open_source

    source, config, tokenizer, weights = open_source(location, gguf_file)
    if config.model_type not in TUNABLE:
        raise NlpsuiteError(f"tune works on {', '.join(TUNABLE)} models, not {config.model_type!r}")
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    state = {}
    for name, param in model.state_dict().items():
        if weights.has(name):
            state[name] = torch.from_numpy(weights.get(name)).reshape(param.shape)
        elif not (name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False)):
            raise NlpsuiteError(f"the source model has no tensor {name!r}")
    model.load_state_dict(state, strict=False)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    return model.float().eval(), tokenizer, _generation_config(config, source, gguf_file)


def save_merged(model: nn.Module, tokenizer, generation, out: Path) -> None:
    """Write the merged model as a Hugging Face folder (safetensors, config, tokenizer, generation config)."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if generation is not None:
        generation.save_pretrained(out)


def sequence_logps(model: nn.Module, pairs: list[tuple[list[int], list[int]]], pad: int) -> torch.Tensor:
    """Sum of log-probabilities of each pair's continuation after its context: [len(pairs)], as one left-padded
    batch whose logits are kept only where continuations are predicted (a long few-shot context costs no
    vocabulary-wide logits)."""
    lengths = [len(c) + len(t) for c, t in pairs]
    width, keep = max(lengths), max(len(t) for _, t in pairs) + 1
    ids = torch.full((len(pairs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (context, continuation) in enumerate(pairs):
        seq = [*context, *continuation]
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits.float()
    logp = F.log_softmax(logits[:, :-1], dim=-1)  # position j of the kept ones predicts token width - keep + 1 + j
    targets = ids[:, width - keep + 1 :]
    picked = torch.gather(logp, 2, targets[..., None])[..., 0]
    wanted = torch.zeros_like(picked, dtype=torch.bool)
    for row, (_, continuation) in enumerate(pairs):
        wanted[row, keep - 1 - len(continuation) :] = True
    return (picked * wanted).sum(dim=1)


def example_loss(model: nn.Module, examples, pad: int) -> tuple[torch.Tensor, int]:
    """(loss, tokens or examples it averages over) of a batch of Examples: the mean negative log-likelihood per
    continuation token for generating tasks; for label tasks the cross-entropy of the gold alternative among the
    task's scores (sums of log-probabilities, divided by the example's norms)."""
    pairs = [p for e in examples for p in e.alternatives]
    sums = sequence_logps(model, pairs, pad)
    written, scored, at = [], [], 0
    for e in examples:
        part = sums[at : at + len(e.alternatives)]
        at += len(e.alternatives)
        if e.gold is None:
            written.append((part[0], len(e.alternatives[0][1])))
        else:
            norms = torch.tensor(e.norms or [1.0] * len(part), dtype=part.dtype)
            scored.append(-F.log_softmax(part / norms, dim=0)[e.gold])
    if written and scored:
        raise NlpsuiteError("a batch mixes generating and label examples")
    if written:
        tokens = sum(n for _, n in written)
        return -torch.stack([s for s, _ in written]).sum() / max(tokens, 1), tokens
    return torch.stack(scored).mean(), len(scored)
