"""Help and errors read right: every command's and subcommand's --help (no value shown for a switch, no markup
eaten into stray text, no sentence said twice), only the options a command uses, did-you-mean for commands,
model names and languages, and -q that leaves only the result."""

from __future__ import annotations

import re

import pytest


def commands(cli) -> list[list[str]]:
    """Every command and subcommand path, read from the help of the root and of each group."""
    from nlpsuite.cli.app import build_command

    root = build_command()
    found = []

    def walk(path, group):
        import typer

        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None:
                continue
            found.append([*path, name])
            if getattr(command, "commands", None):
                walk([*path, name], command)

    walk([], root)
    return found


def test_every_command_is_walked_eval_subcommands_included(cli):
    paths = commands(cli)
    assert ["sentiment"] in paths and ["models", "pull"] in paths and ["index", "add"] in paths
    assert len([p for p in paths if p[0] == "eval"]) >= 7


def test_every_help_text_reads_right(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: a sentence is not cut across lines
    for path in [[], *commands(cli)]:
        got = cli([*path, "--help"])
        shown = got.out + got.err
        assert got.code == 0, (path, shown)
        where = " ".join(path) or "nlpsuite"
        assert "<bool>" not in shown, where  # a switch takes no value
        assert not re.search(r"<(str|int|float|path|list\[str\])>", shown), where
        assert not re.search(r"\S[ ]+\.(\s|$)", shown), (where, re.search(r".{30}\S[ ]+\.(\s|$)", shown))
        for line in shown.splitlines():
            sentences = [s.strip() for s in re.split(r"(?<=[.:])\s", line.strip(" │")) if len(s.strip()) > 15]
            assert len(sentences) == len(set(sentences)), (where, line)


@pytest.mark.parametrize("command", [["plugins"], ["doctor"], ["models", "list"], ["models", "rm"]])
def test_commands_offer_no_option_they_ignore(cli, command):
    shown = cli([*command, "--help"]).out
    assert "--device" not in shown and "--model" not in shown


@pytest.mark.parametrize("command", [["models", "pull"], ["models", "info"], ["models", "rm"], ["models", "verify"]])
def test_models_subcommands_take_the_name_once(cli, command):
    shown = cli([*command, "--help"]).out
    assert "--model" not in shown and "name" in shown


@pytest.mark.parametrize(
    "args, hint",
    [
        (["summarise", "x"], "No such command 'summarise'. Did you mean 'summarize'?"),
        (["models", "lst"], "Did you mean 'list'?"),
        (["sentiment", "x", "--model", "smolm2"], "error: unknown model 'smolm2'"),
        (["translate", "x", "--to", "Germna"], "error: unknown language 'Germna' for --to; did you mean 'German'?"),
        (["classify", "x", "--label", "a,b"], "--labels"),
    ],
)
def test_a_typo_gets_a_did_you_mean(cli, args, hint):
    got = cli(args)
    assert got.code in (1, 2) and hint in got.err
    if "unknown model" in hint:
        assert got.err.rstrip().endswith("; did you mean 'smollm2'?")


def test_classify_without_labels_says_what_it_needs(cli):
    got = cli(["classify", "the game went to overtime"])
    assert got.code == 1
    assert got.err.strip() == (
        "error: classify needs labels: give --labels a,b,... (zero-shot) or --head NAME (a trained probe)"
    )


@pytest.mark.shared_cache
def test_quiet_leaves_the_result_alone(cli, tiny_llama):
    tiny = ["--model", str(tiny_llama), "--labels", "sports,cooking"]
    got = cli(["classify", "a fine stew", *tiny, "-q"])
    assert got.code == 0 and got.out.strip() in ("sports", "cooking") and got.err == ""
    assert "probability" in cli(["classify", "a fine stew", *tiny]).out  # the table, without -q


def test_quiet_silences_warnings_too(tiny_llama, capsys):
    from nlpsuite.cli import options

    for quiet, said in ((True, ""), (False, "warning: the model knows English, not French\n")):
        suite = options.open_suite(str(tiny_llama), "cpu", quiet=quiet, load=False)
        suite.warn("the model knows English, not French")  # what a task says of a language the model lacks
        assert capsys.readouterr().err == said
