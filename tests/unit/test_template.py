"""template.yaml is the one source of truth for routing: every function it declares exists, serves
exactly the route the template gives it, has a sample event, and gets no more table access than it
needs."""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Match

from local import template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = template.load()
FUNCTIONS = template.functions(TEMPLATE)
ROUTES = template.rest_routes(TEMPLATE)
# The compatibility surfaces: ASGI apps (one function per surface) behind a greedy route.
SURFACES = {f for f, r in FUNCTIONS.items() if r["Properties"]["Handler"].startswith("compat.")}
# The browser console: static files and its config, an ASGI app on Mangum like the surfaces.
CONSOLE = "ConsoleFunction"
# The surfaces again, behind the streaming Function URL: a start command for the Lambda Web Adapter.
STREAMING = "StreamingFunction"


# The package every function gets unless it has a CodeUri of its own (the static sites).
SHARED_CODE_URI = TEMPLATE["Globals"]["Function"]["CodeUri"]


def _code_uri(function: str) -> str:
    return FUNCTIONS[function]["Properties"].get("CodeUri", SHARED_CODE_URI)


def _module_path(handler: str, function: str | None = None) -> Path:
    """A handler's module file in its function's package (CodeUri): `function`'s, else that of the
    function whose handler it is, else the shared one."""
    if function is None:
        function = next((f for f, r in FUNCTIONS.items() if r["Properties"]["Handler"] == handler), None)
    module, _, _ = handler.rpartition(".")
    return ROOT / (_code_uri(function) if function else SHARED_CODE_URI) / (module.replace(".", "/") + ".py")


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


def test_the_streaming_function_starts_the_surfaces_app() -> None:
    properties = FUNCTIONS[STREAMING]["Properties"]
    script = ROOT / _code_uri(STREAMING) / properties["Handler"]
    assert script.stat().st_mode & 0o111, "the Web Adapter runs the handler as a command"
    module, _, attribute = re.search(r"-m uvicorn (\S+)", script.read_text()).group(1).partition(":")
    assert f"{attribute} =" in _module_path(f"{module}.x").read_text()
    assert properties["FunctionUrlConfig"] == {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    variables = _variables(properties)
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"


@pytest.mark.parametrize("logical_id", sorted(set(FUNCTIONS) - {STREAMING}))
def test_every_function_has_its_handler(logical_id: str) -> None:
    handler = FUNCTIONS[logical_id]["Properties"]["Handler"]
    path = _module_path(handler, logical_id)
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


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.function)
def test_handler_serves_exactly_its_route(route: template.Route) -> None:
    if route.function in SURFACES | {CONSOLE}:
        # A surface's (or the console's) app serves only paths under its route's prefix.
        app = importlib.import_module(route.handler.rpartition(".")[0]).app
        prefix = route.path.split("{", 1)[0].rstrip("/")
        paths = [r.path for r in (app.routes if route.function == CONSOLE else app.app.routes)]
        assert paths and all(p.startswith(prefix) for p in paths), paths
        return
    decorators = _route_decorators(_module_path(route.handler, route.function).read_text())
    if not decorators:
        # A Starlette app of several routes (the API documents): it answers each, a greedy one too.
        app = importlib.import_module(route.handler.rpartition(".")[0]).app
        assert isinstance(app, Starlette)
        path = route.path.replace("{proxy+}", "swagger-ui.css")
        scope = {"type": "http", "method": route.method, "path": path}
        assert any(r.matches(scope)[0] == Match.FULL for r in app.routes), path
        return
    assert decorators == [(route.method, route.path)]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.function)
def test_every_route_has_a_matching_sample_event(route: template.Route) -> None:
    area, operation = route.handler.rsplit(".", 1)[0].split(".")
    event = json.loads((ROOT / "events" / area / f"{operation}.json").read_text())
    # A function of several routes (the API documents, the console) has a sample of one of them.
    routes = {(r.method, r.path) for r in ROUTES if r.function == route.function}
    assert event["resource"] in {path for _, path in routes}
    # A route of any method (a surface's) has a sample of one of them.
    assert (event["httpMethod"], event["resource"]) in routes or route.method == "ANY"
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
    policies = FUNCTIONS[route.function]["Properties"].get("Policies", [])
    writes = {"Ref": "TableWritePolicy"} in policies
    assert writes == (route.function in {"GetOrCreateUserFunction", "GetStepSuggestionsFunction"})


