"""The inference runtime: the ONNX backbone session, the tokenizer, sampling and the decoding loops."""
