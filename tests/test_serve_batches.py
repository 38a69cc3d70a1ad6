"""OpenAI's Batch and Files APIs on `nlpsuite serve` (tiny random model), driven by the official `openai` SDK:
answers equal what the same requests get one by one, errors land in the error file, cancel stops a batch, and
a server killed with SIGKILL in the middle of a batch finishes it after a restart with every line answered once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import test_serve
from test_serve import KEY, free_port, model_id, wait_healthy

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.shared_cache

server, client, tiny = test_serve.server, test_serve.client, test_serve.tiny  # the module's fixtures, here too


def jsonl(lines: list[dict]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def chat_lines(model: str, n: int, max_tokens: int = 8) -> list[dict]:
    texts = ["hello world", "the quick brown fox", "café 東京", "numbers like 1 2 3", "a small model speaks"]
    return [
        {"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": model, "messages": [{"role": "user", "content": texts[i % len(texts)] + f" {i}"}],
                  "max_tokens": max_tokens, "temperature": 0}}
        for i in range(n)
    ]  # fmt: skip


def wait_for(client, batch_id: str, statuses: tuple[str, ...], seconds: float = 180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} is still {batch.status} after {seconds} s")


def answers(client, file_id: str) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line.strip()]


def test_a_batch_answers_each_line_as_the_endpoint_does(client, server):
    lines = chat_lines(model_id(server), 6)
    lines.append({**lines[0], "custom_id": "wrong-model", "body": {**lines[0]["body"], "model": "gpt-4"}})
    uploaded = client.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(jsonl(lines))
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"who": "test"})  # fmt: skip
    assert batch.status in ("validating", "in_progress") and batch.metadata == {"who": "test"}
    done = wait_for(client, batch.id, ("completed", "failed"))
    assert done.status == "completed", done.errors
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (7, 6, 1)
    got = {a["custom_id"]: a for a in answers(client, done.output_file_id)}
    assert sorted(got) == sorted(line["custom_id"] for line in lines[:6])
    for line in lines[:6]:
        alone = client.chat.completions.create(**line["body"])
        body = got[line["custom_id"]]["response"]["body"]
        assert got[line["custom_id"]]["response"]["status_code"] == 200
        assert body["choices"][0]["message"]["content"] == alone.choices[0].message.content
        assert body["usage"]["completion_tokens"] == alone.usage.completion_tokens
    (failed,) = answers(client, done.error_file_id)
    assert failed["custom_id"] == "wrong-model" and failed["response"]["status_code"] == 404
    assert failed["response"]["body"]["error"]["code"] == "model_not_found"
    assert batch.id in [b.id for b in client.batches.list(limit=100)]
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"


def test_embeddings_batch(client, server):
    lines = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": model_id(server), "input": text, "encoding_format": "float"}}
             for i, text in enumerate(["hello world", "東京"])]  # fmt: skip
    uploaded = client.files.create(file=("e.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    done = wait_for(client, batch.id, ("completed", "failed"))
    got = {a["custom_id"]: a["response"]["body"]["data"][0]["embedding"] for a in answers(client, done.output_file_id)}
    want = server.suite.head("embedding")(["hello world", "東京"])
    for i in range(2):
        assert got[f"e{i}"] == pytest.approx(want[i].tolist(), abs=1e-5)


def test_a_bad_input_file_fails_the_batch_naming_the_line(client, server):
    lines = chat_lines(model_id(server), 2)
    lines[1]["custom_id"] = lines[0]["custom_id"]
    uploaded = client.files.create(file=("twice.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = wait_for(client, batch.id, ("completed", "failed"))
    assert done.status == "failed" and "line 2" in done.errors.data[0].message


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"endpoint": "/v1/images/generations"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "file-000000000000000000000000"}, "file_id"),
    ],
)
def test_bad_batch_requests_are_refused(client, server, kwargs, param):
    uploaded = client.files.create(file=("ok.jsonl", jsonl(chat_lines(model_id(server), 1))), purpose="batch")
    given = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions", "completion_window": "24h", **kwargs}
    with pytest.raises(openai.APIStatusError) as caught:
        client.batches.create(**given)
    assert caught.value.status_code in (400, 404) and caught.value.body["param"] == param


def test_cancel_stops_a_batch_and_keeps_what_was_answered(client, server):
    lines = chat_lines(model_id(server), 40, max_tokens=60)
    uploaded = client.files.create(file=("long.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(client, batch.id, ("cancelled",))
    assert done.request_counts.completed < 40
    ids = [a["custom_id"] for a in answers(client, done.output_file_id)]
    assert len(ids) == len(set(ids)) == done.request_counts.completed
    with pytest.raises(openai.APIStatusError) as caught:
        client.batches.retrieve("batch_" + "0" * 24)
    assert caught.value.status_code == 404


def test_a_finished_batch_cannot_be_cancelled(client, server):
    uploaded = client.files.create(file=("one.jsonl", jsonl(chat_lines(model_id(server), 1))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    wait_for(client, batch.id, ("completed",))
    with pytest.raises(openai.APIStatusError) as caught:
        client.batches.cancel(batch.id)
    assert caught.value.status_code == 409


def test_a_killed_server_finishes_the_batch_after_a_restart_answering_each_line_once(tiny, tiny_cache, server):
    total = 30
    env = {**os.environ, "NLPSUITE_HOME": str(tiny_cache), "NLPSUITE_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    args = [sys.executable, "-m", "nlpsuite", "serve", "--model", str(tiny), "--device", "cpu", "--port", str(port)]
    done, got = killed_midway([*args, "--max-batch", "4"], env, port, tiny_cache, total, kill_after=5, max_tokens=40)
    ids = [a["custom_id"] for a in got]
    assert sorted(ids) == sorted(f"line-{i}" for i in range(total))  # every line, each exactly once
    assert done.request_counts.completed == total and done.request_counts.failed == 0


def killed_midway(args, env, port, home, total: int, kill_after: int, max_tokens: int, waits=(90, 60, 120, 10, 300)):
    """Serve (``args``), send a ``total``-line chat batch, kill -9 the server once ``kill_after`` lines are answered
    (and before the last), serve again: (the finished batch, its answers). ``waits``: the seconds allowed to start,
    for one HTTP call, to answer ``kill_after`` lines, to die and to finish (a real model is slower than the tiny
    one)."""
    start_s, call_s, progress_s, kill_s, finish_s = waits

    def start():
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(port, start_s)
        return proc

    proc = start()
    try:
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=call_s)
        model = sdk.models.list().data[0].id
        lines = jsonl(chat_lines(model, total, max_tokens=max_tokens))
        uploaded = sdk.files.create(file=(f"kill-{total}.jsonl", lines), purpose="batch")
        batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + progress_s
        while sdk.batches.retrieve(batch.id).request_counts.completed < kill_after:
            assert time.monotonic() < deadline, "the batch made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=kill_s)
        assert sdk_counts(home, batch.id) < total  # killed in the middle, not after the end
        proc = start()
        done = wait_for(sdk, batch.id, ("completed",), seconds=finish_s)
        return done, answers(sdk, done.output_file_id)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=kill_s)


def sdk_counts(home, batch_id: str) -> int:
    """How many answers the killed server's output file holds (read from disk: no server is up)."""
    batch = json.loads((home / "state" / "serve" / "batches" / f"{batch_id}.json").read_text())
    path = home / "state" / "serve" / "files" / f"{batch['files']['output']}.jsonl"
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
