"""The Bedrock provider (kallo.llm.bedrock): the ConverseStream request, streamed text, readable errors.

botocore's Stubber checks the request and plays errors, but it cannot play a response event stream
(it validates `stream` as a plain structure and refuses anything iterable), and moto does not implement
ConverseStream. The streamed events are therefore played by a fake client with the same interface:
`converse_stream(**request)` returning `{"stream": <iterable of event dicts>}`, which is what botocore
hands back once it has decoded the event stream.
"""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, EventStreamError
from botocore.stub import Stubber

from kallo.llm import ChatMessage, Generation, ProviderError, Usage
from kallo.llm.bedrock import BedrockProvider, converse_request

MESSAGES = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Why is the sky blue?"),
    ChatMessage("assistant", "Rayleigh scattering."),
    ChatMessage("user", "Say more."),
]
GENERATION = Generation(model="amazon.nova-lite-v1:0", temperature=0.5, max_tokens=64)
EXPECTED_REQUEST = {
    "modelId": "amazon.nova-lite-v1:0",
    "system": [{"text": "Be brief."}],
    "messages": [
        {"role": "user", "content": [{"text": "Why is the sky blue?"}]},
        {"role": "assistant", "content": [{"text": "Rayleigh scattering."}]},
        {"role": "user", "content": [{"text": "Say more."}]},
    ],
    "inferenceConfig": {"maxTokens": 64, "temperature": 0.5},
}


def delta(text: str) -> dict[str, Any]:
    return {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}}


class FakeBedrock:
    """A bedrock-runtime client whose ConverseStream plays `events` (an exception among them is raised
    where it stands, as botocore raises an exception event)."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.requests: list[dict[str, Any]] = []

    def _play(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event

    def converse_stream(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"stream": self._play()}


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def test_the_request_puts_the_system_prompt_apart_and_sets_the_inference_config(client):
    with Stubber(client) as stub:
        # An empty stream is the one response the Stubber lets through; the request is what matters.
        stub.add_response("converse_stream", {"stream": {}}, EXPECTED_REQUEST)
        assert list(BedrockProvider(client).stream(MESSAGES, GENERATION)) == []
        stub.assert_no_pending_responses()


def test_sampling_settings_are_left_to_the_model_when_unset():
    request = converse_request([ChatMessage("user", "Hi")], Generation(model="m"))
    assert request == {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "Hi"}]}]}


def test_text_deltas_are_yielded_as_they_arrive():
    fake = FakeBedrock(
        [
            {"messageStart": {"role": "assistant"}},
            delta("The sky "),
            delta(""),
            delta("scatters blue light."),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": {"inputTokens": 12, "outputTokens": 6, "totalTokens": 18}}},
        ]
    )
    # The closing metadata event's token counts come last (budgets are charged with them).
    assert list(BedrockProvider(fake).stream(MESSAGES, GENERATION)) == [
        "The sky ",
        "scatters blue light.",
        Usage(input_tokens=12, output_tokens=6),
    ]
    assert fake.requests == [EXPECTED_REQUEST]


def test_a_stream_without_usage_reports_none():
    fake = FakeBedrock([delta("Hi"), {"metadata": {"metrics": {"latencyMs": 5}}}])
    assert list(BedrockProvider(fake).stream(MESSAGES, GENERATION)) == ["Hi"]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (
            "ThrottlingException",
            429,
            r"Bedrock is throttling requests, try again in a moment \(ThrottlingException\): Too many requests",
        ),
        (
            "AccessDeniedException",
            403,
            r"Bedrock refused access to the model .*\(AccessDeniedException\): Too many requests",
        ),
        ("SomethingNewException", 400, r"Bedrock failed \(SomethingNewException\): Too many requests"),
    ],
)
def test_errors_of_the_call_are_provider_errors_with_bedrocks_explanation(client, code, status, expected):
    with Stubber(client) as stub:
        stub.add_client_error(
            "converse_stream",
            service_error_code=code,
            service_message="Too many requests",
            http_status_code=status,
        )
        with pytest.raises(ProviderError, match=expected):
            list(BedrockProvider(client).stream(MESSAGES, GENERATION))


def test_an_error_event_in_the_middle_of_the_stream_is_a_provider_error_after_the_text_before_it():
    error = EventStreamError(
        {"Error": {"Code": "modelStreamErrorException", "Message": "The model stopped unexpectedly."}},
        "ConverseStream",
    )
    fake = FakeBedrock([delta("Half an "), error, delta("never sent")])
    received = []
    with pytest.raises(ProviderError, match=r"\(ModelStreamErrorException\): The model stopped unexpectedly"):
        for text in BedrockProvider(fake).stream(MESSAGES, GENERATION):
            received.append(text)
    assert received == ["Half an "]


def test_an_unreachable_endpoint_is_a_provider_error():
    fake = FakeBedrock([EndpointConnectionError(endpoint_url="https://bedrock-runtime.example")])
    with pytest.raises(ProviderError, match="Bedrock could not be reached: Could not connect"):
        list(BedrockProvider(fake).stream(MESSAGES, GENERATION))


def test_the_client_is_created_on_first_use_only(monkeypatch):
    made = []
    monkeypatch.setattr(
        boto3.session.Session,
        "client",
        lambda self, name, **kw: made.append(name) or FakeBedrock([delta("ok")]),
    )
    provider = BedrockProvider()
    assert made == []
    assert list(provider.stream(MESSAGES, GENERATION)) == ["ok"]
    list(provider.stream(MESSAGES, GENERATION))
    assert made == ["bedrock-runtime"]