def test_only_health_is_public() -> None:
    """...and the surfaces, which authenticate every request themselves (`kallo.surfaces`), and the
    functions of static files (the API documents, the console, whose page calls the API with the user's
    credential), which have no AWS permission at all."""
    public = {r.function for r in ROUTES if not r.authorized}
    files = {f for f in public if not FUNCTIONS[f]["Properties"].get("Policies")}
    assert {"DocsFunction", CONSOLE} <= files
    assert public == {"HealthCheckFunction"} | SURFACES | files


# -- operations: logs, secrets, concurrency, throttles ---------------------------------------------

RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
# CloudWatch Logs' valid retention periods (days).
CLOUDWATCH_RETENTION_DAYS = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
]  # fmt: skip
# The functions that call a model provider: the LLM step worker (answers), the data-source worker
# (summaries), Get Step Suggestions (follow-up questions) and the surfaces that answer in process
# (Gloo, Dify). Nothing else may read the provider's key.
MODEL_CALLERS = {
    "StepWorkerFunction",
    "DataSourceWorkerFunction",
    "GetStepSuggestionsFunction",
    "GlooFunction",
    "DifyFunction",
    STREAMING,
}
WORKERS = {
    "StepWorkerFunction",
    "DataSourceWorkerFunction",
    "ExportWorkerFunction",
    "PurgeWorkerFunction",
    "StreamWorkerFunction",
}


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
    # The surfaces that take Kallo access tokens verify them themselves, as the authorizer does (Dify's
    # takes app keys only).
    assert readers == signers | {r.function for r in PAGED} | (SURFACES - {"DifyFunction"}) | {STREAMING}


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
    policies = FUNCTIONS[route.function]["Properties"].get("Policies", [])
    assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "JwtSigningSecret"}}} in policies


# -- observability: alarms, their topic, the dashboard, samconfig -----------------------------------

