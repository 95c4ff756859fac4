"""WebSocket fan-out through the local stack: N connections on one convo; one of them sends a step and
the time is taken until every connection has received its `convoNewStep` (the broadcast goes
function → `@connections` API → every socket, as in the cloud). Median and p95 over several sends,
for N = 1, 10, 100.

    python -m bench.fanout [--sizes 1 10 100] [--sends 10] [--timeout 60]

The stack is started in a subprocess on a free loopback port and stopped at the end; every wait is
bounded by `--timeout` seconds. Each size gets a new convo and one unmeasured warm-up send. "connect
all" is the time to open the N connections (each runs `$connect`: authentication, the `can_view` check
and the connection's write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from bench.realtime import BenchFailed, create_convo, new_step, open_socket
from tests.support.local_stack import RunningStack, StackFailed, start_stack

# Connections opened at once: each runs $connect, and a function runs one invocation at a time
# locally, so more in flight only queue inside the stack.
CONNECT_CONCURRENCY = 10


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Arrivals:
    """When each connection received the step marked `text`."""

    expected: int
    times: list[float] = field(default_factory=list)
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, at: float) -> None:
        self.times.append(at)
        if len(self.times) == self.expected:
            self.complete.set()


async def read(socket: ClientConnection, waiting: dict[str, Arrivals]) -> None:
    """Record the arrival of every awaited `convoNewStep` on this connection, until it closes."""
    async for frame in socket:
        message = json.loads(frame)
        if message.get("type") == "error":
            raise BenchFailed(f"the stack answered an error: {message.get('payload')}")
        if message.get("type") != "convoNewStep":
            continue
        text = ((message.get("payload") or {}).get("content") or {}).get("text")
        if text in waiting:
            waiting[text].record(time.monotonic())


@dataclass(frozen=True)
class FanoutResult:
    connections: int
    connect_seconds: float
    samples: list[float]  # seconds from the send until the last connection received the step

    def row(self) -> str:
        return (
            f"{self.connections:>11} {self.connect_seconds * 1000:>12.0f}"
            f" {statistics.median(self.samples) * 1000:>10.1f} {p95(self.samples) * 1000:>9.1f}"
            f" {max(self.samples) * 1000:>9.1f}"
        )


async def fanout(stack: RunningStack, convo_id: str, size: int, sends: int, timeout: float) -> FanoutResult:
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def opened() -> ClientConnection:
        async with limit:
            return await open_socket(stack, convo_id, timeout)

    started = time.monotonic()
    sockets = await asyncio.wait_for(asyncio.gather(*(opened() for _ in range(size))), timeout)
    connect_seconds = time.monotonic() - started
    waiting: dict[str, Arrivals] = {}
    readers = [asyncio.create_task(read(socket, waiting)) for socket in sockets]
    samples = []
    try:
        # One more send than measured: the first one also pays for warming the functions up.
        for index in range(sends + 1):
            marker = f"fanout {size} {uuid.uuid4()}"
            arrivals = waiting[marker] = Arrivals(size)
            sent = time.monotonic()
            await sockets[0].send(new_step(marker))
            waiter = asyncio.ensure_future(arrivals.complete.wait())
            try:
                done, _ = await asyncio.wait(
                    [waiter, *readers], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
            for reader in readers:
                if reader in done:
                    reader.result()  # raises what stopped a reader (an error message, a closed socket)
            if not arrivals.complete.is_set():
                raise TimeoutError(f"{len(arrivals.times)} of {size} connections got the step in {timeout} s")
            if index > 0:
                samples.append(max(arrivals.times) - sent)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
    return FanoutResult(size, connect_seconds, samples)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="connections per convo")
    parser.add_argument("--sends", type=int, default=20, help="steps measured per size")
    parser.add_argument("--timeout", type=float, default=60, help="seconds any one wait may take at most")
    arguments = parser.parse_args()
    try:
        with start_stack() as stack:
            results = []
            for size in arguments.sizes:
                convo_id = create_convo(stack, f"bench fanout {size}")
                results.append(asyncio.run(fanout(stack, convo_id, size, arguments.sends, arguments.timeout)))
            stack.stop()
    except (StackFailed, BenchFailed, TimeoutError) as error:
        print(f"bench.fanout: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"convoNewStep fan-out over WebSocket, {arguments.sends} sends per size (ms)")
    print(f"{'connections':>11} {'connect all':>12} {'median':>10} {'p95':>9} {'max':>9}")
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
