"""Interpolated modified Kneser-Ney n-gram language model over token ids (Chen & Goodman, 1998), in numpy.

For each order k (1..n) the model keeps, per seen context h of k-1 tokens, the discounted mass
a(h, w) = max(c(hw) - D(c(hw)), 0) / c(h·) of every seen continuation w and the back-off weight
gamma(h) = (D1 N1(h·) + D2 N2(h·) + D3+ N3+(h·)) / c(h·). The highest order counts tokens; lower
orders count distinct left extensions (continuation counts). Then

    P_k(w | h) = a_k(h, w) + gamma_k(h) P_{k-1}(w | h minus its oldest token),   P_0(w) = 1 / V,

and an unseen context backs off with gamma = 1. Contexts and n-grams are coded as base-V integers
with the newest token least significant, so each lookup is a binary search (or, in the ONNX graph,
a LabelEncoder hash lookup).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NlpsuiteError


@dataclass
class OrderTable:
    """One order's tables. Row ``len(ctx_codes)`` is the unseen context: gamma 1, no entries."""

    ctx_codes: np.ndarray  # int64 [R], sorted
    gamma: np.ndarray  # float64 [R + 1]
    starts: np.ndarray  # int64 [R + 1], first entry of each context
    counts: np.ndarray  # int64 [R + 1], number of entries of each context
    codes: np.ndarray  # int64 [E], sorted codes of the n-grams (context * V + word)
    words: np.ndarray  # int64 [E]
    values: np.ndarray  # float64 [E], the discounted mass a(h, w)
    discounts: tuple[float, float, float]

    @property
    def size(self) -> int:
        return len(self.codes) + len(self.ctx_codes)


def _codes(ids: np.ndarray, k: int, vocab: int) -> np.ndarray:
    """Base-V codes of every k-gram of ``ids``, the last token least significant."""
    n = len(ids) - k + 1
    codes = ids[:n].astype(np.int64)
    for i in range(1, k):
        codes = codes * vocab + ids[i : i + n]
    return codes


def _discounts(counts: np.ndarray) -> tuple[float, float, float]:
    """Chen & Goodman's estimates from the counts of counts, kept within [0.05 r, r] for count r."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == r)) for r in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return 0.5, 1.0, 1.5
    y = n1 / (n1 + 2 * n2)
    raw = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    return tuple(float(np.clip(d, 0.05 * r, r)) for r, d in zip((1, 2, 3), raw, strict=True))


def _table(codes: np.ndarray, counts: np.ndarray, vocab: int) -> OrderTable:
    discounts = _discounts(counts)
    d = np.array((0.0, *discounts))[np.minimum(counts, 3)]
    ctx, starts, fanout = np.unique(codes // vocab, return_index=True, return_counts=True)
    denom = np.add.reduceat(counts, starts).astype(np.float64)
    by_kind = [np.add.reduceat((np.minimum(counts, 3) == r).astype(np.int64), starts) for r in (1, 2, 3)]
    gamma = sum(disc * n for disc, n in zip(discounts, by_kind, strict=True)) / denom
    values = (counts - d) / np.repeat(denom, fanout)
    return OrderTable(
        ctx_codes=ctx.astype(np.int64),
        gamma=np.append(gamma, 1.0),
        starts=np.append(starts, 0).astype(np.int64),
        counts=np.append(fanout, 0).astype(np.int64),
        codes=codes.astype(np.int64),
        words=(codes % vocab).astype(np.int64),
        values=values,
        discounts=discounts,
    )


class KneserNey:
    """An order-n model over a vocabulary of ``vocab_size`` token ids."""

    def __init__(self, order: int, vocab_size: int, tables: list[OrderTable]) -> None:
        self.order, self.vocab_size, self.tables = order, vocab_size, tables  # tables[k - 1] is order k

    @classmethod
    def fit(cls, ids: np.ndarray, order: int, vocab_size: int) -> KneserNey:
        ids = np.asarray(ids, dtype=np.int64)
        if order < 2:
            raise NlpsuiteError("--order must be at least 2")
        if float(vocab_size) ** order >= 2**62:
            raise NlpsuiteError(f"--order {order} is too high for a vocabulary of {vocab_size} tokens")
        if len(ids) <= order:
            raise NlpsuiteError(f"the corpus is too short for an order-{order} model ({len(ids)} tokens)")
        tables: list[OrderTable] = []
        higher = None
        for k in range(order, 0, -1):
            if higher is None:  # the highest order counts tokens
                codes, counts = np.unique(_codes(ids, k, vocab_size), return_counts=True)
            else:  # lower orders count the distinct words seen before each k-gram
                codes, counts = np.unique(higher % vocab_size**k, return_counts=True)
            tables.append(_table(codes, counts, vocab_size))
            higher = codes
        return cls(order, vocab_size, tables[::-1])

    @property
    def size(self) -> int:
        """Stored numbers: one per n-gram entry and one back-off weight per context."""
        return sum(t.size for t in self.tables)

    def _rows(self, table: OrderTable, ctx: np.ndarray, valid: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(table.ctx_codes, ctx)
        pos = np.minimum(pos, len(table.ctx_codes) - 1)
        found = valid & (table.ctx_codes[pos] == ctx)
        return np.where(found, pos, len(table.ctx_codes))

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """log P(ids[t] | ids[:t]) for t = 1..len(ids)-1 (each with at most order-1 tokens of history)."""
        ids = np.asarray(ids, dtype=np.int64)
        targets = np.arange(1, len(ids))
        p = np.full(len(targets), 1.0 / self.vocab_size)
        for k, table in enumerate(self.tables, start=1):
            m = k - 1
            ctx = np.zeros(len(targets), np.int64)
            for j in range(m, 0, -1):  # oldest token first: it ends up most significant
                ctx = ctx * self.vocab_size + ids[np.maximum(targets - j, 0)]
            rows = self._rows(table, ctx, targets >= m)
            full = ctx * self.vocab_size + ids[targets]
            pos = np.minimum(np.searchsorted(table.codes, full), len(table.codes) - 1)
            hit = (rows < len(table.ctx_codes)) & (table.codes[pos] == full)
            p = np.where(hit, table.values[pos], 0.0) + table.gamma[rows] * p
        return np.log(p)

    def distribution(self, history: list[int]) -> np.ndarray:
        """P(w | history) for every token id w (only the last order-1 tokens of history matter)."""
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k, table in enumerate(self.tables, start=1):
            m = k - 1
            if len(history) < m:
                continue  # unseen context: gamma 1, nothing added
            ctx = 0
            for token in history[len(history) - m :]:
                ctx = ctx * self.vocab_size + int(token)
            row = int(self._rows(table, np.array([ctx]), np.array([True]))[0])
            start, count = table.starts[row], table.counts[row]
            p = table.gamma[row] * p
            p[table.words[start : start + count]] += table.values[start : start + count]
        return p
