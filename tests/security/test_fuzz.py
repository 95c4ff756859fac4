"""I11 (hostile input) and I7 (errors): schemathesis fuzzes every operation of docs/openapi.json over the
suite's stack, with a service account's key and with a user's token, with valid and with invalid
requests. No answer may be a 5xx, and every documented status must answer with its documented schema.

Path parameters name the fuzzing tenant's own objects (DELETE excepted), so generated queries and
bodies reach the code behind the lookup. The run is bounded and seeded (EXAMPLES per operation, credential
and kind of request, so 4 requests per operation; no shrinking), so CI sends the same requests every time
and stays well under a minute; `bench/fuzz.py` is the long run (>= 100 examples per operation).
"""

from __future__ import annotations

import pytest

from tests.support import fuzz
from tests.support.local_stack import RunningStack
from tests.support.tenants import Tenant, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.security]

EXAMPLES = 1
SCHEMA = fuzz.load_schema()
OPERATIONS = {operation.label: operation for operation in fuzz.operations(SCHEMA)}


@pytest.fixture(scope="module")
def fuzzer(stack: RunningStack) -> Tenant:
    return make_tenant(stack, "fuzz")


@pytest.mark.parametrize("mode", sorted(fuzz.MODES))
@pytest.mark.parametrize("credential", ["key", "token"])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_i11_fuzzing_finds_no_server_error_and_no_schema_violation(
    stack: RunningStack, fuzzer: Tenant, label: str, credential: str, mode: str
) -> None:
    headers = fuzzer.sa.headers if credential == "key" else fuzzer.user.headers
    tally = fuzz.fuzz(
        OPERATIONS[label],
        base_url=stack.base_url,
        headers=headers,
        examples=EXAMPLES,
        mode=mode,
        known_ids=fuzzer.path_ids(),
    )
    assert tally.examples > 0, f"{label}: no request was generated"
    assert not tally.findings, "\n".join(str(finding) for finding in tally.findings)
