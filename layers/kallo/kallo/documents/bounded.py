"""Running a parser on untrusted bytes within a bound on CPU, memory and time.

I11 (hostile input): every document has a bound. A PDF is a program of sorts: a few KB of nested
content streams, object loops or huge page trees can keep pypdf busy for minutes or make it allocate
gigabytes, and a worker busy with one tenant's file holds up every other tenant's uploads. So the
extraction runs in a child process (forked: no pickling of the function, no `/dev/shm`, which Lambda
lacks) with `RLIMIT_CPU` (the kernel kills it past `cpu_seconds`) and `RLIMIT_AS` (`memory_bytes`
more address space than the parent had at the fork: allocations beyond fail), and the parent waits at
most `wall_seconds` for its answer (a child blocked on anything is killed then). No signal handler
is involved in the parent, so it works in any thread (the local stack's pollers too).

Over any bound: `TooComplex` (`Unprocessable`, code `too_complex`). Cost: one fork per document
(milliseconds; the child shares the parent's pages until it writes).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from kallo import errors


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 20
    memory_bytes: int = 512 * 1024 * 1024
    wall_seconds: float = 30.0


LIMITS = Limits()


class TooComplex(errors.Unprocessable):
    code = "too_complex"


def run(function: Callable[..., Any], *args: Any, limits: Limits | None = None) -> Any:
    """`function(*args)` in a bounded child process: its result, or the `DomainError` it raised
    (rebuilt from its class, message and code); `TooComplex` when it went over a bound."""
    limits = limits or LIMITS
    receiving, sending = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_child, args=(sending, limits, function, args), daemon=True
    )
    child.start()
    sending.close()  # the child holds its own copy: EOF here means it ended without answering
    try:
        answer = receiving.recv() if receiving.poll(limits.wall_seconds) else None
    except EOFError:  # killed by the kernel (CPU limit) before it could answer
        answer = None
    finally:
        receiving.close()
        if child.is_alive():
            child.kill()
        child.join()
    if answer is None:
        raise TooComplex(
            f"The document is too complex to process within {limits.cpu_seconds} s of CPU, "
            f"{limits.memory_bytes // (1024 * 1024)} MiB of memory and {limits.wall_seconds:g} s."
        )
    kind, *rest = answer
    if kind == "ok":
        return rest[0]
    if kind == "too_complex":
        raise TooComplex(rest[0])
    error_class, message, code = rest
    raise error_class(message, code=code)


def _child(sending: Connection, limits: Limits, function: Callable[..., Any], args: tuple) -> None:
    _limit(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1)
    memory = _address_space() + limits.memory_bytes
    _limit(resource.RLIMIT_AS, memory, memory)
    try:
        answer: tuple = ("ok", function(*args))
    except MemoryError:
        answer = ("too_complex", "The document needs more memory than a document may use.")
    except RecursionError:
        answer = ("too_complex", "The document is nested too deeply.")
    except errors.DomainError as error:
        answer = ("error", type(error), error.message, error.code)
    except Exception as error:  # a parser's bug on odd input: the document cannot be read
        message = f"The document cannot be read ({type(error).__name__})."
        answer = ("error", errors.Unprocessable, message, "unreadable_document")
    sending.send(answer)
    sending.close()
    os._exit(0)  # nothing of the parent's (atexit handlers, buffered logs) runs twice


def _limit(which: int, soft: int, hard: int) -> None:
    """Lower a resource limit (never above a hard limit already set, which would be refused)."""
    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(which, (soft, hard))


def _address_space() -> int:
    """The process's current virtual size in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
