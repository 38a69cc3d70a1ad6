"""End-to-end tests on the real default model: every test in this folder is marked e2e (``pytest -m "not e2e"``
leaves them out), and they share one converted model (``real_home``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
