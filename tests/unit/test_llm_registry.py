"""The provider registry (kallo.llm.registry): model names, lazy creation once per container,
providers registered by tests."""

import pytest

from kallo import aws as kallo_aws
from kallo.errors import Unprocessable
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


# -- I10: the allow-list and the maxTokens caps ---------------------------------------------------------


@pytest.fixture
def allowed(monkeypatch):
    monkeypatch.setenv("KALLO_ALLOWED_MODELS", '["bedrock:amazon.nova-micro-v1:0", "openai:gpt-4o-mini"]')
    monkeypatch.setenv("KALLO_DEFAULT_MODEL", "bedrock:amazon.nova-lite-v1:0")
    get_settings.cache_clear()


@pytest.mark.usefixtures("allowed")
def test_only_listed_models_and_the_default_are_allowed():
    assert registry.allowed_models() == [
        "bedrock:amazon.nova-micro-v1:0",
        "openai:gpt-4o-mini",
        "bedrock:amazon.nova-lite-v1:0",
    ]
    for model in ("bedrock:amazon.nova-micro-v1:0", " openai:gpt-4o-mini ", "bedrock:amazon.nova-lite-v1:0"):
        assert registry.is_allowed(model)
        registry.require_allowed(model, None)
    for model in ("bedrock:anthropic.claude-3-opus-20240229-v1:0", "openai:gpt-4o", "embedded:smollm2", "x"):
        assert not registry.is_allowed(model)
        with pytest.raises(Unprocessable) as refused:
            registry.require_allowed(model, None)
        assert refused.value.code == "unknown_model"
        # The refusal names what the deployment accepts.
        assert "bedrock:amazon.nova-lite-v1:0, bedrock:amazon.nova-micro-v1:0, openai:gpt-4o-mini" in (
            refused.value.message
        )


@pytest.mark.usefixtures("allowed")
def test_the_deployment_models_start_with_the_default():
    assert registry.deployment_models() == [
        registry.DeployedModel("bedrock:amazon.nova-lite-v1:0", "bedrock", True),
        registry.DeployedModel("bedrock:amazon.nova-micro-v1:0", "bedrock", False),
        registry.DeployedModel("openai:gpt-4o-mini", "openai", False),
    ]


def test_openai_models_need_an_endpoint_and_a_known_provider(monkeypatch):
    monkeypatch.setenv("KALLO_ALLOWED_MODELS", '["openai:gpt-4o-mini", "bedrok:amazon.nova-micro-v1:0"]')
    monkeypatch.setenv("KALLO_DEFAULT_MODEL", "embedded:smollm2")
    monkeypatch.setenv("KALLO_OPENAI_BASE_URL", "")
    get_settings.cache_clear()
    assert [m.id for m in registry.deployment_models()] == ["embedded:smollm2"]
    assert not registry.is_allowed("openai:gpt-4o-mini")
    # A well-formed Bedrock id off the list is unknown too: IAM would not let the worker invoke it.
    with pytest.raises(Unprocessable) as refused:
        registry.require_allowed("bedrock:amazon.nova-pro-v1:0", None)
    assert refused.value.code == "unknown_model"
    assert refused.value.message.endswith(
        "this deployment answers with embedded:smollm2 (GET /models lists them)"
    )
    monkeypatch.setenv("KALLO_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    get_settings.cache_clear()
    assert [m.id for m in registry.deployment_models()] == ["embedded:smollm2", "openai:gpt-4o-mini"]


@pytest.mark.usefixtures("allowed")
def test_max_tokens_is_capped_per_model():
    assert registry.max_tokens_cap("bedrock:amazon.nova-micro-v1:0") == 2048
    assert registry.max_tokens_cap("openai:gpt-4o-mini") == registry.DEFAULT_MAX_TOKENS_CAP
    assert registry.max_tokens_cap("embedded:smollm2") == 1024  # half its 2048-token context
    registry.require_allowed("openai:gpt-4o-mini", registry.DEFAULT_MAX_TOKENS_CAP)
    for model, max_tokens in (
        ("bedrock:amazon.nova-micro-v1:0", 2049),
        ("openai:gpt-4o-mini", 32768),
        (None, 4097),
    ):
        with pytest.raises(Unprocessable) as refused:
            registry.require_allowed(model, max_tokens)
        assert refused.value.code == "max_tokens_too_large"
    assert registry.capped("bedrock:amazon.nova-micro-v1:0", 32768) == 2048
    assert registry.capped("bedrock:amazon.nova-micro-v1:0", 100) == 100


def test_a_provider_registered_in_code_is_allowed_as_a_whole():
    with installed(ScriptedLLM()) as model:
        assert registry.is_allowed(model) and registry.is_allowed("scripted:anything")
    assert not registry.is_allowed(model)
