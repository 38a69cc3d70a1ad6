"""The task contract: a scripted task declared once gets every front-end (CLI, batch, REPL, eval, Suite.run).

No model is needed: the task's run() is a script, and the suite the CLI opens is a stand-in.
"""

from __future__ import annotations

import io
import json
import types

import pytest

from nlpsuite.errors import NlpsuiteError
from nlpsuite.hookspecs import hookimpl
from nlpsuite.tasks import Eval, Input, Option, Task

CALLS: list[dict] = []


def shout(suite, inputs, times=1, style="plain", words=None, loud=False):
    CALLS.append({"inputs": inputs, "times": times, "style": style, "words": words, "loud": loud})
    suite.progress(0, len(inputs))
    out = []
    for i in inputs:
        text = (i["text"].upper() if loud else i["text"]) * times
        out.append({"shout": text, "length": len(text), "note": i.get("note"), "detail": "only in --json"})
        suite.progress(1)
    return out


def _score(predictions, gold, options):
    return {"exact": sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold)}


SHOUT = Task(
    "shout",
    "Repeat a text.",
    "generation",
    shout,
    inputs=(Input("text", "What to repeat"), Input("note", "A note", optional=True, file=True)),
    options=(
        Option("times", int, 1, "How many times.", short="-x", min=1, max=5),
        Option("style", str, "plain", "How.", choices=("plain", "fancy")),
        Option("words", list, None, "Comma-separated words."),
        Option("loud", bool, False, "Upper case."),
    ),
    output=("shout", "length"),
    value="shout",
    eval=Eval("shouting", {"text": "text"}, "gold", _score),
)


