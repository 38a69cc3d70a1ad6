"""What `pip install nlpsuite` ships: every package of the source tree (an editable install hides a missing one)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_folder_of_python_code_ships_as_a_package():
    from setuptools import find_packages

    found = set(find_packages(str(ROOT), include=["nlpsuite", "nlpsuite.*"]))
    folders = {p.parent for p in (ROOT / "nlpsuite").rglob("*.py") if "__pycache__" not in p.parts}
    expected = {".".join(folder.relative_to(ROOT).parts) for folder in folders}
    assert expected - found == set()
