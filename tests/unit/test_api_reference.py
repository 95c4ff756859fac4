"""docs/API.md's generated tables (REST operations and objects) match docs/openapi.json, and every
operation of the OpenAPI document appears in the reference."""

from __future__ import annotations

import json

from tools import reference


def test_the_reference_tables_are_generated_from_the_openapi_document() -> None:
    document = json.loads(reference.OPENAPI.read_text())
    committed = reference.REFERENCE.read_text()

    assert reference.render(committed, document) == committed, "run: python -m tools.reference"


def test_every_rest_operation_is_in_the_reference() -> None:
    document = json.loads(reference.OPENAPI.read_text())
    committed = reference.REFERENCE.read_text()

    for path, operations in document["paths"].items():
        for method in operations:
            if method in ("get", "post", "put", "patch", "delete"):
                assert f"`{method.upper()} {path}`" in committed


def test_generated_blocks_are_replaced_not_appended() -> None:
    document = {
        "paths": {
            "/things": {"get": {"summary": "List Things", "tags": ["Things"], "responses": {"200": {}}}}
        },
        "components": {"schemas": {}},
    }
    text = "intro\n<!-- generated:rest-operations -->\nstale\n<!-- end:rest-operations -->\nafter\n"

    once = reference.render(text, document)

    assert "stale" not in once and "| List Things (no credential) | `GET /things` |" in once
    assert reference.render(once, document) == once
