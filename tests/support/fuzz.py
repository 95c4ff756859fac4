"""Property-based fuzzing of the REST API with schemathesis, from the committed docs/openapi.json, for
the security suite (a bounded, seeded run in `make test`) and `bench/fuzz.py` (the long run).

Each operation is fuzzed with valid requests (what the document allows) and invalid ones (what it does
not: bad types, missing fields, hostile strings), sent with real credentials, and every answer is checked
with schemathesis's `not_a_server_error` (no 5xx) and `response_schema_conformance` (a documented status
answers with its documented schema). Failures are collected per operation, not raised, so one run counts
them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.local_stack import ROOT

OPENAPI = ROOT / "docs" / "openapi.json"
CHECKS = [not_a_server_error, response_schema_conformance]
MODES = {"valid": GenerationMode.POSITIVE, "invalid": GenerationMode.NEGATIVE}
# Long enough for a slow answer on a loaded machine; a hang is a failure of its own kind.
REQUEST_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Finding:
    """One failed check: what was sent and what came back."""

    operation: str
    check: str  # "server error" or "schema violation"
    request: str
    status: int
    response: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.check}: {self.request} -> {self.status} {self.response}"


@dataclass
class Tally:
    operation: str
    examples: int = 0
    findings: list[Finding] = field(default_factory=list)

    def count(self, check: str) -> int:
        return sum(1 for f in self.findings if f.check == check)

    @property
    def server_errors(self) -> int:
        return self.count("server error")

    @property
    def schema_violations(self) -> int:
        return self.count("schema violation")


def load_schema() -> Any:
    return schemathesis.openapi.from_path(OPENAPI)


def operations(schema: Any) -> list[Any]:
    """Every operation of the document, in its order (`operation.label` is "GET /convos/{convoId}")."""
    return [result.ok() for result in schema.get_all_operations()]


def _describe(case: Any) -> str:
    sent = {
        "path": case.formatted_path,
        "query": case.query or None,
        "body": None
        if case.body is NOT_SET
        else case.body
        if not isinstance(case.body, bytes | bytearray)
        else f"<{len(case.body)} bytes>",
    }
    return json.dumps({k: v for k, v in sent.items() if v is not None}, default=str)[:600]


def _kind(failure: Failure) -> str:
    return "server error" if "not_a_server_error" in type(failure).checks else "schema violation"


def _path_parameters(operation: Any, known_ids: dict[str, str]) -> dict[str, str] | None:
    """The caller's own objects for every path parameter of `operation`, so that generated queries and
    bodies reach the code past the lookup (random ids stop at a 404). Never for DELETE: the fuzzer
    would delete the objects, or revoke the token, that the rest of the run uses."""
    names = re.findall(r"{(\w+)}", operation.path)
    if not names or operation.method.upper() == "DELETE" or not all(n in known_ids for n in names):
        return None
    return {name: known_ids[name] for name in names}


def fuzz(
    operation: Any,
    *,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    mode: str = "valid",
    seed_value: int = 10,
    known_ids: dict[str, str] | None = None,
) -> Tally:
    """Send `examples` generated requests to `operation` with `headers`; the checks' failures, counted.
    Seeded and without shrinking or an example database: the same run sends the same requests. With
    `known_ids` (path parameter name → id), path parameters name those objects."""
    tally = Tally(operation.label)
    session = requests.Session()
    fixed = _path_parameters(operation, known_ids or {})
    strategy = operation.as_strategy(generation_mode=MODES[mode], path_parameters=fixed)

    @seed(seed_value)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(
            base_url=base_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
        )
        tally.examples += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            failures = list(group.exceptions)
        except Failure as failure:
            failures = [failure]
        else:
            return
        for failure in failures:
            tally.findings.append(
                Finding(
                    operation.label,
                    _kind(failure),
                    _describe(case),
                    response.status_code,
                    response.text[:300],
                )
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing of the request is left to make invalid once the path is fixed: fuzz it unfixed.
        if fixed is None:
            raise
        return fuzz(
            operation, base_url=base_url, headers=headers, examples=examples, mode=mode, seed_value=seed_value
        )
    return tally
