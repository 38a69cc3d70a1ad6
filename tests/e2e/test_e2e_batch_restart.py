"""The Batch API's promise on the real default model at the size the issue names: `kill -9` the server in the middle
of a 200-line batch, start it again, and the batch completes with every line answered exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from test_serve import KEY, free_port, wait_healthy
from test_serve_batches import answers, chat_lines, jsonl, sdk_counts, wait_for

openai = pytest.importorskip("openai")

TOTAL = 200


def test_a_200_line_batch_survives_kill_9_and_answers_each_line_once(real_home):
    env = {**os.environ, "NLPSUITE_HOME": str(real_home), "NLPSUITE_API_KEY": KEY, "NLPSUITE_DEVICE": "cpu"}
    port = free_port()
    args = [sys.executable, "-m", "nlpsuite", "serve", "--port", str(port), "--max-batch", "8"]

    def start():
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(port, 600)  # a first run converts the model
        return proc

    proc = start()
    try:
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=120)
        model = sdk.models.list().data[0].id
        lines = jsonl(chat_lines(model, TOTAL, max_tokens=8))
        uploaded = sdk.files.create(file=("kill-200.jsonl", lines), purpose="batch")
        batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 600
        while sdk.batches.retrieve(batch.id).request_counts.completed < 20:
            assert time.monotonic() < deadline, "the batch made no progress"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert sdk_counts(real_home, batch.id) < TOTAL  # killed in the middle, not after the end
        proc = start()
        done = wait_for(sdk, batch.id, ("completed",), seconds=1200)
        got = answers(sdk, done.output_file_id)
        assert sorted(a["custom_id"] for a in got) == sorted(f"line-{i}" for i in range(TOTAL))  # each exactly once
        assert all(a["response"]["status_code"] == 200 for a in got)
        assert done.request_counts.completed == TOTAL and done.request_counts.failed == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
