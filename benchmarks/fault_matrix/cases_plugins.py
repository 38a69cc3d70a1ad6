"""Plugins that fail to import, exit at import, fail while registering or take taken names (P)."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import Case, Ctx, Verdict, answered, refused
from .cases_trust import TESTS


def plugins_dir(ctx: Ctx) -> Path:
    """tests/data/nlpsuite-broken and a clashing plugin, installed into a folder of their own (PYTHONPATH)."""
    folder = ctx.root / "plugins"
    if folder.exists():
        return folder
    folder.mkdir()
    broken = TESTS / "data" / "nlpsuite-broken"
    for module in broken.glob("*.py"):
        shutil.copy(module, folder)
    (folder / "m_clash.py").write_text(
        "from nlpsuite import hookimpl, Task\n\n@hookimpl\ndef register_tasks(register):\n"
        "    register(Task('sentiment', 'again', 'generation', print))\n\n@hookimpl\n"
        "def register_commands(register):\n    register(print, name='generate')\n"
    )
    (folder / "m_exit3.py").write_text("import sys\nsys.exit(3)\n")
    points = {
        "nlpsuite-broken": {
            "broken-import": "nlpsuite_broken_import",
            "broken-hook": "nlpsuite_broken_hook",
            "broken-exit": "nlpsuite_broken_exit",
        },
        "clash": {"clash": "m_clash"},
        "x": {"x": "m_exit3"},
    }
    for dist, entries in points.items():
        info = folder / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
        (info / "entry_points.txt").write_text("[nlpsuite]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    return folder


def with_plugins(ctx: Ctx, cmd: str, check, **env) -> Verdict:
    return check(ctx.sh(cmd, PYTHONPATH=str(plugins_dir(ctx)), **env))


def p02(run) -> Verdict:
    listed = run.out + run.err
    ok = run.rc == 0 and all(s in listed for s in ("SystemExit: 3", "RuntimeError", "ModuleNotFoundError"))
    return ok, f"exit {run.rc}; lists SystemExit/RuntimeError/ModuleNotFoundError: {ok}"


def p05(ctx: Ctx) -> Verdict:
    listed = ctx.sh("nlpsuite plugins", PYTHONPATH=str(plugins_dir(ctx)))
    works = ctx.sh("nlpsuite sentiment 'A lovely film.' --json", PYTHONPATH=str(plugins_dir(ctx)))
    text = listed.out + listed.err
    ok = "already taken" in text and works.rc == 0 and '"positive"' in works.out
    return ok, f"plugins says 'already taken': {'already taken' in text}; built-in sentiment exit {works.rc}"


PLUGINS = "tests/test_plugins.py::"


PLUGIN_CASES = [
    Case(
        "P01",
        "broken plugins installed (import error, hook error, sys.exit at import): sentiment",
        lambda ctx: with_plugins(ctx, "nlpsuite sentiment 'A lovely film.'", lambda r: answered(r, "positive")),
        PLUGINS + "test_broken_plugins_are_reported_and_skipped",
    ),
    Case(
        "P02",
        "the same: nlpsuite plugins",
        lambda ctx: with_plugins(ctx, "nlpsuite plugins", p02),
        PLUGINS + "test_broken_plugins_are_reported_and_skipped",
    ),
    Case(
        "P03",
        "the same with NLPSUITE_STRICT_PLUGINS=1: sentiment",
        lambda ctx: with_plugins(
            ctx, "nlpsuite sentiment 'A lovely film.'", lambda r: refused(r, "plugin"), NLPSUITE_STRICT_PLUGINS="1"
        ),
        PLUGINS + "test_strict_mode_turns_plugin_failures_into_errors",
    ),
    Case(
        "P04",
        "the same: nlpsuite half-registered (a task of the plugin whose later hook failed)",
        lambda ctx: with_plugins(
            ctx,
            "nlpsuite half-registered x",
            lambda r: (r.rc == 2 and "No such command" in r.err, f"exit {r.rc}, {r.last!r}"),
        ),
        PLUGINS + "test_a_failing_plugin_registers_nothing",
    ),
    Case(
        "P05",
        "a plugin registering task 'sentiment' and command 'generate'",
        p05,
        PLUGINS + "test_name_clashes_are_refused",
    ),
    Case(
        "P06",
        "a plugin module that is 'import sys; sys.exit(3)': nlpsuite plugins; sentiment",
        lambda ctx: with_plugins(
            ctx,
            "nlpsuite plugins && nlpsuite sentiment 'A lovely film.'",
            lambda r: answered(r, "SystemExit: 3", "positive"),
        ),
        PLUGINS + "test_a_plugin_that_exits_at_import_is_reported_and_skipped",
    ),
]


CASES = PLUGIN_CASES
