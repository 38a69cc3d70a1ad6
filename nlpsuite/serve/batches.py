"""OpenAI's Batch API over the server's own endpoints: a JSONL of requests in, their answers out, durably.

Each batch is its description (``ID.json``, rewritten atomically as it moves on) under the state folder
(``NLPSUITE_HOME/state/serve/batches``); its answers are appended, one durable line each, to its output file
(or to its error file for a request answered with an error), whose ids are chosen when the batch is created.
A request is answered once: after a restart (a crash, a kill -9) the runner reads which ``custom_id``s the two
files hold already (a torn last line is cut off) and goes on with the others. Interactive traffic comes first:
the runner sends a request only while no other request waits to join the batch, and keeps at most half the
batch's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from pathlib import Path

from filelock import FileLock, Timeout
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import config
from ..errors import NlpsuiteError
from ..fsutil import write_json_atomic
from ..records import appender, completed_records
from . import files, openai_api
from .engine import QueueFull
from .errors import ApiError, bad
from .requests import check_fields

log = logging.getLogger("nlpsuite.serve")

BATCH_ID = re.compile(r"batch_[0-9a-f]{24}")
HANDLERS = {"/v1/chat/completions": openai_api.chat, "/v1/completions": openai_api.completions,
            "/v1/embeddings": openai_api.embeddings}  # fmt: skip
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
WINDOW_S = 24 * 3600


def folder() -> Path:
    return config.state_dir() / "serve" / "batches"


def load(batch_id: str) -> dict:
    return files.read_entry(folder(), BATCH_ID, batch_id, "batch")


def save(batch: dict) -> dict:
    write_json_atomic(folder() / f"{batch['id']}.json", batch)
    return batch


def _requests(batch: dict) -> list[dict]:
    """The input file's requests, checked; NlpsuiteError names the first bad line."""
    path = files.content_path(batch["input_file_id"])
    out, seen = [], set()
    for line, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError:
            raise NlpsuiteError(f"line {line}: not valid JSON") from None
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not custom_id or custom_id in seen:
            raise NlpsuiteError(f"line {line}: custom_id must be a string unique in the file")
        if item.get("method", "POST") != "POST" or item.get("url") != batch["endpoint"]:
            raise NlpsuiteError(f"line {line}: method must be POST and url {batch['endpoint']}")
        if not isinstance(item.get("body"), dict) or item["body"].get("stream"):
            raise NlpsuiteError(f"line {line}: body must be a JSON object, not streamed")
        seen.add(custom_id)
        out.append(item)
    if not out:
        raise NlpsuiteError("the input file holds no requests")
    return out


async def create(service, request, body: dict):
    body = check_fields(body, {"input_file_id", "endpoint", "completion_window", "metadata"})
    if body.get("endpoint") not in HANDLERS:
        raise bad(f"endpoint must be one of {', '.join(HANDLERS)}", "endpoint")
    if body.get("completion_window") != "24h":
        raise bad("completion_window must be '24h'", "completion_window")
    metadata = body.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise bad("metadata must be an object of strings", "metadata")
    source = files.describe(str(body.get("input_file_id")))
    if source["purpose"] != "batch":
        raise bad(f"{source['id']} is not a file of purpose 'batch'", "input_file_id")
    now = int(time.time())
    batch = {"id": "batch_" + uuid.uuid4().hex[:24], "object": "batch", "endpoint": body["endpoint"], "errors": None,
             "input_file_id": source["id"], "completion_window": "24h", "status": "validating",
             "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
             "expires_at": now + WINDOW_S, "finalizing_at": None, "completed_at": None, "failed_at": None,
             "expired_at": None, "cancelling_at": None, "cancelled_at": None,
             "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": metadata,
             "files": {"output": files.new_id(), "errors": files.new_id()}}  # fmt: skip
    save(batch)
    service.batches.wake()
    return JSONResponse(public(batch))


def public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "files"}


async def retrieve(service, request, body):
    return JSONResponse(public(load(request.path_params["batch_id"])))


async def cancel(service, request, body):
    batch = load(request.path_params["batch_id"])
    if batch["status"] in ("validating", "in_progress"):
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        save(batch)
        service.batches.wake()
    elif batch["status"] not in ("cancelling", "cancelled"):
        raise ApiError(409, f"batch {batch['id']} is {batch['status']}: it cannot be cancelled", code="conflict")
    return JSONResponse(public(batch))


async def listed(service, request, body):
    found = sorted(all_batches(), key=lambda b: (b["created_at"], b["id"]), reverse=True)
    return JSONResponse(files.page(request, [public(b) for b in found], 100, 20))


def all_batches() -> list[dict]:
    where = folder()
    return [json.loads(p.read_text(encoding="utf-8")) for p in where.glob("batch_*.json")] if where.is_dir() else []


