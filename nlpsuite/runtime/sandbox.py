"""A jinja2 sandbox with bounded work: chat templates come from model files that anyone may have written.

jinja2's sandbox stops attribute escapes but not a template that loops for ever or builds a 24 GB
string. Here every loop item, call, operator and piece of output is counted against a per-render
budget: at most ``MAX_OPERATIONS`` steps, ``MAX_SECONDS`` of wall time, and values and output no
larger than ``BASE_CHARS`` plus ``INPUT_FACTOR`` times the size of the messages. Sizes are checked
before anything large is built.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from dataclasses import dataclass, field

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OPERATIONS = 1_000_000  # loop items + calls + operators; real chat templates need a few thousand
MAX_SECONDS = 10.0  # a last resort for work the counts miss; real templates render in milliseconds
BASE_CHARS = 1_000_000  # room for the template's own text beyond the messages it renders
INPUT_FACTOR = 4  # a template may render a message more than once (as text, in tojson, captured in a set block)
MAX_ARGUMENT = 100_000  # widths, counts and repeats a call may ask for (jinja2's own range() limit)
MAX_INT_BITS = 4096
_NUMBER = re.compile(r"\d+")


class TemplateLimitError(TemplateError):
    """The template asked for more work or memory than any chat template needs."""


@dataclass
class _Budget:
    limit: int = BASE_CHARS
    operations: int = 0
    output: int = 0
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_SECONDS)

    def step(self, count: int = 1) -> None:
        self.operations += count
        if self.operations > MAX_OPERATIONS:
            raise TemplateLimitError(f"it takes more than {MAX_OPERATIONS} steps to render")
        if self.operations % 1024 < count and time.monotonic() > self.deadline:
            raise TemplateLimitError(f"it takes more than {MAX_SECONDS:g} s to render")

    def fits(self, size: int, what: str) -> None:
        if size > self.limit:
            raise TemplateLimitError(f"it builds {what} of {size} characters (at most {self.limit})")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    # Outside a render (constant folding while compiling) a fresh default budget applies.
    return _BUDGET.get() or _Budget()


def size(value, depth: int = 0) -> int:
    """Roughly how many characters ``value`` stands for once rendered (sampled for long sequences)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, value.bit_length() // 3)
    if depth > 3 or not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    items = list(value.items()) if isinstance(value, dict) else value
    sample = items[:64] if isinstance(items, list | tuple) else list(items)[:64]
    if not sample:
        return 1
    each = sum(size(x, depth + 1) for x in sample) / len(sample)
    return len(items) + int(each * len(items))


def _numbers(args) -> list[int]:
    return [abs(int(a)) for a in args if isinstance(a, int | float) and a == a and abs(a) < 1e300]


def _check_format_string(text: str) -> None:
    """'%2000000000s' or '{:>2000000000}' would allocate gigabytes in one step."""
    if any(len(n) > 5 and int(n) > MAX_ARGUMENT for n in _NUMBER.findall(text)):
        raise TemplateLimitError(f"it formats with a width above {MAX_ARGUMENT}")


