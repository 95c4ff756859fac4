"""docs/openapi.json is the API's published contract: it must match what the functions declare, be a
valid OpenAPI 3.1 document, and say what the API really answers: its errors (`{code, message,
details?}`, never Powertools' HTTPValidationError) and its credentials (I1: every operation but the
health check needs one of the three)."""

from __future__ import annotations

import json

from openapi_spec_validator import OpenAPIV31SpecValidator

from local import runtime, template
from tools import openapi, published

TEMPLATE = template.load()
DOCUMENT = json.loads(openapi.DOCUMENT.read_text())
CREDENTIALS = [{"ApiKeyAuth": []}, {"AccessTokenAuth": []}, {"FirebaseAuth": []}]
PUBLIC = {("get", "/health/{apiName}")}


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert published.stale(openapi.NAME, openapi.render()) == [], (
        "docs/openapi.json is out of date: run `python -m tools.openapi`"
    )


def test_the_document_is_valid_openapi_3_1() -> None:
    OpenAPIV31SpecValidator(DOCUMENT).validate()
    assert DOCUMENT["openapi"] == "3.1.0"


def test_the_validator_refuses_a_broken_document() -> None:
    """The validation above can fail: a response without its required description is refused."""
    broken = json.loads(json.dumps(DOCUMENT))
    del broken["paths"]["/teams"]["get"]["responses"]["200"]["description"]
    errors = list(OpenAPIV31SpecValidator(broken).iter_errors())
    assert errors and "description" in str(errors[0])


def _operations() -> list[tuple[str, str, dict]]:
    return [(method, path, op) for path, item in DOCUMENT["paths"].items() for method, op in item.items()]


def test_every_operation_but_health_needs_one_of_the_three_credentials() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {
        **schemes["ApiKeyAuth"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    for name in ("AccessTokenAuth", "FirebaseAuth"):
        assert (schemes[name]["type"], schemes[name]["scheme"], schemes[name]["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )
    for method, path, operation in _operations():
        expected = [] if (method, path) in PUBLIC else CREDENTIALS
        assert operation["security"] == expected, (method, path)
        # An operation that needs a credential says it can be refused one, and a public one cannot.
        assert ("401" in operation["responses"]) == ((method, path) not in PUBLIC), (method, path)


def test_every_4xx_of_every_operation_is_the_api_error() -> None:
    components = DOCUMENT["components"]
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for method, path, operation in _operations():
        errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
        assert {"400", "404", "422"} <= set(errors), (method, path)
        for status, response in errors.items():
            name = response["$ref"].removeprefix("#/components/responses/")
            assert components["responses"][name]["content"] == error_content, (method, path, status)
    error = components["schemas"]["Error"]
    assert error["required"] == ["code", "message"] and set(error["properties"]) == {
        "code",
        "message",
        "details",
    }
    text = json.dumps(DOCUMENT)
    assert "HTTPValidationError" not in text and "ResponseValidationError" not in text


def test_the_document_names_where_the_api_is_served() -> None:
    urls = [server["url"] for server in DOCUMENT["servers"]]
    assert urls[0] == "."  # Swagger UI at /docs calls the stack that served it
    assert "http://127.0.0.1:3000" in urls
    assert any(url.startswith("https://{restApiId}.execute-api.") for url in urls)
    tags = {tag["name"] for tag in DOCUMENT["tags"]}
    assert {t for _, _, op in _operations() for t in op.get("tags", [])} <= tags


def test_the_openapi_document_merges_the_handlers_and_skips_missing_ones() -> None:
    routes = [
        r
        for r in template.rest_routes(TEMPLATE)
        if r.function in ("CreateTeamFunction", "HealthCheckFunction")
    ]
    missing = template.Route("GhostFunction", "ghosts.get_ghost.lambda_handler", "GET", "/ghosts", True)
    functions = runtime.load_functions(TEMPLATE)
    functions["GhostFunction"] = runtime.LocalFunction(
        "GhostFunction", missing.handler, timeout=3, memory=128
    )

    document, left_out = openapi.build_document([*routes, missing], functions, "4.9.1")
    assert left_out == ["ghosts.get_ghost.lambda_handler"]
    assert (document["info"]["title"], document["info"]["version"]) == ("Kallo API", "4.9.1")
    assert set(document["paths"]) == {"/teams", "/health/{apiName}"}
    assert document["paths"]["/health/{apiName}"]["get"]["security"] == []
    assert document["paths"]["/teams"]["post"]["security"] == [
        {"ApiKeyAuth": []},
        {"AccessTokenAuth": []},
        {"FirebaseAuth": []},
    ]
    assert {"Team", "TeamCreate", "Error"} <= set(document["components"]["schemas"])


def test_the_openapi_document_gives_204_no_body_and_every_error_the_api_error_schema() -> None:
    routes = [
        r
        for r in template.rest_routes(TEMPLATE)
        if r.function in ("DeleteTeamFunction", "QueryTeamsFunction", "HealthCheckFunction")
    ]
    document, _ = openapi.build_document(routes, runtime.load_functions(TEMPLATE), "4.9.1")
    delete = document["paths"]["/teams/{teamId}"]["delete"]["responses"]
    listing = document["paths"]["/teams"]["get"]["responses"]
    health = document["paths"]["/health/{apiName}"]["get"]["responses"]

    assert delete["204"] == {"description": "No content"}
    errors = {"400", "401", "403", "404", "409", "413", "415", "422", "429"}
    assert errors <= set(delete)
    assert errors - {"409"} <= set(listing) and "409" not in listing  # a read conflicts with nothing
    assert not {"401", "403"} & set(health) and "429" in health  # no credentials, but the stage throttle
    components = document["components"]
    for status in errors:
        name = delete[status]["$ref"].rsplit("/", 1)[1]
        content = components["responses"][name]["content"]
        assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    # The stage's throttle answers 429 without Retry-After; the caller's own rate and quotas give it.
    assert components["responses"]["TooManyRequests"]["headers"]["Retry-After"]["required"] is False
    assert not {"HTTPValidationError", "ValidationError"} & set(components["schemas"])
