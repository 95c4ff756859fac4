"""kallo.documents.bounded: a parser runs in a child process bound in CPU, memory and wall-clock time
(I11), from any thread."""

from __future__ import annotations

import threading
import time

import pytest

from kallo import errors
from kallo.documents import bounded, extract
from tests.support import documents

TIGHT = bounded.Limits(cpu_seconds=1, memory_bytes=64 * 1024 * 1024, wall_seconds=5)


def spin() -> None:
    while True:
        pass


def hoard() -> bytes:
    return b"x" * (1024 * 1024 * 1024)


def sleep() -> None:
    time.sleep(60)


def refuse() -> None:
    raise errors.Unprocessable("nothing to read", code="unreadable_document")


def crash() -> None:
    raise KeyError("/Root")


@pytest.mark.parametrize("function", [spin, hoard, sleep])
def test_over_any_bound_is_too_complex_within_the_bound(function):
    started = time.monotonic()
    with pytest.raises(bounded.TooComplex) as raised:
        bounded.run(function, limits=TIGHT)
    assert time.monotonic() - started < TIGHT.wall_seconds + 2
    assert raised.value.code == "too_complex" and raised.value.status == 422


def test_results_and_domain_errors_come_back():
    assert (
        bounded.run(extract.text_of, documents.pdf(["Harbour fees."]), "application/pdf") == "Harbour fees."
    )
    with pytest.raises(errors.Unprocessable) as raised:
        bounded.run(refuse, limits=TIGHT)
    assert (raised.value.code, raised.value.message) == ("unreadable_document", "nothing to read")
    with pytest.raises(errors.Unprocessable) as raised:
        bounded.run(crash, limits=TIGHT)
    assert raised.value.code == "unreadable_document" and "KeyError" in raised.value.message


def test_it_works_outside_the_main_thread():
    outcome: list[object] = []

    def poller() -> None:
        try:
            bounded.run(spin, limits=TIGHT)
        except bounded.TooComplex as error:
            outcome.append(error)
        outcome.append(extract.bounded_text_of(b"plain words", "text/plain"))

    thread = threading.Thread(target=poller)
    thread.start()
    thread.join(timeout=20)
    assert isinstance(outcome[0], bounded.TooComplex) and outcome[1] == "plain words"


def test_a_deeply_nested_json_is_bounded_not_a_crash():
    nested = b"[" * 200_000 + b"]" * 200_000
    assert extract.bounded_text_of(nested, "application/json")  # read as text: its JSON cannot be parsed
