"""`POST /v1/responses` of `nlpsuite serve` on the real default model, through the official `openai` client: the
examples of docs/serve.md (a plain answer, a stream, a reply parsed into a pydantic class)."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")

MODEL = "smollm2-135m-instruct"


class City(pydantic.BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url + "v1", api_key="unused", max_retries=0, timeout=300)


def test_a_response_answers_and_streams_like_a_plain_one(client):
    asked = {"model": MODEL, "instructions": "Answer in one short sentence.", "input": "What is the capital of France?",
             "max_output_tokens": 40}  # fmt: skip
    reply = client.responses.create(**asked)
    assert reply.status == "completed" and "Paris" in reply.output_text
    events = list(client.responses.create(**asked, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == reply.output_text and events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens == reply.usage.output_tokens


def test_parse_reads_a_city_into_a_class(client):
    parsed = client.responses.parse(
        model=MODEL,
        input="The Eiffel Tower stands in Paris, France. Which city and country?",
        text_format=City,
        max_output_tokens=60,
    )
    assert parsed.output_parsed == City(name="Paris", country="France")
