"""End-to-end harness: the real local stack (`python -m local`) in a subprocess, called over real HTTP
and real WebSockets.

The `stack` fixture starts one stack for the session with a known bootstrap API key and a test OpenID
Connect issuer (`tests.support.oidc`: an RSA key pair whose JWKS is served on 127.0.0.1), and mints that
issuer's ID tokens. `start_stack` starts more, for tests that stop one. `ws_connect` opens WebSocket
connections to the session's stack (`WsClient`: the API's message envelope both ways). Starting and
stopping live in `tests.support.local_stack`, which the benchmarks share; the helpers shared with the
security suite (tests/security) in `tests.support.e2e`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.support.e2e import Connect, WsClient, start_stack, ws_opener
from tests.support.local_stack import API_KEY, ROOT, RunningStack, free_port
from tests.support.oidc import OidcIssuer

__all__ = [
    "API_KEY",
    "ROOT",
    "OidcIssuer",
    "RunningStack",
    "WsClient",
    "free_port",
    "start_stack",
]

ISSUER = "https://issuer.e2e.kallo.test"
AUDIENCE = "kallo-e2e"
KEY_ID = "e2e-key-1"


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[OidcIssuer]:
    issuer = OidcIssuer(ISSUER, AUDIENCE, KEY_ID)
    yield issuer
    issuer.close()


@pytest.fixture(scope="session")
def stack(oidc_issuer: OidcIssuer) -> Iterator[RunningStack]:
    """The session's local stack; at the end it must stop on SIGTERM with exit code 0."""
    with start_stack(oidc_issuer) as running:
        yield running
        code = running.stop(signal.SIGTERM)
        assert code == 0, f"the stack exited with {code} on SIGTERM:\n{running.output()}"


@pytest.fixture
def ws_connect(stack: RunningStack) -> Iterator[Connect]:
    """`ws_connect(convo_id, headers={...}, query={...}, path_form=False)` opens a connection to the
    session's stack (see `tests.support.e2e.ws_opener`); every one is closed at the end of the test."""
    with ws_opener(stack) as open_:
        yield open_
