"""The real local stack (`python -m local`) in a subprocess on a free loopback port, for the end-to-end
tests and the benchmarks: start it, wait until `GET /health/core-api` answers, stop it with a signal.

Failures raise `StackFailed` with the stack's output, so each caller reports them its own way (the
e2e conftest turns them into test failures).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.oidc import OidcIssuer, issuers_configuration

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "kallo_e2e_bootstrap_key_0123456789"
READY_TIMEOUT_SECONDS = 90
# The stack's own bounds add up to about 10 s (5 s for requests in flight, 5 s for the workers' jobs,
# then the embedded AWS); a 2-core machine running the suite needs the margin.
STOP_TIMEOUT_SECONDS = 20
# The stack's table (`local.template.STACK_NAME` + the template's logical id), for `tools.admin --table`.
TABLE_NAME = "kallo-local-Table"
# The line the stack logs once its embedded AWS services are up (`local.stack.run`).
_EMBEDDED_AWS = re.compile(r"embedded AWS on (http://127\.0\.0\.1:\d+)")


class StackFailed(RuntimeError):
    """The stack exited early, was not ready in time, or did not stop in time."""


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    base_url: str
    api_key: str
    client: httpx.Client
    issuer: OidcIssuer | None  # the (first) OpenID Connect issuer the stack trusts, if any
    log: IO[bytes]
    issuers: tuple[OidcIssuer, ...] = ()  # every issuer the stack trusts

    @property
    def aws_endpoint(self) -> str:
        """The address of the stack's embedded AWS services, as its log announces it (what
        `tools.admin` needs in AWS_ENDPOINT_URL to manage this stack's service accounts)."""
        found = _EMBEDDED_AWS.search(self.output())
        if found is None:
            raise StackFailed(f"the stack did not announce its embedded AWS:\n{self.output()}")
        return found.group(1)

    @property
    def ws_url(self) -> str:
        """Where the stack serves WebSocket connections (`/ws`, `/ws/convos/{convoId}` under it)."""
        return "ws://" + self.base_url.removeprefix("http://")

    def mint_id_token(self, sub: str, **claims: Any) -> str:
        """An ID token of the trusted issuer for `sub` (see `OidcIssuer.mint`)."""
        if self.issuer is None:
            raise StackFailed("this stack was started without an OpenID Connect issuer")
        return self.issuer.mint(sub, **claims)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and return the exit code; StackFailed if the stack does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise StackFailed(
                f"the stack did not stop within {STOP_TIMEOUT_SECONDS} s of {sig.name}:\n{self.output()}"
            ) from None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(stack: RunningStack, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise StackFailed(f"the stack exited with {stack.process.returncode}:\n{stack.output()}")
        try:
            if stack.client.get("/health/core-api", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stack.process.kill()
    raise StackFailed(f"the stack was not ready within {timeout} s:\n{stack.output()}")


@contextmanager
def start_stack(
    issuer: OidcIssuer | None = None, *, more_issuers: tuple[OidcIssuer, ...] = (), **environment: str
) -> Iterator[RunningStack]:
    """A stack on a free port, ready, with the bootstrap key `API_KEY` (unless `environment` sets
    KALLO_API_KEY) and trusting `issuer` and `more_issuers`; killed at the end if the caller did not
    stop it."""
    port = free_port()
    trusted = tuple(i for i in (issuer, *more_issuers) if i is not None)
    env = {
        **os.environ,
        "PORT": str(port),
        "KALLO_API_KEY": API_KEY,
        "PYTHONUNBUFFERED": "1",
        **({"KALLO_OIDC_ISSUERS": issuers_configuration(trusted)} if trusted else {}),
        **environment,
    }
    with tempfile.NamedTemporaryFile(prefix="kallo-stack-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, timeout=30) as client:
            stack = RunningStack(
                process, base_url, env["KALLO_API_KEY"], client, trusted[0] if trusted else None, log, trusted
            )
            try:
                wait_until_ready(stack)
                yield stack
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
