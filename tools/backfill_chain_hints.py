"""Write the `chainHint` of every topic-owned convo's owner grant that has none or a stale one.

    python -m tools.backfill_chain_hints --stack-name kallo [--dry-run]
    python -m tools.backfill_chain_hints --table kallo-Table-ABC

Create a Convo and PUT grantees write a convo's owner grant to a topic with the topic's edges (its
structural grantees, `chainHint`), so a check of the convo from a process that remembers nothing reads
the convo's grants and then the rest of its chain in one BatchGetItem (Query Convo Steps 3 calls,
`$connect` 2). Owner grants written before hints existed have none, and a topic moved or shared since
leaves its convos' hints stale: their checks pay the whole check (Query Convo Steps 4). Run this once
after deploying hints, and again after moving topics between teams, if those convos' reads matter.

It is a migration, not a request path: one Scan of the table (every convo's owner grant to a topic),
one Query per topic (its structural grants) and one conditional UpdateItem per hint that changes,
written only while the grant is still the convo's owner grant. A hint is never trusted (every check
reads each edge it uses, `kallo.authz.access`), so a run racing a move is harmless: its hint may be
stale at once, which costs the whole check, never access. The table is named with --table, or found
from the CloudFormation stack's `TableName` output; credentials and region as for `tools.admin`.
Prints `{convos, written, current, gone}` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.admin import add_target_options, use_environment, use_table


def _topic_owner_grants() -> Iterator[dict[str, Any]]:
    """Every convo's owner grant to a topic (a Scan, paged; a migration's read only)."""
    from kallo import aws
    from kallo.store.table import deserialize, table

    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table().name,
            FilterExpression="#entity = :grant AND #type = :convo AND #grantee = :topic AND #role = :owner",
            ExpressionAttributeNames={
                "#entity": "entity",
                "#type": "objectType",
                "#grantee": "granteeType",
                "#role": "role",
            },
            ExpressionAttributeValues={
                ":grant": {"S": "grant"},
                ":convo": {"S": "convo"},
                ":topic": {"S": "topic"},
                ":owner": {"S": "owner"},
            },
        )
    )
    for page in pages:
        yield from (deserialize(item) for item in page.get("Items", []))


def backfill(*, dry_run: bool = False) -> dict[str, int]:
    """Give every topic-owned convo's owner grant its topic's current edges as its hint."""
    from kallo.authz.access import hint_of
    from kallo.store import grants

    edges: dict[Any, list[str]] = {}
    counts = {"convos": 0, "written": 0, "current": 0, "gone": 0}
    for grant in _topic_owner_grants():
        convo, topic = grants.object_ref(grant), grants.grantee_ref(grant)
        counts["convos"] += 1
        if topic not in edges:
            edges[topic] = hint_of([grants.grantee_ref(g) for g in grants.structural(topic)])
        if grant.get("chainHint") == edges[topic] or not edges[topic]:
            # Already right, or a topic with no structural grants (a user's): no hint, as Create writes.
            counts["current"] += 1
        elif dry_run or grants.set_chain_hint(convo, topic, edges[topic]):
            counts["written"] += 1
        else:
            counts["gone"] += 1  # the convo moved or was deleted meanwhile: nothing to hint
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.backfill_chain_hints", description=__doc__)
    add_target_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="count what would be written, write nothing")
    arguments = parser.parse_args(argv)
    use_environment(arguments)
    try:
        use_table(arguments)
        counts = backfill(dry_run=arguments.dry_run)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"AWS error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
