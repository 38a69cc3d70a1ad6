"""Train language models from scratch (n-gram, RNN, LSTM, GRU, Transformer) and export them as backbones.

Only the neural trainers (models.py, loop.py) import torch; the n-gram model, the tokenizers and the
exported graphs need numpy, tokenizers and onnx alone.
"""

ARCHS = ("ngram", "rnn", "lstm", "gru", "transformer")
TOKENIZERS = ("char", "bpe")
