"""Services say what to write, the store how (issue 13, "the house"): the services listed here build no
key and no table operation. Key shapes are `kallo.store.keys`' and the operations on the table
(`kallo.store.table`) are the store modules': a service calls their named functions
(`grants.put_while_object_exists`, `grants.replace`, `invitations.accept`, ...), whose docstrings say
which conditions they enforce and which access pattern they use.

`Ref` (a typed reference to an object) is what services and the store talk in; it is the one name a
service may take from `kallo.store.keys`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "layers" / "kallo" / "kallo" / "services"
# The services (modules of kallo.services) that must import neither kallo.store.keys nor kallo.store.table.
WITHOUT_KEYS_OR_TABLE = [
    "app_keys",
    "credentials",
    "end_users",
    "grantees",
    "invitations",
    "owned",
    "teams",
    "users",
]
_STORE_INTERNALS = ("kallo.store.keys", "kallo.store.table")
_ALLOWED = frozenset({"kallo.store.keys.Ref"})


def store_internals(source: str) -> list[str]:
    """The names a module's source imports from `kallo.store.keys` or `kallo.store.table`,
    the modules themselves included, but `Ref`."""
    imported: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported += [f"{node.module}.{alias.name}" for alias in node.names]
    return [
        name
        for name in imported
        if name not in _ALLOWED and any(name == m or name.startswith(f"{m}.") for m in _STORE_INTERNALS)
    ]


@pytest.mark.parametrize("service", WITHOUT_KEYS_OR_TABLE)
def test_the_service_leaves_keys_and_table_operations_to_the_store(service):
    assert store_internals((SERVICES / f"{service}.py").read_text()) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from kallo.store import grants, keys", ["kallo.store.keys"]),
        ("from kallo.store import table", ["kallo.store.table"]),
        ("import kallo.store.keys", ["kallo.store.keys"]),
        ("from kallo.store.keys import Ref, grant_key", ["kallo.store.keys.grant_key"]),
        (
            "from kallo.store.table import TRANSACT_LIMIT, table",
            ["kallo.store.table.TRANSACT_LIMIT", "kallo.store.table.table"],
        ),
        ("def f():\n    from kallo.store.table import table", ["kallo.store.table.table"]),
        ("from kallo.store.keys import Ref\nfrom kallo.store import grants", []),
    ],
)
def test_every_form_of_import_is_seen(source, found):
    assert store_internals(source) == found
