"""``POST /v1/rerank`` (and ``/rerank``) in the Jina/Cohere shape, over the declared ``rerank`` task.

``{"query", "documents": [text | {"text"}], "top_n"?, "return_documents"?}`` ->
``{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage": {"total_tokens"}}``, best first.
"""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import NlpsuiteError
from .errors import api_words, bad
from .requests import check_fields

FIELDS = {"model", "query", "documents", "top_n", "return_documents"}
MAX_DOCUMENTS = 1000


def _request(service, body: dict) -> tuple[dict, dict]:
    body = check_fields(body, FIELDS)
    model = body.get("model")
    if model is not None and model not in service.model_names:
        raise bad(f"the model {model!r} does not exist here; this server runs {service.model_id!r}", "model")
    query, documents = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not query.strip():
        raise bad("query must be a non-empty string", "query")
    if not isinstance(documents, list) or not 0 < len(documents) <= MAX_DOCUMENTS:
        raise bad(f"documents must be a list of 1 to {MAX_DOCUMENTS} texts or {{text}} objects", "documents")
    task = service.suite.task("rerank")
    given = {name: body[name] for name in ("top_n", "return_documents") if name in body}
    if not isinstance(given.get("return_documents", True), bool):  # JSON has booleans: no "yes" or "no" here
        raise bad("return_documents must be true or false", "return_documents")
    if isinstance(given.get("top_n"), bool | str):
        raise bad("top_n must be a whole number", "top_n")
    try:
        options = task.check_options(given)
    except NlpsuiteError as exc:
        raise bad(api_words(str(exc), {o.cli_flag: o.name for o in task.options}), next(iter(given), None)) from None
    return task.records(query, {"documents": documents}).records[0], options


async def rerank(service, request, body: dict):
    record, options = _request(service, body)
    task = service.suite.task("rerank")

    def work():
        try:
            (result,) = task.run(service.suite, [record], **options)
        except NlpsuiteError as exc:
            raise bad(str(exc), "documents") from None
        count = service.suite.tokenizer.count
        texts = [d if isinstance(d, str) else d.get("text", "") for d in record["documents"]]
        return result["results"], count(record["query"]) * len(texts) + sum(map(count, texts))

    results, tokens = await service.engine.job(work)
    return JSONResponse({"id": "rerank-" + uuid.uuid4().hex[:24], "model": service.model_id, "results": results,
                         "usage": {"total_tokens": tokens}})  # fmt: skip


def routes(service, endpoint) -> list[Route]:
    handler = endpoint(service, rerank)
    return [Route("/v1/rerank", handler, methods=["POST"]), Route("/rerank", handler, methods=["POST"])]
