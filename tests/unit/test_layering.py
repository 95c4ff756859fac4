"""The services say what to write, the store how: a service builds no key and no raw
DynamoDB operation, so it imports neither `kallo.store.table` nor `kallo.store.keys` (whose one name a
service may use is `Ref`, the typed reference every layer passes around)."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import kallo.services

# Every module of kallo.services (a new one included).
SERVICES = sorted(m.name for m in pkgutil.iter_modules(kallo.services.__path__))

FORBIDDEN = frozenset({"kallo.store.table", "kallo.store.keys"})
ALLOWED = frozenset({("kallo.store.keys", "Ref")})


def offending_imports(source: str) -> list[str]:
    """The imports of `kallo.store.table` or `kallo.store.keys` in a module's source, in any spelling
    (`import kallo.store.table`, `from kallo.store import keys`, `from kallo.store.table import table`),
    but `from kallo.store.keys import Ref`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                imports_module = name in FORBIDDEN  # `from kallo.store import keys`
                if imports_module or (node.module in FORBIDDEN and (node.module, alias.name) not in ALLOWED):
                    found.append(name)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_leaves_keys_and_table_to_the_store(service: str) -> None:
    spec = importlib.util.find_spec(f"kallo.services.{service}")
    assert spec is not None and spec.origin is not None
    assert offending_imports(Path(spec.origin).read_text(encoding="utf-8")) == []


def test_every_service_is_checked() -> None:
    assert len(SERVICES) > 30 and {"steps", "grantees", "purge"} <= set(SERVICES)


def test_every_spelling_of_the_import_is_seen() -> None:
    source = (
        "import kallo.store.table\n"
        "from kallo.store import keys, objects\n"
        "from kallo.store.table import TRANSACT_LIMIT, table\n"
        "from kallo.store.keys import Ref, object_key\n"
        "def later():\n"
        "    from kallo.store import table\n"
    )
    assert sorted(offending_imports(source)) == [
        "kallo.store.keys",
        "kallo.store.keys.object_key",
        "kallo.store.table",
        "kallo.store.table",
        "kallo.store.table.TRANSACT_LIMIT",
        "kallo.store.table.table",
    ]
