"""Tokenizers trained on the corpus: one token per character, or byte-level BPE (`tokenizers`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import NlpsuiteError

EOS = "<|endoftext|>"  # id 0: end of text and padding
UNK = "<unk>"  # id 1 in character vocabularies: a character the corpus never had


def train_tokenizer(kind: str, text: str, vocab_size: int = 1024):
    """A `tokenizers.Tokenizer` for ``text``: ``kind`` is "char" or "bpe"."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "char":
        chars = sorted(set(text))
        vocab = {EOS: 0, UNK: 1, **{c: i + 2 for i, c in enumerate(chars)}}
        tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
        tok.add_special_tokens([EOS, UNK])
        return tok
    if kind == "bpe":
        if vocab_size < 257:
            raise NlpsuiteError("--vocab-size must be at least 257 for bpe (256 bytes and the end-of-text token)")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(text.splitlines(keepends=True), trainer)
        return tok
    raise NlpsuiteError(f"unknown tokenizer {kind!r}: choose char or bpe")


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def special_tokens() -> dict:
    """The manifest's special tokens for every tokenizer made here: no BOS, EOS = padding = id 0."""
    return {"bos_token_id": None, "eos_token_ids": [0], "pad_token_id": 0, "bos_token": None, "eos_token": EOS}


# A trained model continues text: the "chat" template just joins what was said, so `generate` without
# --raw continues the prompt instead of wrapping it in User:/Assistant: turns the model never saw.
CONTINUATION_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% if not loop.last %}\n{% endif %}{% endfor %}"
