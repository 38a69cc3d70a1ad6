"""Log-probabilities in OpenAI's two shapes: chat's ``{"content": [{token, logprob, bytes, top_logprobs}]}`` and the
legacy completions' ``{tokens, token_logprobs, top_logprobs, text_offset}``.

The entries come from the decoding loop (``Completion.logprobs``, or the engine's "logprobs" events while it
streams): each chosen token's log-probability under the model's own distribution, before the constraint,
repetition penalty and temperature (as OpenAI and vLLM give them), and its ``k`` likeliest alternatives.
"""

from __future__ import annotations

from ..runtime.sequence import TokenLogprob


def _pieces(entries: list[TokenLogprob], tokenizer) -> dict[int, str | list[int]]:
    ids = sorted({t for token, _, top in entries for t in (token, *(a for a, _ in top))})
    return dict(zip(ids, tokenizer.pieces(ids), strict=True))


def _token(piece: str | list[int]) -> tuple[str, list[int]]:
    """A token's text and bytes; a token that holds part of a character is named by its bytes, as OpenAI does."""
    if isinstance(piece, str):
        return piece, list(piece.encode("utf-8"))
    return "bytes:" + "".join(f"\\x{b:02x}" for b in piece), list(piece)


def chat(entries: list[TokenLogprob], tokenizer) -> dict:
    """``choices[].logprobs`` of a chat completion (or of one chunk of its stream)."""
    pieces = _pieces(entries, tokenizer)

    def one(token: int, logprob: float) -> dict:
        text, data = _token(pieces[token])
        return {"token": text, "logprob": logprob, "bytes": data}

    content = [{**one(token, lp), "top_logprobs": [one(a, alp) for a, alp in top]} for token, lp, top in entries]
    return {"content": content, "refusal": None}


def legacy(entries: list[TokenLogprob], tokenizer, offset: int = 0) -> tuple[dict, int]:
    """``choices[].logprobs`` of a completion (or of one chunk of its stream) whose text so far is ``offset``
    characters long; and the offset after these tokens."""
    pieces = _pieces(entries, tokenizer)
    tokens, offsets = [], []
    for token, _, _ in entries:
        text = _token(pieces[token])[0]
        tokens.append(text)
        offsets.append(offset)
        offset += len(text) if isinstance(pieces[token], str) else 0
    tops = [{_token(pieces[a])[0]: alp for a, alp in top} for _, _, top in entries]
    shape = {"tokens": tokens, "token_logprobs": [lp for _, lp, _ in entries], "top_logprobs": tops,
             "text_offset": offsets}  # fmt: skip
    return shape, offset