ALARMS = _of_type("AWS::CloudWatch::Alarm")
ALARM_TOPIC = {"Fn::If": ["OwnAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
# The metrics the code emits (namespace Kallo, docs/DEVELOPING.md, Observability).
KALLO_METRICS = {
    "Answers",
    "InputTokens",
    "OutputTokens",
    "FirstDeltaLatency",
    "CompletionLatency",
    "FailedAnswers",
    "ThrottledRequests",
    "QuotaRefusals",
    "WebSocketSendFailures",
    "InvitationMailFailures",
}
# The AWS metrics the alarms and the dashboard may name, with the dimension sets they come with.
AWS_METRICS = {
    "AWS/ApiGateway": {
        ("ApiName", "Stage"): {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
        ("ApiId", "Stage"): {
            "ConnectCount",
            "MessageCount",
            "ClientError",
            "IntegrationError",
            "ExecutionError",
            "IntegrationLatency",
        },
    },
    "AWS/Lambda": {
        (): {"Errors", "Throttles", "Invocations", "ConcurrentExecutions"},
        ("FunctionName",): {"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"},
    },
    "AWS/SQS": {("QueueName",): {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}},
    "AWS/DynamoDB": {
        ("TableName",): {
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        },
        ("TableName", "GlobalSecondaryIndexName"): {
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        },
    },
    "Kallo": {("service",): KALLO_METRICS - {"InputTokens", "OutputTokens"}},
}
# What each dimension must name (after the dashboard's Fn::Sub is read back, see `_dashboard`).
DIMENSION_VALUES = {
    # A REST API's metrics are named by its Name, which is the stack name.
    "ApiName": lambda v: (
        v == "${AWS::StackName}" and RESOURCES["RestApi"]["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    ),
    "ApiId": lambda v: v == "${WebSocketApi}",
    "Stage": lambda v: v == "${StageName}",
    "FunctionName": lambda v: v.strip("${}") in FUNCTIONS,
    "QueueName": lambda v: (
        v.startswith("${")
        and v.endswith(".QueueName}")
        and RESOURCES[v[2:].split(".")[0]]["Type"] == "AWS::SQS::Queue"
    ),
    "TableName": lambda v: v == "${Table}",
    "GlobalSecondaryIndexName": lambda v: (
        v in {i["IndexName"] for i in RESOURCES["Table"]["Properties"]["GlobalSecondaryIndexes"]}
    ),
    # Powertools' default dimension: POWERTOOLS_SERVICE_NAME, the stack name.
    "service": lambda v: v == "${AWS::StackName}",
}


def _dead_letter_queues() -> set[str]:
    return {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in _of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }


def _as_sub(value) -> str:
    """A dimension value of an alarm written the way the dashboard's Fn::Sub writes it."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    return "${" + ".".join(value["Fn::GetAtt"]) + "}"


def _check_metric(namespace: str, name: str, dimensions: dict[str, str]) -> None:
    sets = AWS_METRICS[namespace]
    key = tuple(dimensions)
    assert key in sets and name in sets[key], (namespace, name, key)
    for dimension, value in dimensions.items():
        assert DIMENSION_VALUES[dimension](value), (name, dimension, value)


def test_the_service_dimension_is_the_stack_name() -> None:
    """The code's metrics carry Powertools' `service` dimension: the alarms and the dashboard expect
    the stack name there, and Kallo as the namespace."""
    variables = _variables(TEMPLATE["Globals"]["Function"])
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Kallo"


@pytest.mark.parametrize("queue", sorted(_dead_letter_queues()))
def test_every_dead_letter_queue_has_an_alarm(queue: str) -> None:
    alarms = [
        a["Properties"]
        for a in ALARMS.values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert len(alarms) == 1, f"{queue} needs an alarm on ApproximateNumberOfMessagesVisible"
    (alarm,) = alarms
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_the_dead_letter_queues_are_found() -> None:
    assert _dead_letter_queues() == {
        "PurgeDeadLetterQueue",
        "StepDeadLetterQueue",
        "DataSourceDeadLetterQueue",
        "ExportDeadLetterQueue",
        "StreamDeadLetterQueue",
    }


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic(logical_id: str) -> None:
    alarm = ALARMS[logical_id]
    assert alarm["Condition"] == "MonitoringEnabled"
    properties = alarm["Properties"]
    assert properties["AlarmActions"] == [ALARM_TOPIC]
    assert properties["OKActions"] == [ALARM_TOPIC]
    assert properties["TreatMissingData"] == "notBreaching"
    assert properties.get("AlarmDescription")


def test_the_alarm_topic_is_the_parameter_or_the_stacks_own() -> None:
    conditions = TEMPLATE["Conditions"]
    assert conditions["MonitoringEnabled"] == {"Fn::Equals": [{"Ref": "Monitoring"}, "Enabled"]}
    assert conditions["OwnAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert conditions["CreateAlarmTopic"] == {
        "Fn::And": [{"Condition": "MonitoringEnabled"}, {"Condition": "OwnAlarmTopic"}]
    }
    assert PARAMETERS["AlarmTopicArn"]["Default"] == ""
    assert PARAMETERS["Monitoring"]["Default"] == "Enabled"
    assert RESOURCES["AlarmTopic"] == {
        "Type": "AWS::SNS::Topic",
        "Condition": "CreateAlarmTopic",
        "Properties": RESOURCES["AlarmTopic"]["Properties"],
    }
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "SubscribeAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert {"Condition": "CreateAlarmTopic"} in conditions["SubscribeAlarmEmail"]["Fn::And"]
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == ALARM_TOPIC


def _alarm_metrics(properties: dict) -> list[tuple[str, str, dict[str, str]]]:
    stats = (
        [m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m]
        if "Metrics" in properties
        else [properties]
    )
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: _as_sub(d["Value"]) for d in m.get("Dimensions", [])})
        for m in stats
    ]


@pytest.mark.parametrize("logical_id", sorted(ALARMS))
def test_every_alarm_watches_metrics_that_exist(logical_id: str) -> None:
    properties = ALARMS[logical_id]["Properties"]
    for namespace, name, dimensions in _alarm_metrics(properties):
        _check_metric(namespace, name, dimensions)
    if "Metrics" in properties:
        # Metric math: one expression returns the data, and it names only the alarm's own ids.
        returned = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
        assert len(returned) == 1 and "Expression" in returned[0]
        ids = {m["Id"] for m in properties["Metrics"]}
        for metric in properties["Metrics"]:
            if "Expression" in metric:
                names = set(re.findall(r"\b([a-z]\w*)\b", metric["Expression"])) - {"IF", "FILL"}
                assert names <= ids, (logical_id, names - ids)
        assert properties["Threshold"] == {"Ref": "AlarmRatePercent"}


def test_the_alarms_cover_errors_throttles_5xx_and_send_failures() -> None:
    watched = {
        (namespace, name) for a in ALARMS.values() for namespace, name, _ in _alarm_metrics(a["Properties"])
    }
    assert {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "IntegrationError"),
        ("Kallo", "WebSocketSendFailures"),
    } <= watched


@functools.cache
def _dashboard() -> dict:
    """The dashboard's body: the Fn::Sub string, every `${...}` left in place (JSON reads it as text),
    after checking each names a parameter, a resource (attribute) or a pseudo parameter."""
    dashboard = RESOURCES["Dashboard"]
    assert dashboard["Condition"] == "MonitoringEnabled"
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    for name in re.findall(r"\$\{([^}]*)\}", body):
        assert not name.startswith("!"), name
        logical_id, _, attribute = name.partition(".")
        if name.startswith("AWS::"):
            assert name in {"AWS::StackName", "AWS::Region"}, name
        elif attribute:
            assert logical_id in RESOURCES, name
            assert (RESOURCES[logical_id]["Type"], attribute) in {
                ("AWS::SQS::Queue", "QueueName"),
                ("AWS::CloudWatch::Alarm", "Arn"),
            }, name
        else:
            assert name in PARAMETERS or name in RESOURCES, name
    return json.loads(body)


def _dashboard_metrics() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for widget in _dashboard()["widgets"]:
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == "${AWS::Region}"
        for row in widget["properties"]["metrics"]:
            fields = [f for f in row if not isinstance(f, dict)]
            if not fields:
                (options,) = row
                expression = options["expression"]
                # SEARCH over the per-model token counts of this stack.
                match = re.fullmatch(
                    r"SEARCH\('\{Kallo,model,service\} MetricName=\"(\w+)\" service=\"\$\{AWS::StackName\}\"', "
                    r"'Sum', 300\)",
                    expression,
                )
                assert match and match.group(1) in {"InputTokens", "OutputTokens"}, expression
                found.append(("Kallo", match.group(1), {"model": "*", "service": "${AWS::StackName}"}))
                continue
            assert all(f != "." for f in fields), "write every row out (the test reads each one alone)"
            namespace, name, *pairs = fields
            found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def test_the_dashboard_names_only_metrics_and_resources_that_exist() -> None:
    for namespace, name, dimensions in _dashboard_metrics():
        if namespace == "Kallo" and "model" in dimensions:
            continue  # checked in _dashboard_metrics
        _check_metric(namespace, name, dimensions)


def test_the_dashboard_shows_the_main_figures() -> None:
    metrics = _dashboard_metrics()
    named = {(n, m) for n, m, _ in metrics}
    dimension_values = {v for _, _, d in metrics for v in d.values()}
    assert {("Kallo", m) for m in KALLO_METRICS} <= named
    for queue in _of_type("AWS::SQS::Queue"):
        assert f"${{{queue}.QueueName}}" in dimension_values, queue
    for worker in WORKERS:
        for metric in ("Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", metric, {"FunctionName": f"${{{worker}}}"}) in metrics, (worker, metric)
    assert {
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/ApiGateway", "4XXError"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "MessageCount"),
        ("AWS/DynamoDB", "ConsumedReadCapacityUnits"),
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
    } <= named
    (alarm_widget,) = [w for w in _dashboard()["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"${{{a}.Arn}}" for a in ALARMS)


def test_the_kallo_metrics_are_documented() -> None:
    text = (ROOT / "docs" / "DEVELOPING.md").read_text()
    section = text.split("## Observability", 1)[1].split("\n## ", 1)[0]
    for metric in KALLO_METRICS:
        assert f"`{metric}`" in section, metric


def _samconfig() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def _overrides(deploy: dict) -> dict[str, str]:
    """`Key=Value` pairs as `sam deploy` reads them: quotes around a value go (`Key=""` is empty)."""
    value = deploy.get("parameter_overrides", [])
    pairs = value if isinstance(value, list) else value.split()
    return {key: value.strip("\"'") for key, value in (pair.split("=", 1) for pair in pairs)}


def test_samconfig_has_default_dev_and_prod() -> None:
    config = _samconfig()
    assert {"default", "dev", "prod"} <= set(config)
    stacks = [config[env]["global"]["parameters"]["stack_name"] for env in ("default", "dev", "prod")]
    assert len(set(stacks)) == 3
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] and deploy["resolve_s3"] is True
        for name, value in _overrides(deploy).items():
            parameter = PARAMETERS[name]  # a parameter the template has
            if "AllowedValues" in parameter:
                assert value in [str(v) for v in parameter["AllowedValues"]], (env, name, value)
            if parameter["Type"] == "Number":
                assert int(parameter.get("MinValue", 0)) <= int(value), (env, name, value)
            if "AllowedPattern" in parameter:
                assert re.fullmatch(parameter["AllowedPattern"], value), (env, name, value)
    prod = _overrides(config["prod"]["deploy"]["parameters"])
    assert prod["Monitoring"] == "Enabled" and prod["LogLevel"] == "INFO"


def test_the_invitation_mail_cap_is_a_stack_parameter_of_the_function_that_mails() -> None:
    """I9: the day's cap on a user's invitation emails is `InvitationMailsPerDay`, passed to Add Grantee
    (the one function that mails invitations), with the settings' default."""
    from kallo.settings import Settings

    parameter = PARAMETERS["InvitationMailsPerDay"]
    assert parameter["Type"] == "Number" and int(parameter["MinValue"]) == 0
    assert int(parameter["Default"]) == Settings.model_fields["invitation_mails_per_day"].default
    variables = _variables(FUNCTIONS["AddGranteeFunction"]["Properties"])
    assert variables["KALLO_INVITATION_MAILS_PER_DAY"] == {"Ref": "InvitationMailsPerDay"}


def test_invitation_links_follow_the_public_console_url_parameter() -> None:
    """A deployment behind a custom domain sets `PublicConsoleUrl`: every function that builds console
    links (`kallo.web.console_url`) gets it as KALLO_CONSOLE_URL, and the ConsoleUrl output says it.
    Empty (the default) is the REST API's own /console/."""
    parameter = PARAMETERS["PublicConsoleUrl"]
    assert parameter["Type"] == "String" and parameter["Default"] == ""
    pattern = parameter["AllowedPattern"]
    for good in ("", "https://kallo.example.com/console/", "https://example.com/apps/kallo"):
        assert re.fullmatch(pattern, good), good
    for bad in (
        "http://kallo.example.com/console/",
        "kallo.example.com",
        "https://x.example/#/a",
        "https://a b",
    ):
        assert not re.fullmatch(pattern, bad), bad
    linking = {
        logical_id
        for logical_id, resource in FUNCTIONS.items()
        if logical_id != STREAMING
        and "console_url(" in _module_path(resource["Properties"]["Handler"]).read_text()
    }
    assert "AddGranteeFunction" in linking
    for logical_id in linking:
        variables = _variables(FUNCTIONS[logical_id]["Properties"])
        assert variables["KALLO_CONSOLE_URL"] == {"Ref": "PublicConsoleUrl"}, logical_id
    assert "KALLO_CONSOLE_URL" not in _variables(TEMPLATE["Globals"]["Function"])
    output = TEMPLATE["Outputs"]["ConsoleUrl"]["Value"]["Fn::If"]
    assert output[0] == "OwnConsoleUrl" and output[1] == {"Ref": "PublicConsoleUrl"}
    assert TEMPLATE["Conditions"]["OwnConsoleUrl"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PublicConsoleUrl"}, ""]}]
    }


# The functions that serve static files, each with a package (CodeUri) of its own.
SITES = {"DocsFunction": "sites/docs/", CONSOLE: "sites/console/"}


def test_static_files_ship_only_in_the_package_of_the_function_that_serves_them() -> None:
    """Swagger UI (about 2 MB) and the console's files are in the DocsFunction's and the
    ConsoleFunction's packages only: SAM zips a function's whole CodeUri, so in the shared one they
    would be uploaded with, and unpacked into, every one of the other functions."""
    for function in FUNCTIONS:
        assert _code_uri(function) == SITES.get(function, SHARED_CODE_URI), function
    shared = [p for p in (ROOT / SHARED_CODE_URI).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert not [p for p in shared if p.suffix in (".js", ".css", ".html", ".json")]
    # The handlers alone: a few hundred small modules at most.
    assert sum(p.stat().st_size for p in shared) < 512 * 1024
    for function, code_uri in SITES.items():
        root = ROOT / code_uri
        assert _module_path(FUNCTIONS[function]["Properties"]["Handler"], function).is_relative_to(root)
        others = [ROOT / uri for f, uri in SITES.items() if f != function]
        assert not any(other.is_relative_to(root) or root.is_relative_to(other) for other in others)
