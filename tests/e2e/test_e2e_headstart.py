"""The head start on the real default model (its session takes long enough to still be building when a mistyped
command fails): the command fails as it did, and a good one gives the same output with and without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def nlpsuite(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "COLUMNS": "200", **env}
    command = [sys.executable, "-m", "nlpsuite", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environ)


@pytest.fixture(scope="module")
def converted(real_home):
    os.environ["NLPSUITE_HOME"] = str(real_home)
    assert nlpsuite("generate", "Hi", "--max-tokens", "1", "--device", "cpu").returncode == 0  # converted, packed
    return real_home


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [(["generate", "Say hello.", "--bogus"], 2, "No such option"), (["translate", "Say hello."], 1, "--to")],
)
def test_a_command_that_fails_while_the_real_model_loads_fails_as_before(converted, args, code, message):
    done = nlpsuite(*args)
    assert done.returncode == code, done.stderr  # not an abort (-6) or a segmentation fault (-11) on the way out
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr == nlpsuite(*args, NLPSUITE_HEAD_START="0").stderr


def test_the_same_output_with_and_without_the_head_start(converted):
    args = ["generate", "Say hello.", "--max-tokens", "16", "--device", "cpu"]
    with_it, without = nlpsuite(*args), nlpsuite(*args, NLPSUITE_HEAD_START="0")
    assert with_it.returncode == without.returncode == 0, with_it.stderr + without.stderr
    assert with_it.stdout == without.stdout and with_it.stdout.strip()
