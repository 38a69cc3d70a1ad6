"""The torch language models: recurrent (RNN, LSTM, GRU) and a small decoder-only Transformer.

Both tie the output projection to the token embedding. ``forward(ids, state=None)`` returns
``(logits, state)``; the recurrent state is torch's own ``(layers, batch, hidden)`` layout, which the
exported graph keeps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RecurrentLM(nn.Module):
    def __init__(self, kind: str, vocab: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.kind = kind
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = cell(hidden, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head_bias = nn.Parameter(torch.zeros(vocab))
        nn.init.normal_(self.embed.weight, std=hidden**-0.5)

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.drop(out) @ self.embed.weight.T + self.head_bias, state


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv, self.proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.fc1, self.fc2 = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=-1)
        q, k, v = (t.view(b, s, self.heads, h // self.heads).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, s, h)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class TransformerLM(nn.Module):
    """GPT-style: learned positions, pre-LayerNorm blocks, GELU MLP, tied head."""

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, context: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError("hidden size must be a multiple of the number of heads")
        self.context = context
        self.embed = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(context, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                nn.init.normal_(
                    p, std=0.02 / (math.sqrt(2 * layers) if name.endswith(("proj.weight", "fc2.weight")) else 1)
                )
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor, state=None):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.embed(ids) + self.pos(positions))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.T, None


def build_model(arch: str, vocab: int, hidden: int, layers: int, heads: int, context: int, dropout: float):
    if arch == "transformer":
        return TransformerLM(vocab, hidden, layers, heads, context, dropout)
    return RecurrentLM(arch, vocab, hidden, layers, dropout)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
