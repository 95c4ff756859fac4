"""Generic operations on the single table over the low-level DynamoDB client.

Items go in and come out as plain Python dicts (floats are stored as Numbers and read back as int or
float). Conditional failures surface as `Conflict`; nothing here knows about entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from kallo import aws
from kallo.errors import Conflict
from kallo.paging import invalid as invalid_cursor
from kallo.settings import get_settings

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACT_LIMIT = 100
_TABLE_KEY = frozenset({"PK", "SK"})
_INDEX_KEY = frozenset({"GSI1PK", "GSI1SK"})


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


@cache
def _codec() -> tuple[Any, Any]:
    # Imported on first use: any import from boto3 runs its package's __init__, which loads s3transfer
    # (a third of a bare handler's import time). The first item goes to or comes from the client, which
    # imports boto3 then anyway.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    serializer = _codec()[0]
    return {k: serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()}


@dataclass
class Page:
    """One page of a query, and where the next one starts (`last_key`: DynamoDB's LastEvaluatedKey as
    a plain dict, None on the last page). A raw key never leaves the server: the services turn it into
    an opaque cursor with `kallo.paging`."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def _start_key(
    key: dict[str, Any], partition_attr: str, partition_value: str, key_attrs: frozenset[str]
) -> dict[str, Any]:
    """A start key, refused unless it belongs to the query it is used with (a cursor is authenticated,
    but may come from another listing of the same kind)."""
    if (
        not isinstance(key, dict)
        # A start key with missing or extra attributes is a DynamoDB ValidationException (a 5xx).
        or set(key) != key_attrs
        or key.get(partition_attr) != partition_value
        or not all(isinstance(v, str) for v in key.values())
    ):
        raise invalid_cursor()
    return serialize(key)


