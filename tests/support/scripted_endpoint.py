"""A scripted model a local stack in another process can call: an OpenAI-compatible chat endpoint on
loopback (`POST /v1/chat/completions`, streamed as server-sent events) that writes a fixed Markdown
answer word by word, `delay` seconds apart, then its `usage`. Each answer is numbered ("Answer 3: ..."),
so a regenerated answer differs from the one it replaces; a question saying "slowly" is answered
slowly (SLOW_DELAY a word), to be stopped. With `text=None` (the benchmarks) the answer is the word
"tok" as many times as the request's `max_tokens` asks, so a run chooses its answer's length. The
registry's `scripted` provider plugs
into this process only; a stack started with `stack_environment(endpoint)` answers `openai:scripted`
(its default model) from here, in about a second, with no model to load.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "openai:scripted"
# A question with this word is answered slowly (about 8 s), so that a test can stop it mid-way.
SLOW_WORD = "slowly"
SLOW_DELAY = 0.2
ANSWER = (
    "The **sky** looks blue because air scatters short (blue) wavelengths of sunlight far more than "
    "long (red) ones: this is *Rayleigh scattering*. At sunset the light crosses more air, so the "
    "blue is scattered away and reds remain."
)


class ScriptedEndpoint:
    def __init__(self, text: str | None = ANSWER, delay: float = 0.04) -> None:
        counter = itertools.count(1)

        class Completions(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                asked = request.get("max_tokens")
                if text is None:
                    words = ["tok"] * int(asked or 16)
                else:
                    words = f"Answer {next(counter)}: {text}".split(" ")
                last = (request.get("messages") or [{}])[-1].get("content")
                pause = SLOW_DELAY if isinstance(last, str) and SLOW_WORD in last else delay
                limit = int(asked or len(words))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()  # HTTP/1.0: the stream ends when the connection closes
                try:
                    for index, word in enumerate(words[:limit]):
                        time.sleep(pause)
                        piece = word if index == 0 else f" {word}"
                        self._event({"choices": [{"index": 0, "delta": {"content": piece}}]})
                    usage = {"prompt_tokens": 20, "completion_tokens": min(limit, len(words))}
                    self._event({"choices": [], "usage": usage})
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):  # the reader stopped (Stop Step)
                    return

            def _event(self, chunk: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Completions)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stack_environment(endpoint: ScriptedEndpoint) -> dict[str, str]:
    """A local stack's settings that make the scripted model its default (the embedded one stays
    allowed)."""
    return {
        "KALLO_DEFAULT_MODEL": MODEL,
        "KALLO_OPENAI_BASE_URL": endpoint.base_url,
        "KALLO_ALLOWED_MODELS": json.dumps([MODEL, "embedded:smollm2"]),
    }
