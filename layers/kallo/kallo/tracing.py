"""X-Ray tracing of a handler (Powertools Tracer), with the SDK loaded on the first invocation.

The X-Ray SDK costs about 300 ms of CPU to import (its recorder, wrapt, botocore's session and client
for its sampling rules): made at import, a Tracer would more than double a function's import time
(issue 13 holds every function within 1.3x a bare handler). Made on the first invocation, before the
function creates any AWS client (`kallo.aws` makes them on first use), it still patches botocore in
time to trace every AWS call; what the first invocation pays on top of the client's own imports is
about 170 ms of CPU. Only botocore is patched: the SDK's default patches every library it knows that is
installed, importing each.

Outside Lambda (tests, the local stack) Powertools disables the tracer itself; the tests and the local
stack set `POWERTOOLS_TRACE_DISABLED` too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

PATCHED = ("botocore",)


def capture_lambda_handler(*, capture_response: bool = True) -> Callable[[Callable], Callable]:
    """`Tracer().capture_lambda_handler` (a segment per invocation, its cold start annotated, errors
    recorded), the Tracer made on the first call. `capture_response=False` keeps the handler's result
    out of the trace (the authorizer's carries the principal)."""

    def decorate(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        traced: list[Callable[[Any, Any], Any]] = []

        @wraps(handler)
        def run(event: Any, context: Any) -> Any:
            if not traced:
                from aws_lambda_powertools import Tracer

                tracer = Tracer(patch_modules=PATCHED)
                traced.append(tracer.capture_lambda_handler(handler, capture_response=capture_response))
            return traced[0](event, context)

        return run

    return decorate
