"""Batch output: never an input field overwritten, the text from any column, refused records skipped on request,
one writer per output (a lock that dies with its process), memory bounded by the batch, progress off a terminal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest

from nlpsuite.errors import NlpsuiteError


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def label(records):
    return [{"label": "long" if len(r["text"]) > 3 else "short", "score": 0.5} for r in records]


def run_batch(*args, **kwargs):
    from nlpsuite.cli.batch import run_batch

    return run_batch(*args, **kwargs)


def Layout(**kwargs):  # noqa: N802 - stands for the class
    from nlpsuite.batch import Layout

    return Layout(**kwargs)


def upper(records):
    return [{"upper": r["text"].upper()} for r in records]


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_output_field_that_would_overwrite_an_input_field_is_refused_before_any_work(tmp_path):
    src = tmp_path / "tickets.csv"
    src.write_text("text,label\nwhere is my parcel,shipping\nreset my password,login\n", encoding="utf-8")
    out, calls = tmp_path / "out.jsonl", []
    with pytest.raises(NlpsuiteError) as refused:
        run_batch(src, out, lambda rs: calls.append(rs) or label(rs), ["label", "score"], quiet=True)
    message = str(refused.value)
    assert message.endswith(
        "tickets.csv:2: the record already has 'label', which batch output would overwrite: add --output-prefix to "
        "rename what the task adds (--output-prefix pred_ writes pred_label, pred_score)"
    )
    assert not calls and not out.exists()  # before any work, and no empty output left


def test_output_prefix_keeps_the_gold_labels_beside_the_predictions(tmp_path):
    src = tmp_path / "tickets.csv"
    src.write_text("text,label\nwhere is my parcel,shipping\nhi,greeting\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    layout = Layout(prefix="pred_")
    prefixed = lambda rs: [{"pred_" + k: v for k, v in f.items()} for f in label(rs)]  # noqa: E731
    run_batch(src, out, prefixed, layout.added(["label", "score"]), layout, quiet=True)
    assert rows(out) == [
        {"text": "where is my parcel", "label": "shipping", "pred_label": "long", "pred_score": 0.5},
        {"text": "hi", "label": "greeting", "pred_label": "short", "pred_score": 0.5},
    ]


def test_the_text_can_come_from_any_column(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text("review,stars\nlovely,5\nno,1\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(NlpsuiteError, match=r"has no column 'text' \(its columns: review, stars\); --text-column NAME"):
        run_batch(src, out, label, ["label", "score"], quiet=True)
    layout = Layout(text_column="review")
    upper = lambda rs: [{"upper": r["review"].upper()} for r in rs]  # noqa: E731
    run_batch(src, out, upper, ["upper"], layout, quiet=True)
    assert [r["upper"] for r in rows(out)] == ["LOVELY", "NO"]


@pytest.mark.shared_cache
def test_interrupting_a_batch_says_how_to_resume(cli, tiny_llama, tmp_path, monkeypatch):
    import nlpsuite.batch

    src = write(tmp_path / "in.jsonl", [{"text": f"t{i}"} for i in range(5)])
    out = tmp_path / "out.jsonl"
    real, calls = nlpsuite.batch.run_records, []

    def ctrl_c_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nlpsuite.batch, "run_records", ctrl_c_on_the_second_batch)
    args = ["generate", "--input", str(src), "--output", str(out), "--batch-size", "2", "-n", "2", "--quiet"]
    got = cli([*args, "--model", str(tiny_llama)])
    assert got.code == 130, got.err
    assert got.err.strip() == f"interrupted: 2 of 5 records are in {out}; run the same command to resume"
    assert len(rows(out)) == 2


class Refusing:
    """A stand-in task whose run() refuses some texts, as a real task refuses an over-long one."""

    name, batch_names, output, inputs = "fake", {}, ("label",), ()

    def batch_inputs(self, records, shared, text_column="text"):
        return [{"text": r[text_column]} for r in records]

    def batch_fields(self, result):
        return {"label": result["label"]}

    def run(self, suite, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if any(i["text"] == "too long" for i in inputs):
            raise NlpsuiteError("the text is 9999 tokens; label tasks read at most 2048: split it")
        return [{"label": i["text"].upper()} for i in inputs]


def test_skipping_writes_refused_records_with_an_error_field_and_counts_them(tmp_path):
    from nlpsuite import batch

    texts = ["fine", "", "too long", "\u200b", "good"]
    src = write(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    out, task = tmp_path / "out.jsonl", Refusing()
    layout = Layout(on_error="skip")

    def process(records):
        return batch.run_records(task, None, records, {}, {}, layout)

    summary = run_batch(src, out, process, layout.added(["label"]), layout, batch_size=5, quiet=True)
    assert (summary.written, summary.skipped) == (5, 3)
    assert rows(out) == [
        {"id": 0, "text": "fine", "label": "FINE"},
        {"id": 1, "text": "", "error": "'text' is empty"},
        {"id": 2, "text": "too long", "error": "the text is 9999 tokens; label tasks read at most 2048: split it"},
        {"id": 3, "text": "\u200b", "error": "'text' is empty"},
        {"id": 4, "text": "good", "label": "GOOD"},
    ]
    with pytest.raises(NlpsuiteError, match=r"in\.jsonl:2: 'text' is empty$"):  # stop (the default) stops first
        run_batch(src, tmp_path / "stop.jsonl", process, ["label"], quiet=True)


HOLD = """
import fcntl, os, sys, time
folder = sys.argv[2] == "folder"
if folder:
    os.makedirs(sys.argv[1], exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDONLY if folder else os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)  # what a writer holds while it writes
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def holder(path, seconds=120, folder=False):
    """Another process that holds the lock of ``path`` (as a second nlpsuite run would), once it says so."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(path), "folder" if folder else "file", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_of_the_same_output_is_refused_naming_the_first_and_kill_9_leaves_no_stale_lock(tmp_path):
    src = write(tmp_path / "in.jsonl", [{"text": f"t{i}"} for i in range(12)])
    out = tmp_path / "out.jsonl"
    other = holder(out)
    try:
        with pytest.raises(NlpsuiteError) as refused:
            run_batch(src, out, label, ["label", "score"], quiet=True)
        assert str(refused.value) == (
            f"{out} is being written by another nlpsuite run (process {other.pid}): wait for it to end, "
            "or add --wait to start when it does"
        )
        assert out.read_text() == ""  # nothing appended beside the other run's records
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert run_batch(src, out, label, ["label", "score"], quiet=True).written == 12  # the lock died with it
    assert [r["text"] for r in rows(out)] == [f"t{i}" for i in range(12)]


def test_wait_starts_when_the_other_writer_ends(tmp_path, capsys):
    src = write(tmp_path / "in.jsonl", [{"text": "a"}])
    out = tmp_path / "out.jsonl"
    other = holder(out, seconds=1)
    started = time.monotonic()
    assert run_batch(src, out, label, ["label", "score"], quiet=True, wait=True).written == 1
    assert time.monotonic() - started > 0.2 and other.wait() == 0
    assert f"waiting: {out} is being written by another nlpsuite run (process {other.pid})" in capsys.readouterr().err


def test_an_index_has_one_writer_too(tmp_path, monkeypatch):
    from nlpsuite.retrieval import index

    monkeypatch.setenv("NLPSUITE_HOME", str(tmp_path / "home"))
    folder = index.index_dir("docs")
    other = holder(folder, folder=True)
    try:
        with pytest.raises(NlpsuiteError, match=rf"^index 'docs' is being written by .* \(process {other.pid}\)"):
            index.update("docs", {"key": "m", "precision": "fp32", "embedding": "e"}, lambda current: None)
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()


@pytest.mark.shared_cache
def test_a_labelled_csv_keeps_its_gold_labels(cli, tiny_llama, tmp_path):
    src = tmp_path / "tickets.csv"
    src.write_text("text,label\nwhere is my parcel,shipping\nreset my password,login\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["classify", "--input", str(src), "--output", str(out), "--labels", "shipping,login", "-q"]
    refused = cli([*args, "--model", str(tiny_llama)])
    assert refused.code == 1 and not out.exists()
    assert refused.err.startswith(f"error: {src}:2: the record already has 'label', which batch output would")
    assert cli([*args, "--model", str(tiny_llama), "--output-prefix", "pred_"]).code == 0
    assert [(r["label"], "pred_label" in r) for r in rows(out)] == [("shipping", True), ("login", True)]


@pytest.mark.shared_cache
def test_a_second_cli_run_on_the_same_output_is_refused(cli, tiny_llama, tmp_path):
    src = write(tmp_path / "in.jsonl", [{"id": i, "text": f"t{i}"} for i in range(3)])
    out = tmp_path / "out.jsonl"
    other = holder(out)
    try:
        args = ["generate", "--input", str(src), "--output", str(out), "--model", str(tiny_llama), "-n", "2", "-q"]
        got = cli(args)
        assert got.code == 1 and got.err.strip() == (
            f"error: {out} is being written by another nlpsuite run (process {other.pid}): wait for it to end, "
            "or add --wait to start when it does"
        )
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    again = cli(args)
    assert again.code == 0, again.err
    assert [r["id"] for r in rows(out)] == [0, 1, 2]


def test_batch_input_is_read_as_a_stream(tmp_path):
    n = 20_000
    src = tmp_path / "big.jsonl"
    with open(src, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": i, "text": f"record number {i} " + "x" * 400}) + "\n")
    size = src.stat().st_size  # about 9 MB: held whole, as JSON objects, it takes several times that
    run_batch(write(tmp_path / "warm.jsonl", [{"text": "a"}]), tmp_path / "warm.out.jsonl", upper, quiet=True)
    tracemalloc.start()  # after the modules are imported: only the run is measured
    try:
        count = lambda rs: [{"n": len(r["text"])} for r in rs]  # noqa: E731
        run_batch(src, tmp_path / "out.jsonl", count, batch_size=64, quiet=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows(tmp_path / "out.jsonl")) == n
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte input"


def test_long_work_reports_progress_in_plain_lines_when_stderr_is_no_terminal(tmp_path, capsys, monkeypatch):
    from nlpsuite.cli.progress import Lines

    monkeypatch.setattr(Lines, "FIRST", 0.0)
    monkeypatch.setattr(Lines, "EVERY", 0.0)
    src = write(tmp_path / "in.jsonl", [{"text": f"t{i}"} for i in range(4)])
    run_batch(src, tmp_path / "out.jsonl", label, ["label", "score"], batch_size=2, label="labelling")
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "labelling 0/4 (0%)",
        "labelling 2/4 (50%)",
        "labelling 4/4 (100%)",
    ]


def test_a_long_silent_step_still_says_it_is_working(capsys, monkeypatch):
    from nlpsuite.cli.progress import Lines

    monkeypatch.setattr(Lines, "QUIET", 0.5)
    lines = Lines("summarizing")
    lines(0, 3)
    time.sleep(2.2)
    lines.close()
    said = capsys.readouterr().err.splitlines()
    assert said and all(line.startswith("summarizing 0/3 (0%) 0:00:0") for line in said)
    assert said[0].endswith(" still working")


def test_the_lock_file_is_the_output_itself(tmp_path):
    src = write(tmp_path / "in.jsonl", [{"text": "a"}])
    run_batch(src, tmp_path / "out.jsonl", label, ["label", "score"], quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no .lock beside it


def test_a_full_disk_names_the_output_it_could_not_write(tmp_path, monkeypatch):
    import errno

    from nlpsuite.records import write

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")

    def full(_fd):  # where a full disk is met when the batch is made durable
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(write.os, "fsync", full)
    out = tmp_path / "out.jsonl"
    with pytest.raises(OSError) as failed:
        run_batch(src, out, upper, quiet=True)
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(out)  # the one line names it
