"""nlpsuite: seven NLP jobs on one shared ONNX language-model backbone."""

from .errors import NlpsuiteError

__version__ = "0.1.0"
__all__ = ["Suite", "NlpsuiteError", "__version__"]


def __getattr__(name: str):
    if name == "Suite":  # keep `import nlpsuite` cheap: the API pulls in numpy and onnxruntime
        from .api import Suite

        return Suite
    raise AttributeError(name)