class StandIn:
    """What the CLI's open_suite returns here: no backbone, just the parts a scripted task touches."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.source = types.SimpleNamespace(key="stand-in")
        self.progress = lambda _n=0, total=None: None

    def run(self, name, input, **kwargs):
        return self.registry.tasks[name].call(self, input, **kwargs)


@pytest.fixture
def shouting(monkeypatch):
    from nlpsuite import plugins
    from nlpsuite.cli import options

    plugin = types.SimpleNamespace(register_tasks=hookimpl(lambda register: register(SHOUT)))
    loader = plugins.PluginLoader()
    loader.load(include_entry_points=False)
    assert loader.add_module("shouting", plugin).error is None
    monkeypatch.setattr(plugins, "_REGISTRY", loader.registry)
    opened = []
    monkeypatch.setattr(options, "open_suite", lambda *a, **k: opened.append(a) or StandIn(loader.registry))
    CALLS.clear()
    return opened


def test_cli_argument_stdin_file_and_json(cli, shouting, tmp_path):
    assert cli(["shout", "hey", "-x", "2"]).out == "heyhey\n"
    assert cli(["shout", "--times", "2"], stdin=b"hey\n").out == "heyhey\n"  # a trailing newline is not text
    (tmp_path / "t.txt").write_text("hey\n", encoding="utf-8")
    assert cli(["shout", "--file", str(tmp_path / "t.txt"), "--loud"]).out == "HEY\n"
    data = json.loads(cli(["shout", "hey", "--json", "--note", "n"]).out)
    assert data == {"shout": "hey", "length": 3, "note": "n", "detail": "only in --json"}
    assert CALLS[-1]["times"] == 1 and CALLS[-1]["style"] == "plain"  # declared defaults
    assert json.loads(cli(["shout", "hey", "--json", "--words", "a, b"]).out)["shout"] == "hey"
    assert CALLS[-1]["words"] == ["a", "b"]


def test_a_file_input_takes_text_a_file_or_stdin(cli, shouting, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("from a file", encoding="utf-8")
    assert json.loads(cli(["shout", "hey", "--note", str(note), "--json"]).out)["note"] == "from a file"
    assert json.loads(cli(["shout", "hey", "--note", "-", "--json"], stdin=b"from stdin\n").out)["note"] == "from stdin"
    missing = cli(["shout", "hey", "--note", "nope.txt"])
    assert missing.code == 1 and "cannot read nope.txt: no such file" in missing.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shout", "hey", "-x", "9"], "error: --times must be between 1 and 5"),
        (["shout", "hey", "--style", "odd"], "error: --style must be one of: plain, fancy"),
        (["shout", ""], "error: empty text"),
        (["shout", "hey", "--input", "in.jsonl"], "error: batch mode needs both --input and --output"),
        (["shout", "hey", "--batch-size", "0"], "error: --batch-size must be at least 1"),
    ],
)
def test_bad_options_are_one_line_before_any_model(cli, shouting, args, message):
    got = cli(args)
    assert got.code == 1 and got.err.strip() == message
    assert not shouting  # refused before a suite was opened


def test_batch_mode_resumes_refuses_foreign_output_and_writes_to_stdout(cli, shouting, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate("abcde")), encoding="utf-8")
    out.write_text(json.dumps({"text": "a", "id": 0, "shout": "kept", "length": 4}) + "\n", encoding="utf-8")
    got = cli(["shout", "--input", str(src), "--output", str(out), "--batch-size", "2", "-x", "2", "--json"])
    assert got.code == 0, got.err
    assert json.loads(got.out) == {"output": str(out), "written": 4, "skipped": 0, "model": "stand-in"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["shout"] for r in rows] == ["kept", "bb", "cc", "dd", "ee"]
    assert set(rows[1]) == {"text", "id", "shout", "length"}  # the output fields, not the --json detail
    assert [len(c["inputs"]) for c in CALLS] == [2, 2]

    precious = tmp_path / "notes.md"
    precious.write_text("# my notes\n", encoding="utf-8")
    refused = cli(["shout", "--input", str(src), "--output", str(precious)])
    assert refused.code == 1 and "is not an earlier output of this input: --force overwrites it" in refused.err
    assert precious.read_text() == "# my notes\n"
    assert cli(["shout", "--input", str(src), "--output", str(precious), "--force"]).code == 0
    assert len(precious.read_text().splitlines()) == 5

    to_stdout = cli(["shout", "--input", str(src), "--output", "-"])
    assert [json.loads(line)["shout"] for line in to_stdout.out.splitlines()] == list("abcde")


def test_batch_records_bring_their_own_later_inputs(cli, shouting, tmp_path):
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text("text,note\nhey,mine\nyo,\n", encoding="utf-8")
    assert cli(["shout", "--input", str(src), "--output", str(out), "--note", "shared"]).code == 0
    assert [i["note"] for i in CALLS[-1]["inputs"]] == ["mine", ""]


def test_suite_run_str_in_str_out_list_in_list_out(shouting):
    from nlpsuite import plugins

    suite = StandIn(plugins.registry())
    assert suite.run("shout", "hey", times=2) == "heyhey"
    assert suite.run("shout", ["a", "b"], loud=True) == ["A", "B"]
    assert suite.run("shout", ["a", "b"], note=["x", "y"]) == ["a", "b"]
    assert [i["note"] for i in CALLS[-1]["inputs"]] == ["x", "y"]
    assert suite.run("shout", []) == []
    with pytest.raises(NlpsuiteError, match="shout has no option 'volume'"):
        suite.run("shout", "hey", volume=3)
    with pytest.raises(NlpsuiteError, match="--times must be between 1 and 5"):
        suite.run("shout", "hey", times=0)
    with pytest.raises(NlpsuiteError, match="give one note per text"):
        suite.run("shout", ["a", "b"], note=["x"])


def test_repl_task_checks_options_when_set(shouting):
    from nlpsuite import plugins
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    suite = StandIn(plugins.registry())
    script = "/task shout --times 9\n/task shout --volume 3\n/task shout -x 2 --loud --note n\nhey\n"
    out = io.StringIO()
    repl = ChatRepl(suite, SamplingParams(), json=True, stdin=io.StringIO(script), stdout=out)
    repl.run()
    assert json.loads(out.getvalue().splitlines()[-1]) == {
        "shout": "HEYHEY",
        "length": 6,
        "note": "n",
        "detail": "only in --json",
    }
    assert len(CALLS) == 1  # the two bad /task lines were refused at /task, not on the next line


def test_repl_refuses_a_missing_required_option_at_task(tiny_llama):
    from nlpsuite.api import Suite
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    suite = Suite(model=str(tiny_llama))
    repl = ChatRepl(suite, SamplingParams(max_tokens=2), stdin=io.StringIO("/task translate\n"), stdout=io.StringIO())
    said = []
    repl.say = lambda text, error=False: said.append(text)
    repl.run()
    assert repl.task is None and said == ["error: --to is required: Target language: code (de) or name (German)."]


def test_eval_runs_any_declared_recipe(cli, shouting, tmp_path):
    data = tmp_path / "gold.jsonl"
    data.write_text(
        "".join(json.dumps({"text": t, "gold": g}) + "\n" for t, g in [("a", "aa"), ("b", "bb"), ("c", "x")]),
        encoding="utf-8",
    )
    report = json.loads(cli(["eval", "shouting", str(data), "--times", "2", "--json"]).out)
    assert report == {"task": "shouting", "n": 3, "metrics": {"exact": pytest.approx(2 / 3)}}
    assert json.loads(cli(["eval", "shout", str(data), "--json"]).out)["metrics"]["exact"] == 0  # by task name too
    opened = len(shouting)
    missing = cli(["eval", "shouting", str(tmp_path / "none.jsonl")])
    assert missing.code == 1 and "cannot read" in missing.err and len(shouting) == opened


def test_a_declaration_may_not_take_a_front_end_name():
    with pytest.raises(ValueError, match="may not name an input or option 'model'"):
        Task("bad", "", "generation", shout, options=(Option("model"),))


def test_the_front_end_names_are_every_task_commands_parameters_and_no_task_may_take_them():
    from nlpsuite.cli.taskcommand import signature
    from nlpsuite.tasks import FRONT_END_OPTIONS

    own = {i.name for i in SHOUT.inputs} | {o.name for o in SHOUT.options}
    assert {p.name for p in signature(SHOUT)} - own == set(FRONT_END_OPTIONS) - {"on_text"}
    for name in FRONT_END_OPTIONS:
        with pytest.raises(ValueError, match="every front-end has it"):
            Task("t", "A task.", "generation", shout, options=(Option(name),))


@pytest.mark.parametrize("typed", ["1e-5", "1000", "nan", "-1", "inf"])
def test_repl_temp_refuses_what_the_cli_refuses_in_its_words_and_keeps_the_value(shouting, cli, typed):
    from nlpsuite import plugins
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    repl = ChatRepl(StandIn(plugins.registry()), SamplingParams(temperature=0.7), stdin=io.StringIO())
    said = []
    repl.say = lambda text, error=False: said.append((text, error))
    assert repl.command(f"/temp {typed}")
    assert repl.params.temperature == 0.7
    refused = cli(["generate", "hi", "--temperature", typed])
    assert refused.code != 0 and refused.err.startswith("error: --temperature ")
    assert said == [(refused.err.strip(), True)]  # one line, the CLI's


def test_repl_temp_takes_what_the_cli_takes(shouting):
    from nlpsuite import plugins
    from nlpsuite.cli.repl import ChatRepl
    from nlpsuite.runtime.sampling import SamplingParams

    repl = ChatRepl(StandIn(plugins.registry()), SamplingParams(temperature=0.7), stdin=io.StringIO())
    said = []
    repl.say = lambda text, error=False: said.append((text, error))
    for typed, value in (("0", 0.0), ("0.0001", 1e-4), ("1.5", 1.5), ("100", 100.0)):
        repl.command(f"/temp {typed}")
        assert repl.params.temperature == value and said.pop() == (f"temperature {value}", False)
    repl.command("/temp warm")  # the CLI's parser refuses a word before the declaration sees it
    assert repl.params.temperature == 100.0 and said == [("error: --temperature takes a number", True)]


def test_a_display_hint_is_one_the_page_knows():
    with pytest.raises(ValueError, match="display must be one of"):
        Task("bad", "", "generation", shout, display="carousel")
    assert Task("fine", "", "generation", shout, display="beside").display == "beside"
