"""Load: a bounded, headless locust run against the local stack on loopback, REST readers and writers
and WebSocket clients asking for answers at once; prints p50/p95/p99 per operation, the errors and the
stack's memory (RSS, its process and children) over time, as Markdown.

    python -m bench.load [--users 12] [--ws-users 3] [--spawn-rate 4] [--seconds 180]

The stack starts in a subprocess on a free loopback port (as the e2e tests start it) and stops at the
end. Answers come from `openai:scripted` (the loopback OpenAI-compatible endpoint of `bench.realtime`:
`--tokens` tokens, one every `--token-delay` seconds), so the run measures the stack, not a model.

Each simulated user is a user of the bootstrap service account with an access token of its own (the
per-principal rate, I10, applies per user as in production), its own team, topic and convo:
- a REST user reads its convo, its steps, the topic's convos and its teams, and now and then creates
  a convo or renames one (about one request a second);
- a WebSocket user holds a socket on its convo and asks a question every few seconds, waiting for the
  answer: `answer: first delta` and `answer: completed` time it from sending the question.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent

# Importing locust patches the standard library for gevent: before psutil, websocket and httpx.
import locust
import psutil
import websocket
from locust import HttpUser, between, events, task
from locust.env import Environment

from tests.support.local_stack import RunningStack, StackFailed, start_stack
from tests.support.scripted_endpoint import ScriptedEndpoint

MODEL = "openai:scripted"
ANSWER_TIMEOUT = 60.0
ANSWER_DRAIN_SECONDS = 3.0
STOP_SECONDS = 60.0
SETTINGS: dict[str, Any] = {"tokens": 16}


class Tenant:
    """A user of the bootstrap service account, its bearer token, team, topic and convo."""

    def __init__(self, user: HttpUser) -> None:
        self.user = user
        key = {"x-api-key": STACK["api_key"]}
        email = f"load-{uuid.uuid4().hex[:12]}@example.com"
        created = self._json(
            "GET", "/users", "setup: Get/Create a User", params={"email": email}, headers=key
        )
        expires = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        body = {
            "userId": created["id"],
            "scopeObjects": [{"type": "user", "id": created["id"]}],
            "expiresAt": expires,
        }
        self.token = self._json(
            "POST", "/auth/access-tokens", "setup: Create Access Token", json=body, headers=key
        )["jwt"]
        self.headers = {"authorization": f"Bearer {self.token}"}
        self.team = self._json("POST", "/teams", "Create a Team", json={"name": "Load"})["id"]
        topic = {"name": "Piers", "description": "About piers"}
        self.topic = self._json(
            "POST", "/topics", "Create New Topic", params={"teamId": self.team}, json=topic
        )["id"]
        self.convo = self.new_convo()

    def _json(self, method: str, path: str, name: str, **options: Any) -> dict[str, Any]:
        options.setdefault("headers", getattr(self, "headers", {}))
        with self.user.client.request(method, path, name=name, catch_response=True, **options) as response:
            if response.status_code >= 400:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                raise locust.exception.RescheduleTask()
            return response.json()

    def new_convo(self) -> str:
        return self._json("POST", "/convos", "Create a Convo", params={"topicId": self.topic}, json={})["id"]


class RestUser(HttpUser):
    weight = 3
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.tenant = Tenant(self)

    def _get(self, path: str, name: str, **params: str) -> None:
        self.tenant._json("GET", path, name, params=params or None)

    @task(5)
    def get_convo(self) -> None:
        self._get(f"/convos/{self.tenant.convo}", "Get a Convo")

    @task(5)
    def query_steps(self) -> None:
        self._get(f"/convos/{self.tenant.convo}/steps", "Query Convo Steps")

    @task(2)
    def query_convos(self) -> None:
        self._get("/convos", "Query Convos", topicId=self.tenant.topic, limit="20")

    @task(1)
    def query_teams(self) -> None:
        self._get("/teams", "Query Teams")

    @task(1)
    def create_convo(self) -> None:
        self.tenant.convo = self.tenant.new_convo()

    @task(1)
    def patch_convo(self) -> None:
        name = {"name": f"Renamed {uuid.uuid4().hex[:6]}"}
        self.tenant._json("PATCH", f"/convos/{self.tenant.convo}", "Patch a Convo", json=name)


class WebSocketUser(HttpUser):
    weight = 1
    wait_time = between(2, 4)

    def on_start(self) -> None:
        self.tenant = Tenant(self)
        url = STACK["ws_url"] + f"/ws/convos/{self.tenant.convo}?token={self.tenant.token}"
        started = time.perf_counter()
        try:
            self.socket = websocket.create_connection(url, timeout=ANSWER_TIMEOUT)
        except Exception as error:
            self._report("$connect", started, error)
            raise locust.exception.StopUser() from error
        self._report("$connect", started)
        SOCKETS.append(self.socket)

    def _report(self, name: str, started: float, error: Exception | None = None) -> None:
        events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    @task
    def ask(self) -> None:
        step = {
            "content": {"text": "When does the pier close?"},
            "config": {"reply": True, "model": MODEL, "maxTokens": SETTINGS["tokens"], "temperature": 0},
        }
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        self.socket.send(json.dumps({"type": "convoNewStep", "payload": step, "requestId": request_id}))
        deadline, first, echoed = started + ANSWER_TIMEOUT, None, False
        try:
            while True:
                self.socket.settimeout(max(0.1, deadline - time.perf_counter()))
                message = json.loads(self.socket.recv())
                payload = message.get("payload") or {}
                kind = message.get("type")
                if kind == "error":
                    raise RuntimeError(f"error {payload.get('code')}: {payload.get('message')}")
                if kind == "convoNewStep" and message.get("requestId") == request_id and not echoed:
                    echoed = True
                    self._report("convoNewStep (own step back)", started)
                if kind != "convoStepUpdate":
                    continue
                if payload.get("delta") and first is None:
                    first = time.perf_counter()
                    self._report("answer: first delta", started)
                if payload.get("status") == "failed":
                    raise RuntimeError(f"the answer failed: {payload.get('error')}")
                if payload.get("status") == "completed":
                    self._report("answer: completed", started)
                    return
        except Exception as error:
            self._report("answer: completed", started, error)


STACK: dict[str, Any] = {}
# Every socket opened, closed once the run is over (a stopped user's greenlet is killed, not unwound).
SOCKETS: list[websocket.WebSocket] = []


def _rss_mb(process: psutil.Process) -> float:
    total = 0
    for each in [process, *process.children(recursive=True)]:
        try:
            total += each.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def sample_memory(stack: RunningStack, every: float, samples: list[tuple[float, float]]) -> None:
    process, started = psutil.Process(stack.process.pid), time.monotonic()
    while True:
        samples.append((time.monotonic() - started, _rss_mb(process)))
        gevent.sleep(every)


def report(env: Environment, samples: list[tuple[float, float]], arguments: argparse.Namespace) -> int:
    stats = env.stats
    print(
        f"\nLoad on the local stack: {arguments.users} users ({arguments.ws_users} WebSocket) for"
        f" {arguments.seconds:.0f} s, answers by {MODEL} ({arguments.tokens} tokens, one every"
        f" {arguments.token_delay * 1000:.0f} ms)\n"
    )
    print("| operation | requests | failures | p50 ms | p95 ms | p99 ms | req/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for entry in sorted(stats.entries.values(), key=lambda e: (e.method != "WS", e.name)):
        print(
            f"| {entry.method} {entry.name} | {entry.num_requests} | {entry.num_failures} |"
            f" {entry.get_response_time_percentile(0.5):.0f} | {entry.get_response_time_percentile(0.95):.0f} |"
            f" {entry.get_response_time_percentile(0.99):.0f} | {entry.total_rps:.1f} |"
        )
    total = stats.total
    print(
        f"| **all** | {total.num_requests} | {total.num_failures} | {total.get_response_time_percentile(0.5):.0f}"
        f" | {total.get_response_time_percentile(0.95):.0f} | {total.get_response_time_percentile(0.99):.0f}"
        f" | {total.total_rps:.1f} |"
    )
    if stats.errors:
        print("\nErrors:")
        for error in stats.errors.values():
            print(f"- {error.method} {error.name}: {error.occurrences} x {error.error}")
    step = max(1, len(samples) // 12)
    series = ", ".join(f"{t:.0f} s: {mb:.0f}" for t, mb in samples[::step])
    rss = [mb for _, mb in samples]
    print(
        f"\nStack RSS (MB, process and children): {series}; min {min(rss):.0f}, median"
        f" {statistics.median(rss):.0f}, max {max(rss):.0f}"
    )
    return 1 if total.num_failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=12, help="simulated users in all")
    parser.add_argument("--ws-users", type=int, default=3, help="of them, WebSocket users asking for answers")
    parser.add_argument("--spawn-rate", type=float, default=4, help="users started per second")
    parser.add_argument("--seconds", type=float, default=180, help="how long the load runs (bounded)")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per scripted answer")
    parser.add_argument("--token-delay", type=float, default=0.05, help="seconds between two scripted tokens")
    parser.add_argument("--memory-every", type=float, default=5, help="seconds between two RSS samples")
    arguments = parser.parse_args()
    SETTINGS["tokens"] = arguments.tokens
    RestUser.fixed_count = 0
    WebSocketUser.fixed_count = arguments.ws_users
    scripted = ScriptedEndpoint(text=None, delay=arguments.token_delay)
    allowed = json.dumps(["embedded:smollm2", MODEL])
    samples: list[tuple[float, float]] = []
    load = os.getloadavg()
    try:
        with start_stack(KALLO_OPENAI_BASE_URL=scripted.base_url, KALLO_ALLOWED_MODELS=allowed) as stack:
            STACK.update(api_key=stack.api_key, ws_url=stack.ws_url)
            sampler = gevent.spawn(sample_memory, stack, arguments.memory_every, samples)
            env = Environment(user_classes=[RestUser, WebSocketUser], host=stack.base_url, events=events)
            runner = env.create_local_runner()
            runner.start(arguments.users, spawn_rate=arguments.spawn_rate)
            gevent.spawn_later(arguments.seconds, runner.quit)
            runner.greenlet.join()
            sampler.kill()
            for socket in SOCKETS:
                socket.close()
            gevent.sleep(ANSWER_DRAIN_SECONDS)  # let the answers in flight end before the stack stops
            # Requests the users left in flight finish first: on a busy machine that takes longer than
            # the e2e tests' 10 s bound, so the run waits up to a minute and says how long it took.
            stopped = time.monotonic()
            stack.process.send_signal(signal.SIGTERM)
            try:
                code = stack.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            stop_seconds = time.monotonic() - stopped
    except StackFailed as error:
        print(f"bench.load: {error}", file=sys.stderr)
        return 1
    finally:
        scripted.close()
    failed = report(env, samples, arguments)
    print(
        f"The stack stopped in {stop_seconds:.1f} s (exit code {code}). Machine load average (1 min):"
        f" {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} CPUs."
    )
    return 1 if failed or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
