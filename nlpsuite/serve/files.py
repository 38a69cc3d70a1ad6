"""OpenAI's Files API, as far as the Batch API needs it: upload a JSONL of requests (``purpose: batch``), read a
batch's output and error files back, list, describe and delete files.

A file is its bytes (``ID.jsonl``) and its description (``ID.json``), written atomically under the state folder
(``NLPSUITE_HOME/state/serve/files``); a file exists once its description does.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import config
from ..fsutil import write_bytes_atomic, write_json_atomic
from .errors import ApiError, bad

MAX_FILE = 64 * 1024 * 1024  # bytes of one uploaded file
FILE_ID = re.compile(r"file-[0-9a-f]{24}")
PURPOSES = ("batch", "batch_output")


def folder() -> Path:
    return config.state_dir() / "serve" / "files"


def new_id() -> str:
    return "file-" + uuid.uuid4().hex[:24]


def content_path(file_id: str) -> Path:
    return folder() / f"{file_id}.jsonl"


def describe(file_id: str) -> dict:
    """The file's OpenAI object; 404 when there is no such file."""
    return read_entry(folder(), FILE_ID, file_id, "file")


def read_entry(where: Path, pattern: re.Pattern, entry_id: str, kind: str) -> dict:
    """The description ``where/ID.json`` of a file or batch; 404 for an id of the wrong form or not there."""
    if pattern.fullmatch(entry_id):
        try:
            return json.loads((where / f"{entry_id}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
    raise ApiError(404, f"no {kind} {entry_id!r}", f"{kind}_id", f"{kind}_not_found")


def publish(file_id: str, filename: str, purpose: str) -> dict:
    """Describe the bytes already at ``content_path(file_id)``: from now on the file exists (idempotent)."""
    size = content_path(file_id).stat().st_size
    entry = {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": filename,
             "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}  # fmt: skip
    write_json_atomic(folder() / f"{file_id}.json", entry)
    return entry


async def upload(service, request, body):
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise bad("upload the file as multipart/form-data with fields 'file' and 'purpose'", code="invalid_request")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE + 64 * 1024:
        raise ApiError(413, f"the file is over {MAX_FILE} bytes", code="request_too_large")
    async with request.form(max_files=1, max_fields=8, max_part_size=MAX_FILE) as form:
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch":
            raise bad("purpose must be 'batch': this server keeps files for the Batch API only", "purpose")
        if upload is None or isinstance(upload, str):
            raise bad("send the file in the field 'file'", "file")
        data = await upload.read(MAX_FILE + 1)
        name = upload.filename or "upload.jsonl"
    if len(data) > MAX_FILE:
        raise ApiError(413, f"the file is over {MAX_FILE} bytes", code="request_too_large")
    if not data.strip():
        raise bad("the file is empty", "file")
    file_id = new_id()
    write_bytes_atomic(content_path(file_id), data)
    return JSONResponse(publish(file_id, name, purpose))


async def listed(service, request, body):
    purpose = request.query_params.get("purpose")
    found = []
    for path in folder().glob("file-*.json") if folder().is_dir() else []:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if purpose in (None, entry["purpose"]):
            found.append(entry)
    found.sort(key=lambda e: (e["created_at"], e["id"]), reverse=request.query_params.get("order", "desc") == "desc")
    return JSONResponse(page(request, found, 10000, 10000))


def page(request, found: list[dict], most: int, default: int) -> dict:
    """A page of a list as OpenAI's cursor pagination gives it: ``after`` an id, at most ``limit`` entries."""
    after = request.query_params.get("after")
    if after:
        ids = [e["id"] for e in found]
        found = found[ids.index(after) + 1 :] if after in ids else []
    limit = _limit(request, most, default)
    data = found[:limit]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"object": "list", "data": data, "has_more": len(found) > limit, "first_id": first, "last_id": last}


def _limit(request, most: int, default: int) -> int:
    given = request.query_params.get("limit", str(default))
    if not given.isdigit() or not 1 <= int(given) <= most:
        raise bad(f"limit must be a whole number from 1 to {most}", "limit")
    return int(given)


async def one(service, request, body):
    return JSONResponse(describe(request.path_params["file_id"]))


async def content(service, request, body):
    entry = describe(request.path_params["file_id"])
    return Response(content_path(entry["id"]).read_bytes(), media_type="application/jsonl")


async def delete(service, request, body):
    entry = describe(request.path_params["file_id"])
    (folder() / f"{entry['id']}.json").unlink()  # it no longer exists; its bytes go next
    content_path(entry["id"]).unlink(missing_ok=True)
    return JSONResponse({"id": entry["id"], "object": "file", "deleted": True})


def routes(service, endpoint) -> list[Route]:
    return [
        Route("/v1/files", endpoint(service, upload, body=False), methods=["POST"]),
        Route("/v1/files", endpoint(service, listed, body=False), methods=["GET"]),
        Route("/v1/files/{file_id}", endpoint(service, one, body=False), methods=["GET"]),
        Route("/v1/files/{file_id}", endpoint(service, delete, body=False), methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", endpoint(service, content, body=False), methods=["GET"]),
    ]
