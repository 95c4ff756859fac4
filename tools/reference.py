"""Write the generated parts of docs/API.md from docs/openapi.json (`python -m tools.reference`): the
table of REST operations and the fields of every object they take or return. The prose around them is
written by hand; a test fails when the generated parts drift from the OpenAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "docs" / "openapi.json"
REFERENCE = ROOT / "docs" / "API.md"
_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z-]+) -->\n).*?(<!-- end:(?P=name) -->)", re.DOTALL)
_METHODS = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: dict[str, Any] | None) -> str | None:
    """The component a request or response body refers to (`Topic`, `list of Topic`), if any."""
    if not schema:
        return None
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        inner = _schema_name(schema.get("items"))
        return f"list of {inner}" if inner else None
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _schema_name(option)
    return None


def _body(content: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(media type, schema name) of a request or response body."""
    if not content:
        return None, None
    media_type, spec = next(iter(content.items()))
    return media_type, _schema_name(spec.get("schema"))


def _objects_named(text: str | None) -> list[str]:
    return [text.removeprefix("list of ")] if text else []


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if "anyOf" in schema:
        options = [_type_of(option) for option in schema["anyOf"] if option.get("type") != "null"]
        return " \\| ".join(dict.fromkeys(options)) or "null"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return str(kind)


def operations_table(document: dict[str, Any]) -> tuple[str, list[str]]:
    """The REST operations by tag, and the objects their bodies name (in order of appearance)."""
    by_tag: dict[str, list[str]] = {}
    objects: list[str] = []
    for path, operations in document["paths"].items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            query = [
                p["name"] + ("" if p.get("required") else "?")
                for p in operation.get("parameters", [])
                if p["in"] == "query"
            ]
            request = f"`{method.upper()} {path}`" + (f" `?{'&'.join(query)}`" if query else "")
            media_type, body = _body(operation.get("requestBody", {}).get("content"))
            if media_type and media_type != "application/json":
                body = f"{media_type}" + (f" ({body})" if body else "")
            status, response = next(
                ((code, r) for code, r in operation["responses"].items() if code.startswith("2")), ("", {})
            )
            _, answer = _body(response.get("content"))
            objects += _objects_named(body) + _objects_named(answer)
            auth = "" if operation.get("security") else " (no credential)"
            row = f"| {operation.get('summary', '')}{auth} | {request} | {body or ''} | {status} {answer or ''} |"
            by_tag.setdefault(operation.get("tags", ["Other"])[0], []).append(row)
    lines = []
    for tag, rows in by_tag.items():
        lines += [f"### {tag}", "| operation | request | body | answer |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines), list(
        dict.fromkeys(o for o in objects if not o.startswith(("multipart", "list")))
    )


def objects_section(document: dict[str, Any], names: list[str]) -> str:
    """Each object's fields: name, type, required, description (from the models' own descriptions)."""
    schemas = document["components"]["schemas"]
    pending, seen, lines = list(names), set(), []
    while pending:
        name = pending.pop(0)
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        schema = schemas[name]
        required = set(schema.get("required", []))
        lines += [f"#### {name}"]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        if "properties" not in schema:
            lines += [f"{_type_of(schema)}", ""]
            continue
        lines += ["| field | type | |", "|---|---|---|"]
        for field, spec in schema["properties"].items():
            note = " ".join(spec.get("description", "").split()).replace("|", "\\|")
            mark = "**required**. " if field in required else ""
            lines.append(f"| `{field}` | {_type_of(spec)} | {mark}{note} |")
            pending += re.findall(r"\b([A-Z]\w+)\b", _type_of(spec))
        lines.append("")
    return "\n".join(lines)


def render(reference: str, document: dict[str, Any]) -> str:
    table, objects = operations_table(document)
    generated = {"rest-operations": table, "objects": objects_section(document, objects)}
    return _BLOCK.sub(lambda m: m.group(1) + generated[m.group("name")] + "\n" + m.group(3), reference)


def main() -> None:
    REFERENCE.write_text(render(REFERENCE.read_text(), json.loads(OPENAPI.read_text())))
    print(f"wrote {REFERENCE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
