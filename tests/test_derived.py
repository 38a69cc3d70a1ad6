"""What tasks compute from the model alone is kept per model and checked on load."""

from __future__ import annotations

import numpy as np
import pytest

from nlpsuite.heads import derived

MANIFEST = {"name": "m", "precision": "fp32", "created": "2026-11-29T00:00:00", "source": {"sha256": "ab"}}
SHAPES = {"prior": (3,), "past.0": (1, 2, 5, 4)}


def _build(calls):
    def build():
        calls.append(1)
        return {"prior": np.array([0.2, 0.3, 0.5]), "past.0": np.ones((1, 2, 5, 4))}

    return build


def test_built_once_then_read_back():
    calls = []
    first = derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    again = derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    assert calls == [1] and again.keys() == first.keys()
    np.testing.assert_array_equal(again["prior"], np.float32([0.2, 0.3, 0.5]))
    assert again["past.0"].dtype == np.float32


@pytest.mark.parametrize("change", [{"precision": "int8"}, {"created": "2026-11-30T00:00:00"}, {"name": "other"}])
def test_another_model_or_precision_or_a_reconversion_builds_afresh(change):
    calls = []
    derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    derived.cached({**MANIFEST, **change}, {"what": "x"}, SHAPES, _build(calls))
    derived.cached(MANIFEST, {"what": "y"}, SHAPES, _build(calls))
    assert calls == [1, 1, 1]


def _savez(**arrays):
    def write(path):
        with open(path, "wb") as fh:  # a file object keeps the name (np.savez would add .npz to a path)
            np.savez(fh, **arrays)

    return write


GOOD_PAST = {"past.0": np.ones((1, 2, 5, 4))}


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:100]),  # cut short
        lambda p: p.write_bytes(b"not a zip"),
        _savez(prior=np.array([np.nan, 1, 1]), **GOOD_PAST),
        _savez(prior=np.ones(4), **GOOD_PAST),  # another shape
        _savez(prior=np.array(["a", "b", "c"]), **GOOD_PAST),
        _savez(prior=np.ones(3)),  # an array missing
    ],
)
def test_a_damaged_file_is_rebuilt(damage):
    calls = []
    derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    path = derived.path_for(MANIFEST, {"what": "x"})
    damage(path)
    again = derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    assert calls == [1, 1] and np.isfinite(again["prior"]).all() and again["prior"].shape == (3,)
    assert derived.load(path, SHAPES) is not None  # the rebuilt copy replaced the damaged one


def test_values_the_caller_refuses_are_measured_again():
    calls = []
    derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls))
    derived.save(derived.path_for(MANIFEST, {"what": "x"}), {"prior": np.zeros(3), **GOOD_PAST})
    again = derived.cached(MANIFEST, {"what": "x"}, SHAPES, _build(calls), lambda a: bool((a["prior"] > 0).all()))
    assert calls == [1, 1] and (again["prior"] > 0).all()
