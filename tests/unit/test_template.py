"""template.yaml is the one source of truth for routing: every function it declares exists, serves
exactly the route the template gives it, has a sample event, and gets no more table access than it
needs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from local import template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = template.load()
FUNCTIONS = template.functions(TEMPLATE)
ROUTES = template.rest_routes(TEMPLATE)


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


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.function)
def test_handler_serves_exactly_its_route(route: template.Route) -> None:
    assert _route_decorators(_module_path(route.handler).read_text()) == [(route.method, route.path)]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.function)
def test_every_route_has_a_matching_sample_event(route: template.Route) -> None:
    area, operation = route.handler.rsplit(".", 1)[0].split(".")
    event = json.loads((ROOT / "events" / area / f"{operation}.json").read_text())
    assert (event["resource"], event["httpMethod"]) == (route.path, route.method)
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
    """GET operations only read, except Get/Create a User, which registers users on the fly (seed)."""
    policies = FUNCTIONS[route.function]["Properties"]["Policies"]
    writes = {"Ref": "TableWritePolicy"} in policies
    assert writes == (route.function == "GetOrCreateUserFunction")


def test_only_health_is_public() -> None:
    assert [r.function for r in ROUTES if not r.authorized] == ["HealthCheckFunction"]


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
