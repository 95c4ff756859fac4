"""Embeddings (kallo.documents.embeddings): off unless configured; Titan v2 requests through Bedrock,
checked with botocore's Stubber (no network)."""

import io
import json
from collections.abc import Callable, Iterator

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from kallo import aws
from kallo.documents.embeddings import embed
from kallo.settings import get_settings


@pytest.fixture
def configure(monkeypatch) -> Iterator[Callable[[str], None]]:
    """Sets KALLO_EMBEDDING_MODEL for the test, with fresh settings and clients either side."""

    def set_model(value: str) -> None:
        monkeypatch.setenv("KALLO_EMBEDDING_MODEL", value)
        get_settings.cache_clear()
        aws.reset_clients()

    yield set_model
    monkeypatch.undo()
    get_settings.cache_clear()
    aws.reset_clients()


@pytest.fixture
def model(configure) -> None:
    configure("bedrock:amazon.titan-embed-text-v2:0")


def titan_response(vector: list[float]) -> dict:
    raw = json.dumps({"embedding": vector, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def titan_request(text: str) -> dict:
    return {
        "modelId": "amazon.titan-embed-text-v2:0",
        "contentType": "application/json",
        "accept": "application/json",
        "body": json.dumps({"inputText": text, "dimensions": 256, "normalize": True}),
    }


def test_without_a_model_there_are_no_embeddings_and_no_calls(configure, aws_calls):
    configure("")
    assert embed(["anything"]) is None
    assert aws_calls.total == 0


def test_each_text_is_embedded_by_titan_in_order(model):
    client = aws.client("bedrock-runtime")
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([0.6, 0.8]), titan_request("first passage"))
        stub.add_response("invoke_model", titan_response([1.0, 0.0]), titan_request("second"))
        assert embed(["first passage", "second"]) == [[0.6, 0.8], [1.0, 0.0]]
        stub.assert_no_pending_responses()


def test_a_bedrock_error_is_not_swallowed(model):
    client = aws.client("bedrock-runtime")
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", "ThrottlingException", "slow down", 429)
        with pytest.raises(client.exceptions.ThrottlingException):
            embed(["text"])


@pytest.mark.parametrize("value", ["openai:text-embedding-3-small", "bedrock:", "titan"])
def test_another_provider_is_a_configuration_error(configure, value):
    configure(value)
    with pytest.raises(ValueError, match="bedrock:<model id>"):
        embed(["text"])
