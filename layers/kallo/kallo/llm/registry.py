"""Which provider serves a model name `<provider>:<model id>`, and how much text it can read.

`provider_for("bedrock:amazon.nova-lite-v1:0")` splits at the first colon (model ids contain colons
themselves), creates the Bedrock provider on first use and keeps it for the life of the container, so
its client and connections are reused by every answer. Providers are imported only when first asked
for: a worker that answers with Bedrock never imports llama.cpp, and the other way round.

The OpenAI-compatible provider's API key comes from Secrets Manager (`openai_api_key`), read when
that provider is created; only the functions that call a model have the secret's ARN and may read it.

Tests (and the benchmarks) plug in their own provider with `register("scripted", provider)`.

Model names. The deployment's models (`deployment_models`, listed by `GET /models`) are the default
model (`DefaultModel`, `KALLO_DEFAULT_MODEL`) and the `AllowedModels` stack parameter
(`KALLO_ALLOWED_MODELS`), `openai:` ones only while an OpenAI-compatible endpoint is configured; a
provider registered in code, which only tests and benchmarks do, is allowed as a whole.

I10 (cost): a model answers only when it is one of those, and an answer never asks for more than the
model's `maxTokens` cap (`max_tokens_cap`). `require_allowed` is the one check made when a topic's
defaults or a step's config is written (REST and WebSocket: 422 `unknown_model` naming the accepted
models, `max_tokens_too_large`); the LLM step worker asks `is_allowed` and `capped` again when it
answers, so a config stored before the list changed is refused (`model_not_allowed`) or clamped,
never trusted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from kallo.errors import Unprocessable
from kallo.llm import Generation, Provider, ProviderError
from kallo.llm.embedded import CONTEXT_TOKENS as EMBEDDED_CONTEXT_TOKENS
from kallo.settings import get_settings

logger = Logger(child=True)

# What we assume a hosted model reads at most (prompt and answer together). Bedrock and OpenAI chat
# models read far more today; 32k tokens bounds the cost and latency of a long convo all the same.
DEFAULT_CONTEXT_TOKENS = 32768
# The most an answer may ask for (`maxTokens`), per model; a model not listed gets the default cap.
# Never more than half the model's context either (the other half is for the prompt).
DEFAULT_MAX_TOKENS_CAP = 4096
MAX_TOKENS_CAPS: dict[str, int] = {
    "bedrock:amazon.nova-micro-v1:0": 2048,
    "bedrock:amazon.nova-lite-v1:0": 4096,
    "bedrock:anthropic.claude-3-haiku-20240307-v1:0": 4096,
}


def _bedrock() -> Provider:
    from kallo.llm.bedrock import BedrockProvider

    return BedrockProvider()


def openai_api_key(secret_arn: str) -> str:
    """The OpenAI-compatible endpoint's API key, read from its Secrets Manager secret (the key is never
    in the environment). "" when no secret is configured, or while the stack's secret has no value yet:
    requests then go without a key, which is right for keyless servers (a local Ollama or vLLM)."""
    if not secret_arn:
        return ""
    from kallo import aws

    secrets = aws.client("secretsmanager")
    try:
        return secrets.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except secrets.exceptions.ResourceNotFoundException:
        # Created empty by the stack: the operator has not put the key into it yet.
        logger.warning("the OpenAI API key secret has no value: requests go without a key")
        return ""


def _openai() -> Provider:
    from kallo.llm.openai_compatible import OpenAICompatibleProvider

    settings = get_settings()
    # Created once per container (`provider_for`), so the secret is read once per container too.
    return OpenAICompatibleProvider(
        settings.openai_base_url, openai_api_key(settings.openai_api_key_secret_arn)
    )


def _embedded() -> Provider:
    from kallo.llm.embedded import EmbeddedProvider

    return EmbeddedProvider()


@dataclass(frozen=True)
class _Kind:
    create: Callable[[], Provider]
    context_tokens: int


_BUILT_IN: dict[str, _Kind] = {
    "bedrock": _Kind(_bedrock, DEFAULT_CONTEXT_TOKENS),
    "openai": _Kind(_openai, DEFAULT_CONTEXT_TOKENS),
    "embedded": _Kind(_embedded, EMBEDDED_CONTEXT_TOKENS),
}
_registered: dict[str, _Kind] = {}
_created: dict[str, Provider] = {}
_lock = threading.Lock()


def parse(model: str) -> tuple[str, str]:
    """`<provider>:<model id>` → (provider, model id); ProviderError for anything else."""
    provider, colon, model_id = model.strip().partition(":")
    if not colon or not provider or not model_id:
        raise ProviderError(
            f"model {model!r} is not of the form <provider>:<model id>, "
            "e.g. bedrock:amazon.nova-lite-v1:0, openai:gpt-4o-mini or embedded:smollm2"
        )
    return provider, model_id


def _kind(provider: str) -> _Kind:
    kind = _registered.get(provider) or _BUILT_IN.get(provider)
    if kind is None:
        known = ", ".join(sorted({*_BUILT_IN, *_registered}))
        raise ProviderError(f"unknown model provider {provider!r}; the known providers are {known}")
    return kind


def provider_for(model: str) -> tuple[Provider, Generation]:
    """The provider of a model name and the `Generation` naming its model id (sampling settings are
    the caller's to add)."""
    name, model_id = parse(model)
    kind = _kind(name)
    with _lock:  # one provider per container even when answers start on several threads
        provider = _created.get(name)
        if provider is None:
            provider = _created[name] = kind.create()
    return provider, Generation(model=model_id)


def context_tokens(model: str) -> int:
    """How many tokens the model reads at most, its answer included."""
    return _kind(parse(model)[0]).context_tokens


def register(name: str, provider: Provider, *, context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> None:
    """Serve `<name>:<anything>` with `provider` (it takes precedence over a built-in of that name)."""
    with _lock:
        _registered[name] = _Kind(lambda: provider, context_tokens)
        _created.pop(name, None)


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)
        _created.pop(name, None)


def reset() -> None:
    """Forget the providers created so far (they are created again, with the current settings)."""
    with _lock:
        _created.clear()


# -- I10: which models, how many tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class DeployedModel:
    """A model this deployment answers with (`GET /models`)."""

    id: str  # `<provider>:<model id>`
    provider: str
    default: bool


def allowed_models() -> list[str]:
    """The models this stack answers with: the allow-list and the default model."""
    settings = get_settings()
    return list(
        dict.fromkeys([*(m.strip() for m in settings.allowed_models), settings.default_model.strip()])
    )


def deployment_models() -> list[DeployedModel]:
    """The deployment's models, the default first: the default model, then the allow-list's models of a
    known provider (a misspelt provider in `AllowedModels` names nothing that could answer), leaving
    out `openai:` models while no OpenAI-compatible endpoint is configured (`KALLO_OPENAI_BASE_URL`)."""
    settings = get_settings()
    default = settings.default_model.strip()
    found: list[DeployedModel] = []
    for name in dict.fromkeys([default, *allowed_models()]):
        provider = name.partition(":")[0]
        if name != default and (
            provider not in _BUILT_IN or (provider == "openai" and not settings.openai_base_url)
        ):
            continue
        found.append(DeployedModel(id=name, provider=provider, default=name == default))
    return found


def is_allowed(model: str) -> bool:
    """Whether `model` may answer (see the module docstring): one of `deployment_models`, or any model
    of a provider registered in code."""
    name = model.strip()
    provider = name.partition(":")[0]
    with _lock:
        registered = provider in _registered
    return registered or any(m.id == name for m in deployment_models())


def max_tokens_cap(model: str) -> int:
    """The most tokens one answer of `model` may ask for."""
    provider = model.strip().partition(":")[0]
    kind = _registered.get(provider) or _BUILT_IN.get(provider)
    context = kind.context_tokens if kind else DEFAULT_CONTEXT_TOKENS
    return min(MAX_TOKENS_CAPS.get(model.strip(), DEFAULT_MAX_TOKENS_CAP), context // 2)


def capped(model: str, max_tokens: int) -> int:
    """`max_tokens` within the model's cap (a stored config is clamped, never trusted)."""
    return min(max_tokens, max_tokens_cap(model))


def require_allowed(model: str | None, max_tokens: int | None) -> None:
    """I10 (cost): the check of a stepConfig (a topic's defaults, a step's config, a regen's) when it is
    written: its model is one of the deployment's (422 `unknown_model`, naming those), its `maxTokens`
    within the model's cap. Without a model, `max_tokens` is checked against the default model's cap.

    Bedrock ids are checked against the deployment's list only, not against Bedrock's id syntax: IAM
    lets the workers invoke only the listed models (`AllowedBedrockModelArns`), so a well-formed id
    off the list would be accepted here and fail at the answer, the very failure this check prevents."""
    if model is not None and not is_allowed(model):
        raise Unprocessable(
            f"unknown model {model[:200]!r}: this deployment answers with "
            f"{', '.join(m.id for m in deployment_models())} (GET /models lists them)",
            code="unknown_model",
        )
    if max_tokens is not None:
        cap = max_tokens_cap(model or get_settings().default_model)
        if max_tokens > cap:
            raise Unprocessable(f"maxTokens is at most {cap} for this model", code="max_tokens_too_large")
