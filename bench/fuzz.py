"""The long fuzzing run: schemathesis sends at least 100 generated requests to every operation of
docs/openapi.json on a local stack, half valid and half invalid, half with a service account's key and
half with a user's token, path parameters naming that tenant's own objects (DELETE excepted), and
counts the answers that are server errors (5xx) or break the schema the document gives their status. The bounded run in `make test` is tests/security/test_fuzz.py.

    python -m bench.fuzz [--examples 100] [--seed 10] [--only SUBSTRING]

Prints one line per operation (examples, server errors, schema violations), the totals, and each
distinct failure with the request that caused it. The stack is started in a subprocess on a free
loopback port and stopped at the end. Exit code 0 even when failures are found (it measures; the test
asserts).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from tests.support import fuzz
from tests.support.local_stack import StackFailed, start_stack
from tests.support.tenants import make_tenant

CREDENTIALS = ("key", "token")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=100, help="requests per operation (at least)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--only", default="", help="only the operations whose label contains this")
    arguments = parser.parse_args()
    share = math.ceil(arguments.examples / (len(CREDENTIALS) * len(fuzz.MODES)))
    operations = [o for o in fuzz.operations(fuzz.load_schema()) if arguments.only in o.label]
    started = time.monotonic()
    tallies: list[fuzz.Tally] = []
    try:
        # The throttle is the cost engineer's KALLO_REQUESTS_PER_MINUTE: one caller sends thousands here.
        with start_stack(None, KALLO_REQUESTS_PER_MINUTE="10000000") as stack:
            tenant = make_tenant(stack, "fuzz")
            callers = {"key": tenant.sa.headers, "token": tenant.user.headers}
            for operation in operations:
                total = fuzz.Tally(operation.label)
                for credential in CREDENTIALS:
                    for mode in sorted(fuzz.MODES):
                        tally = fuzz.fuzz(
                            operation,
                            base_url=stack.base_url,
                            headers=callers[credential],
                            examples=share,
                            mode=mode,
                            seed_value=arguments.seed,
                            known_ids=tenant.path_ids(),
                        )
                        total.examples += tally.examples
                        total.findings += tally.findings
                tallies.append(total)
                print(
                    f"{operation.label:<62} {total.examples:>5} examples {total.server_errors:>4} server errors "
                    f"{total.schema_violations:>4} schema violations",
                    flush=True,
                )
    except StackFailed as error:
        print(f"bench.fuzz: {error}", file=sys.stderr)
        return 1
    examples = sum(t.examples for t in tallies)
    errors = sum(t.server_errors for t in tallies)
    violations = sum(t.schema_violations for t in tallies)
    print(
        f"\n{len(tallies)} operations, {examples} examples in {time.monotonic() - started:.0f} s: "
        f"{errors} server errors, {violations} schema violations"
    )
    distinct: dict[tuple[str, str, int, str], fuzz.Finding] = {}
    for tally in tallies:
        for finding in tally.findings:
            distinct.setdefault(
                (finding.operation, finding.check, finding.status, finding.response[:80]), finding
            )
    if distinct:
        print(f"\n{len(distinct)} distinct failures:")
        for finding in distinct.values():
            print(f"- {finding}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
