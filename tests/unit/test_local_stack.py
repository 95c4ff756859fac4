"""The local stack's configuration: the functions' shared environment, stack parameter overrides, the
bootstrap key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import bootstrap, resources, stack, template

TEMPLATE = template.load()
PHYSICAL = {
    "Table": {"Ref": "kallo-local-Table"},
    "UploadsBucket": {"Ref": "kallo-local-uploadsbucket"},
    "JwtSigningSecret": {"Ref": "arn:secret"},
    "OpenAIApiKeySecret": {"Ref": "arn:openai-secret"},
    "PurgeQueue": {"Ref": "http://sqs/purge"},
    "StepQueue": {"Ref": "http://sqs/steps.fifo"},
    "DataSourceQueue": {"Ref": "http://sqs/data-sources"},
    "ExportQueue": {"Ref": "http://sqs/exports"},
    "StreamQueue": {"Ref": "http://sqs/streams"},
    "WebSocketApi": {"Ref": "kallo-local-websocketapi-local"},
}


def environment(environ: dict[str, str]) -> dict[str, str]:
    resolver = template.Resolver(TEMPLATE, PHYSICAL)
    resolver.parameters.update(stack.parameter_overrides(TEMPLATE, environ))
    return stack.shared_environment(TEMPLATE, resolver, environ)


def test_the_functions_get_the_templates_environment() -> None:
    variables = environment({})
    assert variables["KALLO_TABLE_NAME"] == "kallo-local-Table"
    assert variables["KALLO_PURGE_QUEUE_URL"] == "http://sqs/purge"
    assert variables["KALLO_OIDC_ISSUERS"] == "[]"
    assert variables["KALLO_JWT_ISSUER"] == "https://kallo-local.kallo.api"


def test_a_developer_sets_stack_parameters_through_their_variables() -> None:
    issuers = json.dumps([{"issuer": "https://i", "audience": "a", "jwksUri": "http://127.0.0.1/jwks"}])
    variables = environment({"KALLO_OIDC_ISSUERS": issuers, "POWERTOOLS_LOG_LEVEL": "DEBUG"})
    assert variables["KALLO_OIDC_ISSUERS"] == issuers
    assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"


def test_invitation_links_point_at_this_stacks_console_unless_the_developer_says_otherwise() -> None:
    base = "http://127.0.0.1:3000"
    # The template passes PublicConsoleUrl (empty by default) to Add Grantee as KALLO_CONSOLE_URL.
    assert environment({})["KALLO_CONSOLE_URL"] == ""
    assert stack.console_url(environment({}), base) == "http://127.0.0.1:3000/console/"
    mine = {"KALLO_CONSOLE_URL": "https://kallo.example.com/console/"}
    assert environment(mine)["KALLO_CONSOLE_URL"] == "https://kallo.example.com/console/"
    assert stack.console_url(environment(mine), base) == "https://kallo.example.com/console/"


def test_resources_always_come_from_the_local_stack() -> None:
    assert environment({"KALLO_TABLE_NAME": "prod-table"})["KALLO_TABLE_NAME"] == "kallo-local-Table"


def test_local_defaults_yield_to_the_developer() -> None:
    assert environment({})["KALLO_DEFAULT_MODEL"] == stack.LOCAL_DEFAULTS["KALLO_DEFAULT_MODEL"]
    # Only the embedded model is allowed locally (the default model always is, whatever it is).
    assert json.loads(environment({})["KALLO_ALLOWED_MODELS"]) == ["embedded:smollm2"]
    assert (
        environment({"KALLO_DEFAULT_MODEL": "openai:gpt-4o-mini"})["KALLO_DEFAULT_MODEL"]
        == "openai:gpt-4o-mini"
    )


@pytest.fixture
def saved_environment() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("saved_environment")
def test_embedded_aws_replaces_any_real_aws_configuration() -> None:
    os.environ["AWS_PROFILE"] = "production"
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = "https://dynamodb.eu-west-1.amazonaws.com"
    stack.use_embedded_aws("http://127.0.0.1:5555")
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert "AWS_PROFILE" not in os.environ and "AWS_ENDPOINT_URL_DYNAMODB" not in os.environ
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


@pytest.mark.parametrize("value", ["", "   "])
def test_no_requested_key_means_a_generated_one(value: str) -> None:
    assert bootstrap.requested_key({"KALLO_API_KEY": value}) is None
    assert bootstrap.requested_key({}) is None


@pytest.mark.parametrize("value", ["secret_key_of_some_length", "kallo_short", "kallo_" + "x" * 123])
def test_a_key_the_api_would_refuse_is_refused_at_start(value: str) -> None:
    with pytest.raises(bootstrap.InvalidApiKey, match="must start with `kallo_` and be 16 to 128"):
        bootstrap.requested_key({"KALLO_API_KEY": value})


def test_the_bootstrap_account_gets_the_requested_key(aws: Any) -> None:
    from kallo.auth.authenticate import authenticate

    created = bootstrap.create("kallo_my_local_key_1")
    assert created.api_key == "kallo_my_local_key_1" and not created.generated
    principal = authenticate({"x-api-key": "kallo_my_local_key_1"})
    assert principal.user_id == created.user_id and principal.is_service_account
    generated = bootstrap.create(None)
    assert generated.generated and generated.api_key.startswith("kallo_")


def test_the_banner_has_a_curl_to_paste() -> None:
    text = bootstrap.banner(
        "http://127.0.0.1:3000", bootstrap.Bootstrap("u-1", "kallo_abc_0123456789", False), 1.23
    )
    assert "http://127.0.0.1:3000  (started in 1.2 s)" in text
    assert "curl -s -X POST http://127.0.0.1:3000/teams -H 'x-api-key: kallo_abc_0123456789'" in text
    assert "in memory" in text
    assert "WebSocket  ws://127.0.0.1:3000/ws?convoId=<convo id>" in text


def test_the_model_callers_get_the_provider_endpoint_and_its_secret_not_a_key() -> None:
    variables = environment({"KALLO_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"})
    assert variables["KALLO_OPENAI_BASE_URL"] == "http://127.0.0.1:11434/v1"
    assert variables["KALLO_OPENAI_API_KEY_SECRET_ARN"] == "arn:openai-secret"
    assert "KALLO_OPENAI_API_KEY" not in variables


def test_the_developer_fills_the_provider_secret_from_a_variable() -> None:
    assert stack.secret_values({"KALLO_OPENAI_API_KEY": "sk-local"}) == {"OpenAIApiKeySecret": "sk-local"}
    assert stack.secret_values({"KALLO_OPENAI_API_KEY": ""}) == {}
    with mock_aws():
        physical = resources.provision(TEMPLATE, secret_values={"OpenAIApiKeySecret": "sk-local"})
        secrets = boto3.client("secretsmanager", region_name=template.REGION)
        value = secrets.get_secret_value(SecretId=physical["OpenAIApiKeySecret"]["Arn"])
        assert value["SecretString"] == "sk-local"
        # The signing key is generated, as CloudFormation's GenerateSecretString does.
        assert (
            len(secrets.get_secret_value(SecretId=physical["JwtSigningSecret"]["Arn"])["SecretString"]) >= 48
        )


def test_without_the_variable_the_provider_secret_has_no_value_as_after_a_deploy() -> None:
    with mock_aws():
        physical = resources.provision(TEMPLATE)
        secrets = boto3.client("secretsmanager", region_name=template.REGION)
        with pytest.raises(secrets.exceptions.ResourceNotFoundException):
            secrets.get_secret_value(SecretId=physical["OpenAIApiKeySecret"]["Arn"])
