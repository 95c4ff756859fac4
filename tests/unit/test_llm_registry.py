"""The provider registry (kallo.llm.registry): model names, lazy creation once per container,
providers registered by tests."""

import pytest

from kallo import aws as kallo_aws
from kallo.llm import Generation, ProviderError, registry
from kallo.llm.bedrock import BedrockProvider
from kallo.llm.embedded import EmbeddedProvider
from kallo.llm.openai_compatible import OpenAICompatibleProvider
from kallo.settings import get_settings
from tests.support.scripted_llm import ScriptedLLM, installed
from tests.unit.test_llm_openai import MESSAGES, FakeServer, Reply, chunk


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


def _answer_once(server: FakeServer) -> dict:
    """What the OpenAI provider of the registry sends to the fake server for one question."""
    server.replies.append(Reply(pieces=[chunk("Hi"), b"data: [DONE]\n\n"]))
    provider, generation = registry.provider_for("openai:gpt-4o-mini")
    assert list(provider.stream(MESSAGES, generation)) == ["Hi"]
    return server.requests[-1]


@pytest.fixture
def openai_endpoint(monkeypatch):
    with FakeServer() as server:
        monkeypatch.setenv("KALLO_OPENAI_BASE_URL", server.url)
        get_settings.cache_clear()
        yield server


def test_the_openai_key_comes_from_its_secret_read_once_per_container(
    aws, aws_calls, openai_endpoint, monkeypatch
):
    secret = aws["OpenAIApiKeySecret"]["Arn"]
    # What the operator does after deploying: the stack created the secret without a value.
    kallo_aws.client("secretsmanager").put_secret_value(SecretId=secret, SecretString="sk-from-secret")
    monkeypatch.setenv("KALLO_OPENAI_API_KEY_SECRET_ARN", secret)
    get_settings.cache_clear()
    aws_calls.reset()
    assert _answer_once(openai_endpoint)["headers"]["Authorization"] == "Bearer sk-from-secret"
    assert _answer_once(openai_endpoint)["headers"]["Authorization"] == "Bearer sk-from-secret"
    assert aws_calls["secretsmanager:GetSecretValue"] == 1
    assert aws_calls.total == 1


def test_a_secret_without_a_value_yet_means_requests_without_a_key(aws, openai_endpoint, monkeypatch):
    monkeypatch.setenv("KALLO_OPENAI_API_KEY_SECRET_ARN", aws["OpenAIApiKeySecret"]["Arn"])
    get_settings.cache_clear()
    assert "Authorization" not in _answer_once(openai_endpoint)["headers"]


def test_a_key_in_a_plain_variable_is_never_used(aws, openai_endpoint, monkeypatch):
    monkeypatch.setenv("KALLO_OPENAI_API_KEY", "sk-plain-variable")
    get_settings.cache_clear()
    assert "Authorization" not in _answer_once(openai_endpoint)["headers"]


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
