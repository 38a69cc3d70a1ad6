"""`/tokenize`, `/detokenize` and `/metrics` of `nlpsuite serve` on the tiny random model: plain HTTP against the
transformers tokenizer of the same folder (the reference), and prometheus-client's own parser reading /metrics."""

from __future__ import annotations

import pytest
import test_serve
from test_serve import authed, model_id, request

server, client, tiny = test_serve.server, test_serve.client, test_serve.tiny  # the module's fixtures, here too

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.shared_cache

TEXTS = ["hello world", "Ünïcödé text: naïve café, 東京, emoji 🙂", "numbers like 1 2 3\n\nand <|im_end|> too"]


@pytest.fixture(scope="module")
def reference(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_gives_the_reference_ids_in_llama_cpp_and_vllm_shapes(server, reference, text):
    status, plain = request(server.port, "POST", "/tokenize", {"content": text}, authed())
    assert status == 200 and plain["tokens"] == reference.encode(text, add_special_tokens=False)
    status, special = request(server.port, "POST", "/tokenize", {"content": text, "add_special": True}, authed())
    assert special["tokens"] == reference.encode(text, add_special_tokens=True)
    status, vllm = request(server.port, "POST", "/tokenize", {"prompt": text, "return_token_strs": True}, authed())
    assert vllm["tokens"] == reference.encode(text, add_special_tokens=True)  # vLLM's default: special tokens on
    assert vllm["token_strs"] == reference.convert_ids_to_tokens(vllm["tokens"])
    assert vllm["count"] == len(vllm["tokens"]) and vllm["max_model_len"] == server.service.context


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_spell_the_text_and_detokenize_gives_it_back(server, text):
    status, answer = request(server.port, "POST", "/tokenize", {"content": text, "with_pieces": True}, authed())
    assert status == 200
    pieces = [t["piece"] for t in answer["tokens"]]
    spelled = b"".join(p.encode() if isinstance(p, str) else bytes(p) for p in pieces)
    assert spelled == text.encode()
    ids = [t["id"] for t in answer["tokens"]]
    status, back = request(server.port, "POST", "/detokenize", {"tokens": ids}, authed())
    assert status == 200 and back["content"] == back["prompt"] == text


def test_a_character_split_across_tokens_is_given_as_bytes(server, reference):
    ids = reference.encode("🙂", add_special_tokens=False)
    if len(ids) < 2:
        pytest.skip("the tiny tokenizer holds this character whole")
    status, answer = request(server.port, "POST", "/tokenize", {"content": "🙂", "with_pieces": True}, authed())
    assert all(isinstance(t["piece"], list) for t in answer["tokens"])
    assert bytes(b for t in answer["tokens"] for b in t["piece"]) == "🙂".encode()


def template_ids(reference, messages, generation: bool) -> list[int]:
    made = reference.apply_chat_template(messages, add_generation_prompt=generation, tokenize=True)
    return list(made["input_ids"] if isinstance(made, dict) or hasattr(made, "keys") else made)


def test_messages_are_tokenized_through_the_chat_template(server, reference):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello 東京"}]
    status, answer = request(server.port, "POST", "/tokenize", {"messages": messages}, authed())
    assert status == 200 and answer["tokens"] == template_ids(reference, messages, True)
    assert answer["tokens"] == server.suite.head("generation").encode_chat(messages)  # what a chat request prefills
    body = {"messages": messages, "add_generation_prompt": False}
    status, bare = request(server.port, "POST", "/tokenize", body, authed())
    assert bare["tokens"] == template_ids(reference, messages, False)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/tokenize", {"content": "a", "prompt": "b"}, "content"),
        ("/tokenize", {}, "content"),
        ("/tokenize", {"content": 3}, "content"),
        ("/tokenize", {"content": "a", "add_special": "yes"}, "add_special"),
        ("/tokenize", {"content": "a", "parse_special": False}, "parse_special"),
        ("/tokenize", {"content": "a", "model": "gpt-4"}, "model"),
        ("/tokenize", {"content": "a", "add_generation_prompt": True}, "add_generation_prompt"),
        ("/tokenize", {"content": "a", "shout": True}, "shout"),
        ("/tokenize", {"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ("/detokenize", {"tokens": [1, -1]}, "tokens"),
        ("/detokenize", {"tokens": [10**9]}, "tokens"),
        ("/detokenize", {"tokens": "1 2"}, "tokens"),
    ],
)
def test_bad_tokenize_requests_are_400_naming_the_field(server, path, body, param):
    status, answer = request(server.port, "POST", path, body, authed())
    assert status == 400 and answer["error"]["param"] == param, answer


def test_tokenize_needs_the_key_like_every_route(server):
    status, answer = request(server.port, "POST", "/tokenize", {"content": "a"})
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"


# -- /metrics -----------------------------------------------------------------------------------------------------


def scrape(server, headers=None) -> dict:
    """{(sample name, frozen labels): value} as prometheus-client's parser reads the page."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = request(server.port, "GET", "/metrics", headers=headers)
    assert status == 200, text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_tokens_and_first_token_times(server, client):
    before = scrape(server, authed())
    reply = client.chat.completions.create(
        model=model_id(server), messages=[{"role": "user", "content": "the quick brown fox"}], max_tokens=9,
        temperature=0,
    )  # fmt: skip
    request(server.port, "GET", "/v1/batches/batch_nothing_here", headers=authed())
    request(server.port, "GET", "/no/such/route", headers=authed())
    after = scrape(server, authed())
    grew = {key: after[key] - before.get(key, 0.0) for key in after}
    route = {"route": "/v1/chat/completions", "status": "200"}
    assert value(grew, "nlpsuite_requests_total", **route) == 1
    assert value(grew, "nlpsuite_requests_total", route="unmatched", status="404") == 1
    assert value(grew, "nlpsuite_prompt_tokens_total") == reply.usage.prompt_tokens
    assert value(grew, "nlpsuite_completion_tokens_total") == reply.usage.completion_tokens
    assert value(grew, "nlpsuite_time_to_first_token_seconds_count") == 1
    assert value(grew, "nlpsuite_inter_token_seconds_count") == (1 if reply.usage.completion_tokens > 1 else 0)
    reason = "length" if reply.choices[0].finish_reason == "length" else "stop"
    assert value(grew, "nlpsuite_finished_sequences_total", reason=reason) == 1
    assert value(after, "nlpsuite_queue_depth") == 0 and value(after, "nlpsuite_running_rows") == 0
    for name in ("nlpsuite_draft_tokens_total", "nlpsuite_prompt_cache_hits_total", "nlpsuite_jobs_waiting"):
        assert any(key[0] == name for key in after), name


def test_metrics_route_templates_not_raw_paths(server):
    request(server.port, "POST", "/v1/tasks/no-such-task", {"text": "x"}, authed())
    samples = scrape(server, authed())
    assert value(samples, "nlpsuite_requests_total", route="/v1/tasks/{task}", status="404") >= 1
    assert not any("no-such-task" in str(key) for key in samples)


def test_metrics_need_the_key_unless_public(server):
    status, answer = request(server.port, "GET", "/metrics")
    assert status == 401 and answer["error"]["code"] == "invalid_api_key"
    server.service.config.metrics_public = True
    try:
        assert "nlpsuite_requests_total" in {name for name, _ in scrape(server)}
    finally:
        server.service.config.metrics_public = False


# -- /v1/rerank ---------------------------------------------------------------------------------------------------

DOCS = ["the quick brown fox jumps over the lazy dog", "a small model speaks", "東京 café", "cat dog bird"]


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_rerank_answers_in_the_jina_cohere_shape(server, path):
    want = server.suite.run("rerank", "cat dog bird?", documents=DOCS)
    body = {"model": model_id(server), "query": "cat dog bird?", "documents": DOCS}
    status, answer = request(server.port, "POST", path, body, authed())
    assert status == 200 and answer["model"] == model_id(server) and answer["usage"]["total_tokens"] > 0
    assert answer["results"] == want
    objects = {
        "query": "cat dog bird?",
        "documents": [{"text": d} for d in DOCS],
        "top_n": 2,
        "return_documents": False,
    }
    status, short = request(server.port, "POST", path, objects, authed())
    assert short["results"] == [{"index": r["index"], "relevance_score": r["relevance_score"]} for r in want[:2]]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"documents": DOCS}, "query"),
        ({"query": "q", "documents": []}, "documents"),
        ({"query": "q", "documents": "one\ntwo"}, "documents"),
        ({"query": "q", "documents": DOCS, "top_n": 0}, "top_n"),
        ({"query": "q", "documents": DOCS, "return_documents": "no"}, "return_documents"),
        ({"query": "q", "documents": DOCS, "rank_fields": ["x"]}, "rank_fields"),
        ({"query": "q", "documents": [{"id": 1}]}, "documents"),
    ],
)
def test_bad_rerank_requests_are_400(server, body, param):
    status, answer = request(server.port, "POST", "/v1/rerank", body, authed())
    assert status == 400 and answer["error"]["param"] == param, answer
