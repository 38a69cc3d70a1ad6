"""The Batch API's promise on the real default model at the size the issue names: `kill -9` the server in the middle
of a 200-line batch, start it again, and the batch completes with every line answered exactly once."""

from __future__ import annotations

import os
import sys

import pytest
from test_serve import KEY, free_port
from test_serve_batches import killed_midway

pytest.importorskip("openai")

TOTAL = 200


def test_a_200_line_batch_survives_kill_9_and_answers_each_line_once(real_home):
    env = {**os.environ, "NLPSUITE_HOME": str(real_home), "NLPSUITE_API_KEY": KEY, "NLPSUITE_DEVICE": "cpu"}
    port = free_port()
    args = [sys.executable, "-m", "nlpsuite", "serve", "--port", str(port), "--max-batch", "8"]
    waits = (600, 120, 600, 30, 1200)  # a first run converts the model
    done, got = killed_midway(args, env, port, real_home, TOTAL, kill_after=20, max_tokens=8, waits=waits)
    assert sorted(a["custom_id"] for a in got) == sorted(f"line-{i}" for i in range(TOTAL))  # each exactly once
    assert all(a["response"]["status_code"] == 200 for a in got)
    assert done.request_counts.completed == TOTAL and done.request_counts.failed == 0
