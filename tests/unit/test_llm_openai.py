"""The OpenAI-compatible provider (kallo.llm.openai_compatible) against a small SSE server on
127.0.0.1, started by the tests: the request, streamed deltas, `[DONE]`, and readable errors."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kallo.llm import ChatMessage, Generation, ProviderError, Usage
from kallo.llm.openai_compatible import OpenAICompatibleProvider, deltas, server_sent_events

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Why is the sky blue?")]


def chunk(content: str | None = None, **delta: Any) -> bytes:
    body = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {**delta, "content": content}}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


@dataclass
class Reply:
    """What the fake server answers next: a status, headers and body pieces (sent one by one)."""

    status: int = 200
    pieces: list[bytes] = field(default_factory=list)
    content_type: str = "text/event-stream"


class FakeServer:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                reply = fake.replies.pop(0)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in reply.pieces:
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def test_streams_the_deltas_until_done(server):
    server.replies.append(
        Reply(
            pieces=[
                chunk(role="assistant"),
                b": keep-alive comment\n\n",
                chunk("The sky "),
                # One event split over two writes, and `\r\n` line ends: the parser must not care.
                chunk("scatters ")[:20],
                chunk("scatters ")[20:].replace(b"\n", b"\r\n"),
                chunk("blue light."),
                b"data: [DONE]\n\n",
                chunk("after done, ignored"),
            ]
        )
    )
    provider = OpenAICompatibleProvider(server.url + "/", "sk-test")
    text = list(provider.stream(MESSAGES, Generation(model="gpt-4o-mini", temperature=0.2, max_tokens=50)))
    assert text == ["The sky ", "scatters ", "blue light."]
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 50,
    }


def test_no_key_no_authorization_header_and_no_unset_sampling_settings(server):
    server.replies.append(Reply(pieces=[chunk("Hi"), b"data: [DONE]\n\n"]))
    assert list(OpenAICompatibleProvider(server.url).stream(MESSAGES, Generation(model="llama3.2"))) == ["Hi"]
    [request] = server.requests
    assert "Authorization" not in request["headers"]
    assert set(request["body"]) == {"model", "messages", "stream", "stream_options"}


def test_the_usage_chunk_is_reported_after_the_text(server):
    """With `stream_options.include_usage`, the last chunk has no choices and the server's counts."""
    usage = b'data: {"choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}}\n\n'
    server.replies.append(Reply(pieces=[chunk("Hi"), chunk("!"), usage, b"data: [DONE]\n\n"]))
    streamed = list(OpenAICompatibleProvider(server.url).stream(MESSAGES, Generation(model="m")))
    assert streamed == ["Hi", "!", Usage(input_tokens=31, output_tokens=2)]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            "401 Unauthorized: Incorrect API key provided",
        ),
        (404, {"error": "model 'llama9' not found"}, "404 Not Found: model 'llama9' not found"),
        (
            400,
            {"object": "error", "message": "max_tokens is too large"},
            "400 Bad Request: max_tokens is too large",
        ),
    ],
)
def test_http_errors_carry_the_servers_message(server, status, body, expected):
    server.replies.append(
        Reply(status=status, pieces=[json.dumps(body).encode()], content_type="application/json")
    )
    with pytest.raises(ProviderError, match=f"the model server answered {expected}"):
        list(OpenAICompatibleProvider(server.url).stream(MESSAGES, Generation(model="m")))


def test_an_error_body_that_is_not_json_is_quoted():
    assert "Bad Gateway" in str(_error_of(502, b"<html>Bad Gateway</html>"))


def _error_of(status: int, body: bytes) -> ProviderError:
    with FakeServer() as fake:
        fake.replies.append(Reply(status=status, pieces=[body], content_type="text/html"))
        with pytest.raises(ProviderError) as raised:
            list(OpenAICompatibleProvider(fake.url).stream(MESSAGES, Generation(model="m")))
    return raised.value


def test_an_error_event_in_the_stream_is_a_provider_error_after_the_text_before_it(server):
    error = b'data: {"error": {"message": "the GPU fell over"}}\n\n'
    server.replies.append(Reply(pieces=[chunk("Half"), error]))
    received = []
    with pytest.raises(ProviderError, match="failed while answering: the GPU fell over"):
        for text in OpenAICompatibleProvider(server.url).stream(MESSAGES, Generation(model="m")):
            received.append(text)
    assert received == ["Half"]


def test_an_unreachable_server_is_a_provider_error():
    with FakeServer() as fake:
        url = fake.url  # nothing listens there once the server is closed
    with pytest.raises(ProviderError, match="could not be reached"):
        list(OpenAICompatibleProvider(url, timeout=2).stream(MESSAGES, Generation(model="m")))


def test_sse_parsing_joins_multi_line_data_and_ends_without_a_final_blank_line():
    lines = [b"event: message\n", b"data: a\n", b"data: b\n", b"\n", b"id: 7\n", b"data: c"]
    assert list(server_sent_events(lines)) == ["a\nb", "c"]


def test_a_stream_that_is_not_json_is_a_provider_error():
    with pytest.raises(ProviderError, match="not JSON"):
        list(deltas(["<html>"]))
