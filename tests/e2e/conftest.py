"""End-to-end harness: the real local stack (`python -m local`) in a subprocess, called over real HTTP.

The `stack` fixture starts one stack for the session with a known bootstrap API key and a test OpenID
Connect issuer (`tests.support.oidc`: an RSA key pair whose JWKS is served on 127.0.0.1), and mints that
issuer's ID tokens. `start_stack` starts more, for tests that stop one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.oidc import OidcIssuer

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "kallo_e2e_bootstrap_key_0123456789"
ISSUER = "https://issuer.e2e.kallo.test"
AUDIENCE = "kallo-e2e"
KEY_ID = "e2e-key-1"
READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 10


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    base_url: str
    api_key: str
    client: httpx.Client
    mint_id_token: Callable[..., str]
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and return the exit code (fails the test if the stack does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(
                f"the stack did not stop within {STOP_TIMEOUT_SECONDS} s of {sig.name}:\n{self.output()}"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(stack: RunningStack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"the stack exited with {stack.process.returncode}:\n{stack.output()}")
        try:
            if stack.client.get("/health/core-api", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stack.process.kill()
    pytest.fail(f"the stack was not ready within {READY_TIMEOUT_SECONDS} s:\n{stack.output()}")


@contextmanager
def start_stack(issuer: OidcIssuer, **environment: str) -> Iterator[RunningStack]:
    """A stack on a free port, ready; killed at the end if the test did not stop it."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "KALLO_API_KEY": API_KEY,
        "KALLO_OIDC_ISSUERS": issuer.configuration(),
        "PYTHONUNBUFFERED": "1",
        **environment,
    }
    with tempfile.NamedTemporaryFile(prefix="kallo-stack-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, timeout=30) as client:
            stack = RunningStack(process, base_url, env["KALLO_API_KEY"], client, issuer.mint, log)
            try:
                _wait_until_ready(stack)
                yield stack
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()


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