class Detached:
    """The request a batch line's handler sees: nobody disconnects from it."""

    async def is_disconnected(self) -> bool:
        return False


class BatchRunner:
    """Runs the batches one after another, each request at most once, beside the interactive traffic."""

    def __init__(self, service) -> None:
        self.service = service
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while self.service.state in ("loading", "ready"):
            if self.service.state == "ready" and await self._run_next():
                continue
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _run_next(self) -> bool:
        """Run the oldest unfinished batch that no other server on this state folder is running."""
        for batch in sorted((b for b in all_batches() if b["status"] in ACTIVE), key=lambda b: b["created_at"]):
            lock = FileLock(folder() / f"{batch['id']}.lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                await self.run_batch(load(batch["id"]))  # as it is now that it is ours
            finally:
                lock.release()
            return True
        return False

    async def run_batch(self, batch: dict) -> None:
        if batch["status"] not in ACTIVE:
            return
        try:
            requests = _requests(batch)
        except (NlpsuiteError, OSError, UnicodeDecodeError) as exc:
            error = {"code": "invalid_input_file", "message": str(exc), "param": None, "line": None}
            save(
                {
                    **batch,
                    "status": "failed",
                    "failed_at": int(time.time()),
                    "errors": {"object": "list", "data": [error]},
                }
            )
            return
        if batch["status"] == "validating":
            batch = save({**batch, "status": "in_progress", "in_progress_at": int(time.time())})
        batch["request_counts"]["total"] = len(requests)
        output, errors = (files.content_path(batch["files"][k]) for k in ("output", "errors"))
        done = {r["custom_id"]: "completed" for r in completed_records(output)}
        done |= {r["custom_id"]: "failed" for r in completed_records(errors)}
        todo = [r for r in requests if r["custom_id"] not in done]
        with appender(output) as answered, appender(errors) as refused:
            lanes = max(1, self.service.config.max_batch // 2)
            queue = asyncio.Queue()
            for item in todo:
                queue.put_nowait(item)
            counts = {"completed": 0, "failed": 0}
            counts.update({k: sum(v == k for v in done.values()) for k in counts})

            async def lane():
                while not queue.empty() and not self._cancelled(batch["id"]):
                    item = queue.get_nowait()
                    line, ok = await self.answer(batch, item)
                    (answered if ok else refused)([line])
                    counts["completed" if ok else "failed"] += 1
                    save({**load(batch["id"]), "request_counts": {"total": len(requests), **counts}})

            await asyncio.gather(*(lane() for _ in range(lanes)))
        self.finish(load(batch["id"]), counts)

    def _cancelled(self, batch_id: str) -> bool:
        return load(batch_id)["status"] == "cancelling" or self.service.state != "ready"

    async def answer(self, batch: dict, item: dict) -> tuple[dict, bool]:
        """The output line for one request, and whether it succeeded."""
        engine = self.service.engine
        while True:
            while engine.waiting or engine.jobs_waiting:  # interactive requests first
                await asyncio.sleep(0.05)
            try:
                response = await HANDLERS[batch["endpoint"]](self.service, Detached(), dict(item["body"]))
                status, body = response.status_code, json.loads(response.body)
                break
            except QueueFull:
                await asyncio.sleep(0.5)
            except ApiError as exc:
                status, body = exc.status, exc.body()
                break
            except NlpsuiteError as exc:
                status, body = 400, bad(str(exc)).body()
                break
        response = {"status_code": status, "request_id": uuid.uuid4().hex, "body": body}
        line = {"id": "batch_req_" + uuid.uuid4().hex[:24], "custom_id": item["custom_id"], "response": response}
        line["error"] = None
        return line, status == 200

    def finish(self, batch: dict, counts: dict) -> None:
        if self.service.state != "ready":
            return  # shutting down: the batch goes on after the restart
        now = int(time.time())
        out = {
            "output_file_id": files.publish(batch["files"]["output"], f"{batch['id']}_output.jsonl", "batch_output")[
                "id"
            ]
        }
        if counts["failed"]:
            out["error_file_id"] = files.publish(
                batch["files"]["errors"], f"{batch['id']}_error.jsonl", "batch_output"
            )["id"]
        if batch["status"] == "cancelling":
            save({**batch, **out, "status": "cancelled", "cancelled_at": now})
        else:
            save({**batch, **out, "status": "completed", "finalizing_at": now, "completed_at": now})
        log.info("batch %s: %d answered, %d failed", batch["id"], counts["completed"], counts["failed"])


def routes(service, endpoint) -> list[Route]:
    return [
        Route("/v1/batches", endpoint(service, create), methods=["POST"]),
        Route("/v1/batches", endpoint(service, listed, body=False), methods=["GET"]),
        Route("/v1/batches/{batch_id}", endpoint(service, retrieve, body=False), methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", endpoint(service, cancel, body=False), methods=["POST"]),
    ]
