"""Which packages ship: every package under nlpsuite/ (found, never listed by hand) and the two folders that ship
under other names (pyproject.toml's package-dir). The rest of the build is declared in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["nlpsuite", "nlpsuite.*"]), "nlpsuite_plugins", "nlpsuite_models"])
