"""template.yaml is the one source of truth for routing: every function it declares exists, serves
exactly the route the template gives it, has a sample event, and gets no more table access than it
needs."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from local import template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = template.load()
FUNCTIONS = template.functions(TEMPLATE)
ROUTES = template.rest_routes(TEMPLATE)
# The compatibility surfaces: one function per surface, an ASGI app serving every path under its prefix.
SURFACES = {"DifyFunction"}
OPERATIONS = [r for r in ROUTES if r.function not in SURFACES]


def _module_path(handler: str) -> Path:
    module, _, _ = handler.rpartition(".")
    return ROOT / "functions" / (module.replace(".", "/") + ".py")


def _route_decorators(source: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every `@app.<method>("<path>")` in a handler module, path in template syntax."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and isinstance(decorator.func.value, ast.Name)
                    and decorator.func.value.id == "app"
                ):
                    path = re.sub(r"<(\w+)>", r"{\1}", decorator.args[0].value)
                    found.append((decorator.func.attr.upper(), path))
    return found


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_its_handler(logical_id: str) -> None:
    handler = FUNCTIONS[logical_id]["Properties"]["Handler"]
    path = _module_path(handler)
    assert path.exists(), f"{logical_id}: {path.relative_to(ROOT)} is missing"
    tree = ast.parse(path.read_text())
    names = {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert handler.rpartition(".")[2] in names


@pytest.mark.parametrize("route", OPERATIONS, ids=lambda r: r.function)
def test_handler_serves_exactly_its_route(route: template.Route) -> None:
    assert _route_decorators(_module_path(route.handler).read_text()) == [(route.method, route.path)]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.function in SURFACES], ids=lambda r: r.function)
def test_a_surface_serves_only_paths_under_its_route(route: template.Route) -> None:
    """A surface is public to API Gateway (it authenticates its own credentials) and its ASGI app
    routes full paths, all under the greedy path the template gives it."""
    assert not route.authorized and route.method == "ANY" and route.path.endswith("/{proxy+}")
    module = importlib.import_module(route.handler.rpartition(".")[0])
    prefix = route.path.removesuffix("{proxy+}")
    paths = [r.path for r in module.lambda_handler.asgi_app.app.routes]
    assert paths and all(p.startswith(prefix) for p in paths)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.function)
def test_every_route_has_a_matching_sample_event(route: template.Route) -> None:
    area, operation = route.handler.rsplit(".", 1)[0].split(".")
    event = json.loads((ROOT / "events" / area / f"{operation}.json").read_text())
    assert event["resource"] == route.path
    assert route.method == "ANY" or event["httpMethod"] == route.method
    assert ("authorizer" in event["requestContext"]) == route.authorized


def test_routes_are_unique() -> None:
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_table_access_never_includes_scan() -> None:
    for name in ("TableReadPolicy", "TableWritePolicy"):
        statements = TEMPLATE["Resources"][name]["Properties"]["PolicyDocument"]["Statement"]
        actions = {a for s in statements for a in s["Action"]}
        assert "dynamodb:Scan" not in actions and not any(a.endswith("*") for a in actions)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "GET"], ids=lambda r: r.function)
def test_reads_do_not_get_write_access(route: template.Route) -> None:
    """GET operations only read, except Get/Create a User, which registers users on the fly (seed), and
    Get Step Suggestions, which keeps the suggestions its first caller makes (API.md)."""
    policies = FUNCTIONS[route.function]["Properties"]["Policies"]
    writes = {"Ref": "TableWritePolicy"} in policies
    assert writes == (route.function in {"GetOrCreateUserFunction", "GetStepSuggestionsFunction"})


def test_only_health_and_the_surfaces_are_public() -> None:
    assert {r.function for r in ROUTES if not r.authorized} == {"HealthCheckFunction", *SURFACES}


# -- operations: logs, secrets, concurrency, throttles ---------------------------------------------

RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
# CloudWatch Logs' valid retention periods (days).
CLOUDWATCH_RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
]  # fmt: skip
# The functions that call a model provider: the LLM step worker (answers), the data-source worker
# (summaries), Get Step Suggestions (follow-up questions) and the surfaces that answer in process. Nothing
# else may read the provider's key.
MODEL_CALLERS = {
    "StepWorkerFunction",
    "DataSourceWorkerFunction",
    "GetStepSuggestionsFunction",
    "DifyFunction",
}
WORKERS = {"StepWorkerFunction", "DataSourceWorkerFunction", "ExportWorkerFunction", "PurgeWorkerFunction"}


def _of_type(kind: str) -> dict[str, dict]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == kind}


def _secrets_read_by(logical_id: str) -> set[str]:
    """The secrets (logical ids) a function's policies let it read (through SAM's policy template: an
    inline statement on Secrets Manager fails the test, since it would escape this check)."""
    read = set()
    for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        if "AWSSecretsManagerGetSecretValuePolicy" in policy:
            read.add(policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Ref"])
        for statement in policy.get("Statement", []):
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert not action.startswith("secretsmanager:"), logical_id
    return read


def _variables(section: dict) -> dict:
    return (section.get("Environment") or {}).get("Variables") or {}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_log_group_that_expires(logical_id: str) -> None:
    """Lambda would create `/aws/lambda/<function>` itself, keeping logs forever."""
    groups = [
        g["Properties"]
        for g in _of_type("AWS::Logs::LogGroup").values()
        if g["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}
    ]
    assert len(groups) == 1, f"{logical_id} needs its AWS::Logs::LogGroup (at the end of Resources)"
    assert groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_log_group_has_the_retention_parameter() -> None:
    groups = _of_type("AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTIONS) + 2  # the functions' and the two APIs' access logs
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups.values())
    retention = PARAMETERS["LogRetentionDays"]
    assert retention["AllowedValues"] == CLOUDWATCH_RETENTION_DAYS
    assert retention["Default"] in CLOUDWATCH_RETENTION_DAYS


def test_no_function_has_a_provider_key_in_its_environment() -> None:
    sections = [TEMPLATE["Globals"]["Function"], *(f["Properties"] for f in FUNCTIONS.values())]
    for section in sections:
        for name in _variables(section):
            assert name.endswith("_SECRET_ARN") or not re.search(
                r"API_?KEY|_TOKEN$|PASSWORD|_SECRET$", name
            ), name


def test_only_the_functions_that_call_a_model_read_the_provider_key() -> None:
    readers = {f for f in FUNCTIONS if "OpenAIApiKeySecret" in _secrets_read_by(f)}
    assert readers == MODEL_CALLERS
    told = {
        f for f in FUNCTIONS if "KALLO_OPENAI_API_KEY_SECRET_ARN" in _variables(FUNCTIONS[f]["Properties"])
    }
    assert told == MODEL_CALLERS
    assert "KALLO_OPENAI_API_KEY_SECRET_ARN" not in _variables(TEMPLATE["Globals"]["Function"])
    for logical_id in MODEL_CALLERS:
        variables = _variables(FUNCTIONS[logical_id]["Properties"])
        assert variables["KALLO_OPENAI_API_KEY_SECRET_ARN"] == {"Ref": "OpenAIApiKeySecret"}
    # Created without a value: the operator puts the key in; nothing in the template holds it.
    secret = RESOURCES["OpenAIApiKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert not {"SecretString", "GenerateSecretString"} & set(secret["Properties"])


def test_the_signing_key_is_read_only_by_the_functions_that_sign_or_verify_tokens() -> None:
    """...and the paged lists, whose cursors are encrypted with a key derived from it (`kallo.paging`)."""
    readers = {f for f in FUNCTIONS if "JwtSigningSecret" in _secrets_read_by(f)}
    signers = {"AuthorizerFunction", "CreateAccessTokenFunction", "WsConnectFunction"}
    assert readers == signers | {r.function for r in PAGED}


def test_workers_have_reserved_concurrency_and_sqs_caps_them_too() -> None:
    sqs_triggered = {
        f
        for f, resource in FUNCTIONS.items()
        if any(e["Type"] == "SQS" for e in (resource["Properties"].get("Events") or {}).values())
    }
    assert sqs_triggered == WORKERS
    for logical_id in WORKERS:
        properties = FUNCTIONS[logical_id]["Properties"]
        reserved = properties["ReservedConcurrentExecutions"]
        parameter = PARAMETERS[reserved["Ref"]]
        assert parameter["Type"] == "Number" and int(parameter["MinValue"]) >= 2  # SQS's minimum
        for event in properties["Events"].values():
            assert event["Properties"]["ScalingConfig"]["MaximumConcurrency"] == reserved


def test_stage_throttles_are_parameters() -> None:
    (settings,) = RESOURCES["RestApi"]["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    route_settings = RESOURCES["WebSocketStage"]["Properties"]["DefaultRouteSettings"]
    assert route_settings["ThrottlingRateLimit"] == {"Ref": "WebSocketThrottleRateLimit"}
    assert route_settings["ThrottlingBurstLimit"] == {"Ref": "WebSocketThrottleBurstLimit"}


@pytest.mark.parametrize(
    ("setting", "group"),
    [
        (RESOURCES["RestApi"]["Properties"]["AccessLogSetting"], "RestApiAccessLogGroup"),
        (RESOURCES["WebSocketStage"]["Properties"]["AccessLogSettings"], "WebSocketAccessLogGroup"),
    ],
    ids=["rest", "websocket"],
)
def test_access_logs_never_carry_the_query_string(setting: dict, group: str) -> None:
    """`?token=` (a browser's WebSocket credential) must not reach the logs: the access log names the
    route, not the path or the query string."""
    condition, enabled, disabled = setting["Fn::If"]
    assert condition == "AccessLogsEnabled" and disabled == {"Ref": "AWS::NoValue"}
    assert enabled["DestinationArn"] == {"Fn::GetAtt": [group, "Arn"]}
    fields = json.loads(enabled["Format"])
    assert fields["requestId"] == "$context.requestId"
    variables = set(re.findall(r"\$[\w.]+", enabled["Format"]))
    assert not {v for v in variables if re.search(r"(?i)query|\$input|\$request|\.path$|override", v)}


def test_execution_logs_stay_off() -> None:
    """Execution logs (and data tracing) would write whole requests, credentials included."""
    for settings in RESOURCES["RestApi"]["Properties"]["MethodSettings"]:
        assert settings.get("LoggingLevel", "OFF") == "OFF" and not settings.get("DataTraceEnabled")
    route_settings = RESOURCES["WebSocketStage"]["Properties"]["DefaultRouteSettings"]
    assert route_settings.get("LoggingLevel", "OFF") == "OFF" and not route_settings.get("DataTraceEnabled")


def _bedrock_statements() -> list[dict]:
    return [
        statement
        for function in FUNCTIONS.values()
        for policy in function["Properties"].get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if any(str(action).startswith("bedrock:") for action in statement.get("Action", []))
    ]


def test_bedrock_is_granted_only_for_the_allowed_models():
    """I10: IAM lets the workers invoke only the listed model ARNs, and those cover every Bedrock model
    the default allow-list and the default model name."""
    statements = _bedrock_statements()
    assert statements and all(s["Resource"] == {"Ref": "AllowedBedrockModelArns"} for s in statements)
    parameters = TEMPLATE["Parameters"]
    arns = parameters["AllowedBedrockModelArns"]["Default"].split(",")
    assert not any(arn.endswith("/*") for arn in arns)
    models = [*json.loads(parameters["AllowedModels"]["Default"]), parameters["DefaultModel"]["Default"]]
    for model in models:
        provider, _, model_id = model.partition(":")
        if provider == "bedrock":
            assert f"arn:aws:bedrock:*::foundation-model/{model_id}" in arns, model


def _takes_cursors(function: str) -> bool:
    return "nextToken" in _module_path(FUNCTIONS[function]["Properties"]["Handler"]).read_text()


PAGED = [r for r in ROUTES if _takes_cursors(r.function)]


def test_the_paged_operations_are_found() -> None:
    assert len(PAGED) >= 10 and "QueryStepsFunction" in {r.function for r in PAGED}


@pytest.mark.parametrize("route", PAGED, ids=lambda r: r.function)
def test_paged_operations_may_read_the_cursor_key(route: template.Route) -> None:
    """A paged list's cursors are encrypted with a key derived from the token signing secret
    (`kallo.paging`): the function may read that secret."""
    policies = FUNCTIONS[route.function]["Properties"]["Policies"]
    assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "JwtSigningSecret"}}} in policies
