"""nlpsuite: seven NLP jobs on one shared ONNX language-model backbone.

The public face, for users and plugin authors alike (docs/plugins.md)::

    from nlpsuite import Suite                                        # run any task from Python
    from nlpsuite import hookimpl, Task, Input, Option, Eval          # declare a task in a plugin
    from nlpsuite import sampling_options, check_sampling, NlpsuiteError

Each name is imported on first use, so ``import nlpsuite`` stays cheap (no numpy, no ONNX Runtime).
"""

from .errors import NlpsuiteError

__version__ = "0.1.0"

# name -> the module that defines it
_LAZY = {
    "Suite": "api",
    "hookimpl": "hookspecs",
    "Task": "tasks",
    "Input": "tasks",
    "Option": "tasks",
    "Eval": "tasks",
    "sampling_options": "tasks",
    "check_sampling": "tasks",
}
__all__ = [*_LAZY, "NlpsuiteError", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'nlpsuite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
