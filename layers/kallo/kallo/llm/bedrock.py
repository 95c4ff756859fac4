"""Amazon Bedrock through the Converse API (`ConverseStream`): one request shape for every model
Bedrock hosts (Nova, Claude, Llama, Mistral...), model ids such as `amazon.nova-lite-v1:0` or an
inference profile (`us.amazon.nova-lite-v1:0`).

Errors come back as `ProviderError` with Bedrock's own explanation (model access not granted, quota,
throttling, a refused request...), which is what the failed step shows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kallo.llm import ChatMessage, Generation, ProviderError, Usage

# How each error code reads to a person; the code itself and Bedrock's message follow it.
_WHAT_HAPPENED = {
    "ThrottlingException": "is throttling requests, try again in a moment",
    "ServiceQuotaExceededException": "quota is used up for now",
    "AccessDeniedException": "refused access to the model (is model access enabled for this account?)",
    "ResourceNotFoundException": "does not know this model",
    "ValidationException": "refused the request",
    "ModelTimeoutException": "timed out while the model was answering",
    "ModelNotReadyException": "has not got the model ready, try again in a moment",
    "ModelErrorException": "reported an error of the model",
    "ModelStreamErrorException": "reported an error of the model while it was answering",
    "ServiceUnavailableException": "is unavailable, try again in a moment",
    "InternalServerException": "failed internally",
}


def describe(error: ClientError) -> str:
    """A readable message for a Bedrock error (stream errors name their code in camelCase)."""
    details = error.response.get("Error", {})
    code = details.get("Code") or "UnknownError"
    code = code[:1].upper() + code[1:]
    message = details.get("Message") or str(error)
    return f"Bedrock {_WHAT_HAPPENED.get(code, 'failed')} ({code}): {message}"


def converse_request(messages: list[ChatMessage], generation: Generation) -> dict[str, Any]:
    """The ConverseStream parameters: system messages go to `system`, the rest alternate as
    `messages` with text content blocks."""
    system = [{"text": m.content} for m in messages if m.role == "system"]
    request: dict[str, Any] = {
        "modelId": generation.model,
        "messages": [
            {"role": m.role, "content": [{"text": m.content}]} for m in messages if m.role != "system"
        ],
    }
    if system:
        request["system"] = system
    inference: dict[str, Any] = {}
    if generation.max_tokens is not None:
        inference["maxTokens"] = generation.max_tokens
    if generation.temperature is not None:
        inference["temperature"] = generation.temperature
    if inference:
        request["inferenceConfig"] = inference
    return request


def usage_of(event: dict[str, Any]) -> Usage | None:
    """The token counts of the stream's closing `metadata` event (`usage {inputTokens, outputTokens}`)."""
    usage = (event.get("metadata") or {}).get("usage") or {}
    read, written = usage.get("inputTokens"), usage.get("outputTokens")
    if isinstance(read, int) and isinstance(written, int):
        return Usage(read, written)
    return None


class BedrockProvider:
    """Streams answers with `bedrock-runtime` ConverseStream. The client is created on first use (in
    the Lambda's region) unless one is given."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # Retries only happen before the stream starts (throttling, 5xx). The read timeout is
                # the longest silence between two events: a large model may think for a while before
                # its first token, far longer than the 10 s other clients allow.
                config = Config(
                    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=120
                )
                self._client = boto3.session.Session().client("bedrock-runtime", config=config)
            return self._client

    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str | Usage]:
        request = converse_request(messages, generation)
        try:
            response = self.client.converse_stream(**request)
            # Events: messageStart, contentBlockDelta*, contentBlockStop, messageStop, metadata. An
            # error during the stream arrives as an exception event, which botocore raises as
            # EventStreamError (a ClientError) while iterating.
            for event in response["stream"]:
                text = event.get("contentBlockDelta", {}).get("delta", {}).get("text")
                if text:
                    yield text
                usage = usage_of(event)
                if usage is not None:
                    yield usage
        except ClientError as error:
            raise ProviderError(describe(error)) from error
        except BotoCoreError as error:  # no connection, a read timeout, no credentials...
            raise ProviderError(f"Bedrock could not be reached: {error}") from error
