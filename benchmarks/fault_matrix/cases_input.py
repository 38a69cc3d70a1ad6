"""Inputs, options and outputs (B, M, E, O, N, T): the first matrix's cases as the second re-ran them."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from . import Case, Ctx, Verdict, clean, finish, kill_group, refused, simple, watch

CLI = "tests/test_cli.py::test_bad_input_is_one_line_and_exit_1"
CMDS = "tests/plugins/test_plugin_commands.py::test_bad_input_is_one_line"
RECORDS = "tests/test_records.py::test_errors_are_one_line_naming_file_line_and_column"
FIELDS = "tests/test_records.py::test_field_checks_name_the_line"
OPTIONS = "tests/test_contract.py::test_bad_options_are_one_line_before_any_model"


def interrupted(ctx: Ctx, cmd: str, after: float, within: float = 15, then: float = 0) -> tuple:
    """Start ``cmd``, SIGINT it after ``after`` s (again ``then`` s later if still running); (run, seconds from
    the first SIGINT to its end)."""
    proc = ctx.spawn(cmd)
    watch(proc, after)
    sent = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # bash passes nothing on: signal the group, as a terminal does
        kill_group(proc, signal.SIGINT)
    run = finish(proc, within + then)
    return run, time.monotonic() - sent


def b07(ctx: Ctx) -> Verdict:
    run, took = interrupted(ctx, "exec nlpsuite summarize --file data/big5mb.txt", after=60, within=30)
    progress = [line for line in run.err.splitlines() if "summariz" in line.lower()]
    ok = run.rc == 130 and took < 15 and bool(progress) and clean(run) is None
    return ok, f"exit {run.rc} {took:.1f} s after SIGINT; {len(progress)} progress lines; last: {run.last!r}"


def b13(ctx: Ctx) -> Verdict:
    run, took = interrupted(ctx, "exec nlpsuite translate --file data/nospace1mb.txt --to de", after=60, within=30)
    progress = [line for line in run.err.splitlines() if "translat" in line.lower()]
    ok = run.rc == 130 and took < 15 and bool(progress) and clean(run) is None
    return ok, f"exit {run.rc} {took:.1f} s after SIGINT; {len(progress)} progress lines; last: {run.last!r}"


def b38(ctx: Ctx) -> Verdict:
    run = ctx.sh('nlpsuite search base "Who named the river?" -k 1000000000 --json')
    if run.rc != 0:
        return False, f"exit {run.rc}: {run.last}"
    hits = json.loads(run.out)["results"]
    return "amazon" in hits[0]["source"], f"exit 0, {len(hits)} results, first {Path(hits[0]['source']).name}"


def b39(ctx: Ctx, generate: bool = False) -> Verdict:
    flag = " --generate" if generate else ""
    run = ctx.sh(f'nlpsuite ask "What is the population of Tokyo?" --context data/amazon.txt{flag} --json')
    if run.rc != 0:
        return False, f"exit {run.rc}: {run.last}"
    got = json.loads(run.out)
    ok = got["answer"] is None or got["score"] < 0.5
    return ok, f"exit 0, answer {got['answer']!r}, score {got['score']}"


def o01(ctx: Ctx) -> Verdict:
    (ctx.root / "pj.jsonl").unlink(missing_ok=True)
    run = ctx.sh("nlpsuite sentiment --input data/good.jsonl --output pj.jsonl --json")
    try:
        summary = json.loads(run.out)
    except ValueError:
        return False, f"exit {run.rc}, stdout is not JSON: {run.out[:80]!r}"
    return run.rc == 0 and summary.get("written") == 5, f"exit {run.rc}, stdout is the JSON summary {summary}"


def t03(ctx: Ctx) -> Verdict:
    (ctx.root / "important.md").write_text("# Important\n\nKeep me.\n")
    before = (ctx.root / "important.md").read_bytes()
    ok, said = refused(ctx.sh("nlpsuite sentiment --input data/good.jsonl --output important.md"), "--force")
    same = (ctx.root / "important.md").read_bytes() == before
    return ok and same, said + ("; file untouched" if same else "; FILE CHANGED")


def m02(ctx: Ctx) -> Verdict:
    (ctx.root / "m02.jsonl").unlink(missing_ok=True)
    proc = ctx.spawn("exec nlpsuite sentiment --input data/sent1mb.jsonl --output m02.jsonl --quiet")
    early = watch(proc, 20)
    late = watch(proc, 40)
    kill_group(proc, signal.SIGINT)
    finish(proc, 20)
    lines = len((ctx.root / "m02.jsonl").read_text().splitlines()) if (ctx.root / "m02.jsonl").exists() else 0
    return late < early * 1.2 + 50, f"RSS {early:.0f} MB by 20 s, {late:.0f} MB 20-60 s; {lines} records written"


def m03(ctx: Ctx) -> Verdict:
    proc = ctx.spawn("exec nlpsuite summarize --file data/big1mb.txt")
    early, late = watch(proc, 40), watch(proc, 50)
    kill_group(proc, signal.SIGINT)
    run = finish(proc, 20)
    progress = [line for line in run.err.splitlines() if "summariz" in line.lower()]
    ok = late < 3000 and bool(progress)
    return ok, f"RSS {early:.0f} MB by 40 s, {late:.0f} MB to 90 s; {len(progress)} progress lines on stderr"


def n01(ctx: Ctx) -> Verdict:
    proc = ctx.spawn("exec nlpsuite generate 'Tell me a long story.' --max-tokens 200")
    watch(proc, 12)
    import psutil

    try:
        sockets = [c for c in psutil.Process(proc.pid).net_connections(kind="inet")]
    except psutil.Error:
        sockets = []
    finish(proc, 120)
    return not sockets, f"{len(sockets)} inet sockets while generating"


def n02(ctx: Ctx) -> Verdict:
    telemetry = Path.home() / ".cache/Microsoft/DeveloperTools/.onnxruntime"
    before = telemetry.exists()
    run = ctx.sh("HOME=/proc/nonexistent nlpsuite generate Hi --max-tokens 4")
    after = telemetry.exists() and not before
    ok = run.rc == 0 and "telemetry" not in run.err.lower() and not after
    return ok, f"exit {run.rc}, new ~/.cache/Microsoft: {after}, stderr {run.err.strip()[:100]!r}"


def e04(ctx: Ctx) -> Verdict:
    run = ctx.sh("nlpsuite chat --max-tokens 12", stdin=b"What is the capital of France?\n\n\n/bogus\n")
    ok = run.rc == 0 and "Paris" in run.out and "unknown command /bogus" in run.out + run.err
    return ok, f"exit {run.rc}, {' '.join((run.out + run.err).split())[:150]!r}"


CASES = [
    simple("B01", 'nlpsuite sentiment ""', CMDS, says="empty text"),
    simple("B02", 'nlpsuite sentiment "   \t  "', CMDS, says="empty text"),
    simple("B03", "nlpsuite generate --file data/ws.txt", CLI, says="empty prompt"),
    simple("B04", "nlpsuite sentiment --file data/empty.txt", CMDS, says="empty text"),
    simple(
        "B05",
        "nlpsuite sentiment --file data/big5mb.txt",
        "tests/plugins/test_plugin_commands.py::test_one_megabyte_text_for_a_label_task_is_refused_plainly",
        says="split it",
    ),
    simple(
        "B06",
        "nlpsuite generate --file data/big5mb.txt --max-tokens 8",
        "tests/test_cli.py::test_prompt_longer_than_the_context_window_is_refused",
        says="context window",
    ),
    Case(
        "B07",
        "nlpsuite summarize --file data/big5mb.txt; SIGINT at 60 s",
        b07,
        "tests/test_interrupt.py::test_ctrl_c_during_a_long_summarize_exits_130_promptly",
        slow=True,
    ),
    simple(
        "B08",
        "nlpsuite sentiment --file data/binary.bin",
        "tests/plugins/test_plugin_commands.py::test_binary_file_is_refused",
        says="not UTF-8 text",
    ),
    simple(
        "B09",
        "nlpsuite sentiment --file data/latin1.txt",
        "tests/test_cli.py::test_prompt_from_a_file",
        says="not UTF-8 text",
    ),
    simple(
        "B10",
        "nlpsuite sentiment --file data/utf16.txt",
        "tests/test_cli.py::test_prompt_from_a_file",
        says="not UTF-8 text",
    ),
    simple(
        "B11",
        "nlpsuite sentiment --file data/nul.txt --json",
        "tests/plugins/test_plugin_commands.py::test_nul_bytes_in_a_text_are_text",
        expect=('"label"',),
    ),
    simple("B12", "printf 'caf\\xe9' | nlpsuite sentiment", CLI, says="not valid UTF-8 text"),
    Case(
        "B13",
        "nlpsuite translate --file data/nospace1mb.txt --to de; SIGINT at 60 s",
        b13,
        "tests/test_text.py::test_a_one_megabyte_line_without_spaces_is_cut_completely",
        slow=True,
    ),
    simple(
        "B14", "nlpsuite sentiment --input data/broken_mid.jsonl --output b14.jsonl", RECORDS, says="broken_mid.jsonl:3"
    ),
    simple(
        "B15",
        "nlpsuite sentiment --input data/missing_text.jsonl --output b15.jsonl",
        FIELDS,
        says="missing_text.jsonl:2",
    ),
    simple(
        "B16", "nlpsuite sentiment --input data/wrong_types.jsonl --output b16.jsonl", FIELDS, says="wrong_types.jsonl:"
    ),
    simple(
        "B17",
        "nlpsuite sentiment --input data/noheader.csv --output b17.jsonl",
        "tests/test_batch_output.py::test_the_text_can_come_from_any_column",
        says="has no column 'text'",
    ),
    simple(
        "B18",
        "nlpsuite sentiment --input data/u2028.jsonl --output - --json",
        "tests/test_records.py::test_jsonl_splits_on_newlines_only",
        expect=("label",),
    ),
    simple("B19", 'nlpsuite translate "Good morning." --to xx', CMDS, says="unknown language 'xx'"),
    simple("B20", 'nlpsuite classify "NASA probe reached Jupiter." --labels space', CMDS, says="two labels"),
    simple("B21", 'nlpsuite classify "NASA probe." --labels space,Space', CMDS, says="distinct"),
    simple(
        "B22",
        'nlpsuite classify "NASA probe." --labels ""',
        "tests/test_help.py::test_classify_without_labels_says_what_it_needs",
        says="label",
    ),
    simple("B23", 'nlpsuite classify "NASA probe." --labels "space,,hockey"', OPTIONS, says="a label is empty"),
    simple("B24", 'nlpsuite generate "Hi" --max-tokens -5', CLI, says="--max-tokens must be at least 1"),
    simple(
        "B25",
        'nlpsuite generate "Say hi." --max-tokens 1000000000 --json',
        "tests/test_cli.py::test_a_max_tokens_beyond_the_context_window_is_capped_by_it",
        expect=('"finish_reason"',),
    ),
    simple("B26", 'nlpsuite generate "Hi" --temperature nan', CLI, says="--temperature must be"),
    simple(
        "B27", 'nlpsuite generate "Hi" --temperature 1e308 --max-tokens 8 --seed 1', CLI, says="--temperature must be"
    ),
    simple(
        "B28", 'nlpsuite generate "Hi" --temperature 1e-320 --max-tokens 8 --seed 1', CLI, says="--temperature must be"
    ),
    simple(
        "B29",
        'nlpsuite generate "Hi" --repetition-penalty 1e-320 --max-tokens 8',
        CLI,
        says="--repetition-penalty must be",
    ),
    simple("B30", 'nlpsuite generate "Hi" --top-p 1.5', CLI, says="--top-p must be"),
    simple(
        "B31",
        'nlpsuite generate "Hi" --top-k -3',
        "tests/test_sampling.py::test_the_sampling_options_and_sampling_params_accept_exactly_the_same_values",
        says="--top-k",
    ),
    simple("B32", 'nlpsuite generate "Hi" --model no-such-model', CLI, says="unknown model"),
    simple(
        "B33",
        'nlpsuite generate "Hi" --model data/does/not/exist',
        "tests/test_store.py::test_unknown_models_are_clear_errors",
        says="unknown model",
    ),
    simple(
        "B34",
        'nlpsuite generate "Hi" --model data/notamodel',
        "tests/test_store.py::test_unknown_models_are_clear_errors",
        says="holds no",
    ),
    simple(
        "B35",
        'nlpsuite generate "Hi" --model someone/not-a-real-model-xyz',
        "tests/test_cli.py::test_hub_id_offline_says_how_to_use_a_local_path",
        says="could not fetch",
    ),
    simple(
        "B36",
        'nlpsuite search nosuchindex "river"',
        "tests/test_retrieval.py::test_rm_and_missing_index",
        says="no index named",
    ),
    simple(
        "B37",
        'nlpsuite search base "river" -k 0',
        "tests/test_retrieval.py::test_cli_json_schemas_and_batch_mode",
        says="at least 1",
    ),
    Case(
        "B38",
        'nlpsuite search base "Who named the river?" -k 1000000000 --json',
        b38,
        "tests/test_retrieval.py::test_cli_json_schemas_and_batch_mode",
    ),
    Case(
        "B39",
        'nlpsuite ask "What is the population of Tokyo?" --context data/amazon.txt --json',
        b39,
        "tests/e2e/test_e2e_tasks.py::test_ask_says_when_the_context_has_no_answer",
    ),
    Case(
        "B40",
        "the same with --generate",
        lambda ctx: b39(ctx, generate=True),
        "tests/plugins/test_plugin_qa.py::test_a_generated_answer_to_what_the_text_never_mentions_is_null_or_unsure",
    ),
    simple(
        "M01",
        "nlpsuite sentiment --file data/big1mb.txt",
        "tests/plugins/test_plugin_commands.py::test_one_megabyte_text_for_a_label_task_is_refused_plainly",
        says="split it",
    ),
    Case(
        "M02",
        "nlpsuite sentiment --input data/sent1mb.jsonl --output m02.jsonl --quiet; RSS for 60 s",
        m02,
        "tests/test_batch_output.py::test_batch_input_is_read_as_a_stream",
        slow=True,
    ),
    Case(
        "M03",
        "nlpsuite summarize --file data/big1mb.txt; RSS for 90 s, then SIGINT",
        m03,
        "tests/test_batch_output.py::test_long_work_reports_progress_in_plain_lines_when_stderr_is_no_terminal",
        slow=True,
    ),
    simple(
        "E01",
        'nlpsuite generate "Hi" --device cuda',
        "tests/test_cli.py::test_cuda_without_a_gpu_fails_before_any_conversion",
        says="--device cuda is not usable",
    ),
    simple(
        "E02",
        'NLPSUITE_THREADS=abc nlpsuite generate "Hi"',
        "tests/test_cli.py::test_usage_errors_print_usage_not_a_traceback",
        says="NLPSUITE_THREADS must be a whole number",
    ),
    simple(
        "E03",
        "nlpsuite eval sentiment data/evalbad.jsonl",
        "tests/test_eval.py::test_bad_input_is_one_line_and_exit_1",
        says="evalbad.jsonl:3",
    ),
    Case(
        "E04",
        "printf 'What is the capital of France?\\n\\n\\n/bogus\\n' | nlpsuite chat --max-tokens 12",
        e04,
        "tests/test_cli.py::test_chat_repl_scripted_through_stdin",
    ),
    Case(
        "O01",
        "nlpsuite sentiment --input data/good.jsonl --output pj.jsonl --json | python -m json.tool",
        o01,
        "tests/test_contract.py::test_batch_mode_resumes_refuses_foreign_output_and_writes_to_stdout",
    ),
    Case(
        "N01",
        "nlpsuite generate (200 tokens) running: its inet sockets",
        n01,
        "tests/test_filesystem.py::test_onnx_runtime_writes_nothing_into_home",
    ),
    Case(
        "N02",
        "HOME=/proc/nonexistent nlpsuite generate Hi; ~/.cache/Microsoft",
        n02,
        "tests/test_filesystem.py::test_onnx_runtime_writes_nothing_into_home",
    ),
    simple(
        "T01",
        "nlpsuite index add ../../etc data/amazon.txt",
        "tests/test_retrieval.py::test_bad_files_and_queries_are_one_line_errors",
        says="bad index name",
    ),
    simple(
        "T02",
        "nlpsuite classify x --head ../../fp32",
        "tests/plugins/test_plugin_heads.py::test_probe_names_and_single_label_data",
        says="bad head name",
    ),
    Case(
        "T03",
        "nlpsuite sentiment --input data/good.jsonl --output important.md (an existing Markdown file)",
        t03,
        "tests/test_contract.py::test_batch_mode_resumes_refuses_foreign_output_and_writes_to_stdout",
    ),
]