class Table:
    """The single table. One instance per container, created by `table()`."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def _client(self) -> Any:
        return aws.client("dynamodb")

    def get(self, key: dict[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self.name, Key=serialize(key), ConsistentRead=consistent)
        item = response.get("Item")
        return deserialize(item) if item else None

    def batch_get(self, keys: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
        """Read many items; missing ones are simply absent from the result (order is not kept)."""
        unique = list({(k["PK"], k["SK"]): k for k in keys}.values())
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            request = {self.name: {"Keys": [serialize(k) for k in unique[start : start + BATCH_GET_LIMIT]]}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                found.extend(deserialize(i) for i in response.get("Responses", {}).get(self.name, []))
                request = response.get("UnprocessedKeys") or None
        return found

    def query(
        self,
        partition: str,
        *,
        index: str | None = None,
        prefix: str | None = None,
        between: tuple[str, str] | None = None,
        after: str | None = None,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
        newest_first: bool = False,
        where: tuple[str, Any] | None = None,
        where_any: tuple[tuple[str, str, Any], ...] = (),
        consistent: bool = False,
    ) -> Page:
        """One page of a key-condition query on the table or GSI1 (`index="GSI1"`). `where=(name,
        value)` keeps only the items whose attribute holds the value, `where_any=((name, "=" or "<>",
        value), ...)` those that meet any of the comparisons (filters: DynamoDB still reads, and bills,
        every item of the range); `consistent` reads the table strongly consistently."""
        pk_attr, sk_attr = ("GSI1PK", "GSI1SK") if index else ("PK", "SK")
        names = {"#pk": pk_attr}
        values: dict[str, Any] = {":pk": partition}
        condition = "#pk = :pk"
        if prefix is not None:
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"], values[":prefix"] = sk_attr, prefix
        elif between is not None:
            condition += " AND #sk BETWEEN :low AND :high"
            names["#sk"], values[":low"], values[":high"] = sk_attr, between[0], between[1]
        elif after is not None:
            condition += " AND #sk > :after"
            names["#sk"], values[":after"] = sk_attr, after
        if where is not None and where_any:
            raise ValueError("give where or where_any, not both")
        either = []
        for i, (name, operator, value) in enumerate(where_any):
            if operator not in ("=", "<>"):
                raise ValueError(f"unknown comparison {operator}")
            names[f"#any{i}"], values[f":any{i}"] = name, value
            either.append(f"#any{i} {operator} :any{i}")
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
            "ScanIndexForward": not newest_first,
        }
        if index:
            params["IndexName"] = index
        if either:
            params["FilterExpression"] = " OR ".join(either)
        if where is not None:
            params["FilterExpression"] = "#where = :where"
            names["#where"] = where[0]
            params["ExpressionAttributeValues"] = serialize({**values, ":where": where[1]})
        if consistent:
            params["ConsistentRead"] = True
        if limit:
            params["Limit"] = limit
        if start_key:
            key_attrs = _TABLE_KEY | (_INDEX_KEY if index else frozenset())
            params["ExclusiveStartKey"] = _start_key(start_key, pk_attr, partition, key_attrs)
        try:
            response = self._client.query(**params)
        except ClientError as error:
            # DynamoDB refuses a start key outside the key condition (a cursor of another query).
            if start_key and error.response.get("Error", {}).get("Code") == "ValidationException":
                raise invalid_cursor() from error
            raise
        items = [deserialize(i) for i in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        return Page(items, deserialize(last_key) if last_key else None)

    def query_all(self, partition: str, **conditions: Any) -> list[dict[str, Any]]:
        """Every item a query matches, following the pages."""
        items: list[dict[str, Any]] = []
        start = None
        while True:
            page = self.query(partition, start_key=start, **conditions)
            items.extend(page.items)
            start = page.last_key
            if not start:
                return items

    def count(self, partition: str, *, index: str | None = None, prefix: str | None = None) -> int:
        pk_attr, sk_attr = ("GSI1PK", "GSI1SK") if index else ("PK", "SK")
        params: dict[str, Any] = {
            "TableName": self.name,
            "Select": "COUNT",
            "KeyConditionExpression": "#pk = :pk" + (" AND begins_with(#sk, :prefix)" if prefix else ""),
            "ExpressionAttributeNames": {"#pk": pk_attr, **({"#sk": sk_attr} if prefix else {})},
            "ExpressionAttributeValues": serialize(
                {":pk": partition, **({":prefix": prefix} if prefix else {})}
            ),
        }
        if index:
            params["IndexName"] = index
        total = 0
        while True:
            response = self._client.query(**params)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def put(self, item: dict[str, Any], *, must_not_exist: bool = False) -> None:
        params: dict[str, Any] = {"TableName": self.name, "Item": serialize(item)}
        if must_not_exist:
            params["ConditionExpression"] = "attribute_not_exists(PK)"
        try:
            self._client.put_item(**params)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict("an object with this id already exists", code="already_exists") from error

    def update(
        self,
        key: dict[str, str],
        changes: dict[str, Any],
        *,
        remove: Iterable[str] = (),
        expect: tuple[tuple[str, ...], Any] | None = None,
    ) -> dict[str, Any]:
        """Set (and remove) attributes of an existing item; returns the whole item after the update.

        `expect=(("latestStep", "id"), value)` also requires an attribute (path) to hold a value (to be
        absent, when the value is None).
        Raises `Conflict` with code `not_found` when the item does not exist (it was deleted meanwhile)
        or the expectation does not hold.
        """
        sets = [f"#{i} = :{i}" for i in range(len(changes))]
        names = {f"#{i}": name for i, name in enumerate(changes)}
        removed = list(remove)
        names.update({f"#r{i}": name for i, name in enumerate(removed)})
        expression = ("SET " + ", ".join(sets)) if sets else ""
        if removed:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        params: dict[str, Any] = {
            "TableName": self.name,
            "Key": serialize(key),
            "UpdateExpression": expression.strip(),
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        values = {f":{i}": v for i, v in enumerate(changes.values())}
        if expect:
            path, expected = expect
            names.update({f"#e{i}": part for i, part in enumerate(path)})
            attribute = ".".join(f"#e{i}" for i in range(len(path)))
            if expected is None:
                params["ConditionExpression"] += f" AND attribute_not_exists({attribute})"
            else:
                params["ConditionExpression"] += f" AND {attribute} = :expected"
                values[":expected"] = expected
        if values:
            params["ExpressionAttributeValues"] = serialize(values)
        try:
            response = self._client.update_item(**params)
        except self._client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict("the object changed while it was being updated", code="not_found") from error
        return deserialize(response["Attributes"])

    def lease(self, key: dict[str, str], name: str, until: int, *, now: int, unless: str) -> None:
        """Take a lease on an existing item: set `name` to `until` (epoch seconds) only while no one
        holds it (the attribute is absent, or its lease ended at `now` or before) and the work it
        guards is not done (attribute `unless` is absent). A holder that crashed blocks no one past
        `until`. Raises `Conflict` when the lease is held, the work is done or the item is gone."""
        try:
            self._client.update_item(
                TableName=self.name,
                Key=serialize(key),
                UpdateExpression="SET #lease = :until",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(#done)"
                    " AND (attribute_not_exists(#lease) OR #lease <= :now)"
                ),
                ExpressionAttributeNames={"#lease": name, "#done": unless},
                ExpressionAttributeValues=serialize({":until": until, ":now": now}),
            )
        except self._client.exceptions.ConditionalCheckFailedException as error:
            raise Conflict("the item is leased, done or gone", code="conflict") from error

    def delete(self, key: dict[str, str]) -> None:
        self._client.delete_item(TableName=self.name, Key=serialize(key))

    def transact(self, operations: list[dict[str, Any]]) -> None:
        """Apply write operations atomically. Each operation is one of:
        `{"put": item, "new": bool}`, `{"delete": key, "exists": bool}`,
        `{"update": key, "set": {...}, "remove": [names]?, "add": {(path...): number}?,
        "expect": ((path...), value)?}` (with `expect`, the attribute must hold that value, or be absent
        when the value is None: an optimistic check for read-modify-write; `add` adds to numbers, e.g.
        counters in a map that exists), `{"check": key, "exists": bool, "one_of": (name, [values])?}`
        (`one_of`: the item's attribute must hold one of the values). A put or delete with
        `"expect": ((name,), value)` replaces or deletes only an existing item whose attribute holds
        that value.
        """
        if len(operations) > TRANSACT_LIMIT:
            raise ValueError(f"a transaction holds at most {TRANSACT_LIMIT} operations")
        try:
            self._client.transact_write_items(TransactItems=[self._transact_item(op) for op in operations])
        except self._client.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise Conflict(
                    "the request conflicts with the current state of the objects", code="conflict"
                ) from error
            raise

    def transact_in_batches(self, operations: list[dict[str, Any]]) -> None:
        """`transact` for more operations than one transaction holds: in order, `TRANSACT_LIMIT` at a
        time. Each batch is atomic, the whole is not: a failure leaves the earlier batches applied."""
        for start in range(0, len(operations), TRANSACT_LIMIT):
            self.transact(operations[start : start + TRANSACT_LIMIT])

    def _transact_item(self, operation: dict[str, Any]) -> dict[str, Any]:
        if "put" in operation:
            put: dict[str, Any] = {"TableName": self.name, "Item": serialize(operation["put"])}
            if operation.get("new"):
                put["ConditionExpression"] = "attribute_not_exists(PK)"
            elif "expect" in operation:
                put.update(_expectation(operation["expect"]))
            return {"Put": put}
        if "delete" in operation:
            delete: dict[str, Any] = {"TableName": self.name, "Key": serialize(operation["delete"])}
            if "expect" in operation:
                delete.update(_expectation(operation["expect"]))
            elif operation.get("exists"):
                delete["ConditionExpression"] = "attribute_exists(PK)"
            return {"Delete": delete}
        if "update" in operation:
            changes = operation.get("set", {})
            removed = list(operation.get("remove", ()))
            added = list(operation.get("add", {}).items())
            names = {f"#{i}": name for i, name in enumerate(changes)}
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
            expression = ("SET " + ", ".join(f"#{i} = :{i}" for i in range(len(changes)))) if changes else ""
            if removed:
                expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
            values = {f":{i}": v for i, v in enumerate(changes.values())}
            if added:
                paths = []
                for a, (path, amount) in enumerate(added):
                    names.update({f"#a{a}_{i}": part for i, part in enumerate(path)})
                    paths.append(".".join(f"#a{a}_{i}" for i in range(len(path))) + f" :a{a}")
                    values[f":a{a}"] = amount
                expression += " ADD " + ", ".join(paths)
            expression = expression.strip()
            condition = "attribute_exists(PK)"
            if "expect" in operation:
                path, expected = operation["expect"]
                names.update({f"#e{i}": part for i, part in enumerate(path)})
                attribute = ".".join(f"#e{i}" for i in range(len(path)))
                if expected is None:
                    condition += f" AND attribute_not_exists({attribute})"
                else:
                    condition += f" AND {attribute} = :expected"
                    values[":expected"] = expected
            return {
                "Update": {
                    "TableName": self.name,
                    "Key": serialize(operation["update"]),
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": serialize(values),
                }
            }
        check = operation["check"]
        condition = "attribute_exists(PK)" if operation.get("exists", True) else "attribute_not_exists(PK)"
        checked: dict[str, Any] = {"TableName": self.name, "Key": serialize(check)}
        if "one_of" in operation:
            name, allowed = operation["one_of"]
            condition += " AND #one_of IN (" + ", ".join(f":o{i}" for i in range(len(allowed))) + ")"
            checked["ExpressionAttributeNames"] = {"#one_of": name}
            checked["ExpressionAttributeValues"] = serialize({f":o{i}": v for i, v in enumerate(allowed)})
        return {"ConditionCheck": {**checked, "ConditionExpression": condition}}

    def batch_delete(self, keys: Iterable[dict[str, str]]) -> int:
        """Delete many items (not atomically), 25 per request; returns how many were asked for."""
        pending = [{"DeleteRequest": {"Key": serialize(k)}} for k in keys]
        for start in range(0, len(pending), BATCH_WRITE_LIMIT):
            request = {self.name: pending[start : start + BATCH_WRITE_LIMIT]}
            while request:
                response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or None
        return len(pending)

    def iter_keys(self, partition: str, **conditions: Any) -> Iterator[dict[str, str]]:
        for item in self.query_all(partition, **conditions):
            yield {"PK": item["PK"], "SK": item["SK"]}


def _expectation(expect: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    """The condition of a put or delete that needs the item to exist with an attribute's value."""
    (name,), expected = expect
    return {
        "ConditionExpression": "attribute_exists(PK) AND #expected = :expected",
        "ExpressionAttributeNames": {"#expected": name},
        "ExpressionAttributeValues": serialize({":expected": expected}),
    }


_table: Table | None = None


def table() -> Table:
    global _table
    if _table is None or _table.name != get_settings().table_name:
        _table = Table(get_settings().table_name)
    return _table
