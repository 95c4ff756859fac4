"""The README's Python client example (examples/python_client.py), run as a newcomer would: a separate
process pointed at the local stack with the printed API key, printing the answer as it streams in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, RunningStack

pytestmark = pytest.mark.e2e


def test_the_python_example_prints_a_streamed_answer(stack: RunningStack) -> None:
    environment = {**os.environ, "KALLO_URL": stack.base_url, "KALLO_API_KEY": stack.api_key}
    finished = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_client.py"), "Say hello in one short sentence."],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip(), "the example printed no answer"


def test_the_python_example_says_why_it_was_refused(stack: RunningStack) -> None:
    environment = {**os.environ, "KALLO_URL": stack.base_url, "KALLO_API_KEY": "kallo_not_a_real_key_at_all"}
    finished = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_client.py"), "Hello"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode != 0
    assert "401" in finished.stderr
