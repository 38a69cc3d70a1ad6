"""The task reference (docs/tasks.md) is generated from the task declarations and must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from nlpsuite.tasks import Eval, Input, Option, Task

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_tasks", ROOT / "docs" / "gen_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_task_reference_is_what_the_declarations_say(capsys):
    assert _generator().main(["--check"]) == 0, capsys.readouterr().err


def test_a_stale_task_reference_fails_the_check(tmp_path, monkeypatch, capsys):
    gen = _generator()
    page = tmp_path / "tasks.md"
    page.write_text(gen.render(gen.builtin_tasks()).replace("## translate", "## translation"), encoding="utf-8")
    monkeypatch.setattr(gen, "PAGE", page)
    assert gen.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    page.unlink()
    assert gen.main(["--check"]) == 1  # a missing page is stale too


def test_a_new_task_appears_with_its_route_options_and_eval_columns():
    gen = _generator()
    echo = Task(
        "echo",
        "Say it back | twice.",
        "generation",
        lambda suite, inputs, **options: [],
        inputs=(Input("text", "What to say"), Input("note", "A note", optional=True, file=True)),
        options=(
            Option("times", int, 2, "How many times.", short="-x", min=1, max=5),
            Option("style", str, "plain", "How.", choices=("plain", "fancy")),
            Option("mode", str, "a", "One of `a|b`."),
        ),
        output=("echo",),
        value="echo",
        eval=Eval("echoing", {"text": "said"}, "gold", lambda p, g, o: {}),
    )
    page = gen.render({**gen.builtin_tasks(), "echo": echo})
    assert "| [echo](#echo) | Say it back \\| twice. |" in page  # a pipe in a description cannot break the table
    assert "`POST /v1/tasks/echo`" in page
    assert "| `times` | `--times`, `-x` | integer | `2` | 1 to 5 |  | How many times. |" in page
    assert "| `style` | `--style` | text | `plain` |  | `plain`, `fancy` | How. |" in page
    assert "| One of <code>a&#124;b</code>. |" in page  # a pipe in a code span: no backslash to show
    assert "`--note` (text, a file's path, or `-` for stdin)" in page
    assert "`nlpsuite eval echoing DATA` (or `nlpsuite eval echo DATA`)" in page
    assert "Data columns: `said` (the task's `text`); the gold column: `gold`." in page
    assert page == gen.render({"echo": echo, **gen.builtin_tasks()})  # the order tasks register in does not matter


def test_every_fault_matrix_case_is_guarded_by_a_test_that_exists():
    """docs/fault-matrix.md names, for each case of the fault matrix, the test that guards it: a renamed or removed
    test must not leave the page pointing at nothing."""
    import re

    page = (ROOT / "docs" / "fault-matrix.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if re.match(r"\| (?:[A-Z]{1,2}\d\d[a-z]?) \|", line)]
    assert len(rows) >= 181  # the second review's matrix, every case
    missing = []
    for row in rows:
        path, name = re.search(r"`(tests/[\w/]+\.py)::(test_\w+)`", row).groups()
        if not re.search(rf"^\s*def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{row.split('|')[1].strip()}: {path}::{name}")
    assert not missing, missing
