"""The provider registry (kallo.llm.registry): model names, lazy creation once per container,
providers registered by tests."""

import pytest

from kallo.llm import Generation, ProviderError, registry
from kallo.llm.bedrock import BedrockProvider
from kallo.llm.embedded import EmbeddedProvider
from kallo.llm.openai_compatible import OpenAICompatibleProvider
from kallo.settings import get_settings
from tests.support.scripted_llm import ScriptedLLM, installed


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    registry.reset()
    yield
    registry.reset()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("bedrock:amazon.nova-lite-v1:0", ("bedrock", "amazon.nova-lite-v1:0")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("embedded:smollm2", ("embedded", "smollm2")),
        (" openai:llama3.2:1b ", ("openai", "llama3.2:1b")),
    ],
)
def test_model_names_split_at_the_first_colon(model, expected):
    assert registry.parse(model) == expected


@pytest.mark.parametrize("model", ["gpt-4o-mini", "bedrock:", ":model", ""])
def test_a_name_without_provider_and_model_id_is_refused(model):
    with pytest.raises(ProviderError, match="<provider>:<model id>"):
        registry.parse(model)


def test_an_unknown_provider_is_a_provider_error_naming_the_known_ones():
    with pytest.raises(ProviderError, match=r"unknown model provider 'azure'.*bedrock, embedded, openai"):
        registry.provider_for("azure:gpt-4o")


def test_built_in_providers_are_created_once_and_kept():
    provider, generation = registry.provider_for("bedrock:amazon.nova-lite-v1:0")
    assert isinstance(provider, BedrockProvider)
    assert generation == Generation(model="amazon.nova-lite-v1:0")
    again, _ = registry.provider_for("bedrock:anthropic.claude-3-haiku-20240307-v1:0")
    assert again is provider
    assert isinstance(registry.provider_for("embedded:smollm2")[0], EmbeddedProvider)


def test_the_openai_provider_reads_its_endpoint_from_the_settings(monkeypatch):
    monkeypatch.setenv("KALLO_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/")
    get_settings.cache_clear()
    provider, generation = registry.provider_for("openai:llama3.2")
    assert isinstance(provider, OpenAICompatibleProvider)
    assert provider.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert generation.model == "llama3.2"


def test_context_windows():
    assert registry.context_tokens("embedded:smollm2") == 2048
    assert registry.context_tokens("bedrock:amazon.nova-lite-v1:0") == registry.DEFAULT_CONTEXT_TOKENS
    assert registry.context_tokens("openai:gpt-4o-mini") == registry.DEFAULT_CONTEXT_TOKENS


def test_a_registered_provider_serves_its_name_until_unregistered():
    llm = ScriptedLLM()
    with installed(llm, context_tokens=1000) as model:
        provider, generation = registry.provider_for(model)
        assert provider is llm
        assert generation.model == "test"
        assert registry.context_tokens(model) == 1000
    with pytest.raises(ProviderError, match="unknown model provider"):
        registry.provider_for(model)