# Calls whose result can outgrow their input (a width, a separator or replacement repeated per item).
GROWING = frozenset(
    {"replace", "join", "center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "format"}
    | {"format_map", "tojson", "batch", "truncate", "urlize", "lipsum", "pprint", "wrap", "fill"}
)


def _growth(name: str, value, args: list) -> int:
    """An upper bound on the size of what ``name(value, *args)`` builds."""
    strings = [len(a) for a in args if isinstance(a, str)]
    if name == "join":  # filter: items|join(sep); method: sep.join(items)
        pair = (value, args[0] if args else "")
        items, sep = pair[::-1] if isinstance(value, str) else pair
        return size(items) + size(items) * (len(sep) if isinstance(sep, str) else 1)
    if name == "replace" and isinstance(value, str) and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[0], args[1]
        return len(value) + (len(value) + 1) // max(1, len(old)) * len(new)
    return (size(value) + 1) * max([1, *_numbers(args), *strings]) + sum(size(a) for a in args)


def _check_call(name: str, value, args: list) -> None:
    """Refuse a call that asks for a huge width, count or repeat, before it runs."""
    budget = _budget()
    budget.step()
    if any(n > MAX_ARGUMENT for n in _numbers(args)):
        raise TemplateLimitError(f"it calls {name} with an argument above {MAX_ARGUMENT}")
    if name in GROWING:
        budget.fits(_growth(name, value, args), f"a value (with {name})")
        if name == "format" and isinstance(value, str):
            _check_format_string(value)


def _checked_result(value):
    if isinstance(value, str | list | tuple | dict):
        _budget().fits(size(value), "a value")
    return value


def _bounded_filter(name: str, func):
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    @functools.wraps(func)  # keeps jinja_pass_arg: context/environment filters still get theirs
    def bounded(*args, **kwargs):
        plain = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
        _check_call(name, plain[0] if plain else None, plain[1:] + list(kwargs.values()))
        return _checked_result(func(*args, **kwargs))

    return bounded


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable jinja2 sandbox that counts and bounds the work a template does (see the module)."""

    intercepted_binops = frozenset({"*", "+", "**", "%", "//", "-"})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}

    def add_filter(self, name: str, func) -> None:
        self.filters[name] = _bounded_filter(name, func)

    def _parse(self, source, name, filename):
        """Route loops, concatenation and output through the budget: compiled code calls them as
        ``environment.<method>``, which a template can neither name nor replace."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            if loop.recursive:  # loop(...) re-enters with a fresh iterable: no chat template needs it
                raise TemplateLimitError("recursive loops are not allowed in chat templates")
            loop.iter = _call("bounded_iter", [loop.iter], loop.lineno)
        for output in list(tree.find_all(nodes.Output)):
            output.nodes = [_call("bounded_output", [child], child.lineno) for child in output.nodes]
        for concat in list(tree.find_all(nodes.Concat)):
            concat.nodes = [_call("bounded_concat", list(concat.nodes), concat.lineno)]
        return tree

    def bounded_iter(self, iterable):
        budget = _budget()
        for item in iterable:
            budget.step()
            yield item

    def bounded_output(self, value):
        text = value if isinstance(value, str) else str(value)
        budget = _budget()
        budget.step()
        budget.output += len(text)
        budget.fits(budget.output, "output")
        return text

    def bounded_concat(self, *parts):
        texts = [p if isinstance(p, str) else str(p) for p in parts]
        _budget().fits(sum(map(len, texts)), "a string")
        return "".join(texts)

    def call_binop(self, context, operator_name: str, left, right):
        budget = _budget()
        budget.step()
        sequences = (str, list, tuple)
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, sequences) and isinstance(times, int):
                    budget.fits(size(seq) * max(times, 0), "a repeated value")
            if isinstance(left, int) and isinstance(right, int):
                self._check_bits(left.bit_length() + right.bit_length())
        elif operator_name == "+" and isinstance(left, sequences) and isinstance(right, sequences):
            budget.fits(size(left) + size(right), "a value")
        elif operator_name == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            self._check_bits(max(left.bit_length(), 1) * right)
        elif operator_name == "%" and isinstance(left, str):
            _check_format_string(left)
        return self.binop_table[operator_name](left, right)

    @staticmethod
    def _check_bits(bits: int) -> None:
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(f"it computes a number of more than {MAX_INT_BITS} bits")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's signature
        owner = getattr(__obj, "__self__", None)  # a method of a value: "x".center(n), sep.join(items)
        value = owner if isinstance(owner, str | list | tuple | dict) else None
        _check_call(getattr(__obj, "__name__", "a function"), value, [*args, *kwargs.values()])
        return _checked_result(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_string(value.__self__)
        return wrapped


def _call(method: str, args: list, lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(method), args, [], None, None, lineno=lineno)


def render(template, variables: dict, input_size: int) -> str:
    """Render ``template`` (from a ``BoundedSandbox``) within a fresh budget sized for ``input_size``."""
    token = _BUDGET.set(_Budget(limit=BASE_CHARS + INPUT_FACTOR * input_size))
    try:
        return template.render(**variables)
    except RecursionError:
        raise TemplateLimitError("it recurses too deeply") from None
    except MemoryError:
        raise TemplateLimitError("it needs more memory than there is") from None
    finally:
        _BUDGET.reset(token)


__all__ = ["BoundedSandbox", "TemplateLimitError", "render"]
