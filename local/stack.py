"""The local stack: `python -m local` (`make run`) serves the whole platform on 127.0.0.1:${PORT:-3000},
with no AWS account and no Docker. `HOST` (an IP address) listens elsewhere, e.g. 0.0.0.0 for every
interface; the debug endpoints still answer this machine only (`local.loopback`).

Start-up, in order: the embedded AWS services (moto's server, on a free loopback port), the template's
resources in them, the functions' environment, the routes, the bootstrap API key, the SQS pollers, and
last the HTTP server, so that `GET /health/core-api` answering means everything is ready. SIGINT and
SIGTERM stop the server (letting requests in flight finish), the pollers and the embedded services, and
the process exits 0.

Every function runs in this one process and shares its environment; see `local.runtime` for how
invocations are isolated.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from moto.server import ThreadedMotoServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from local import (
    bootstrap,
    http_gateway,
    loopback,
    mailbox,
    resources,
    runtime,
    template,
    ws_gateway,
)
from local.pollers import Pollers

logger = logging.getLogger(__name__)

DEFAULT_HOST = loopback.LOOPBACK
DEFAULT_PORT = 3000
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": template.REGION,
    "AWS_REGION": template.REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Settings whose cloud default cannot work here (Bedrock is not emulated): the local stack answers
# with the embedded model instead, unless the developer chose one, and allows only that model (the
# default model is always allowed, so a developer's KALLO_DEFAULT_MODEL is too); set
# KALLO_ALLOWED_MODELS (a JSON list) to allow others.
LOCAL_DEFAULTS = {
    "KALLO_DEFAULT_MODEL": "embedded:smollm2",
    "KALLO_ALLOWED_MODELS": '["embedded:smollm2"]',
    # No CloudWatch metric lines (EMF) in the stack's output, and no X-Ray (set them to false to see).
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# Secrets the template creates without a value (the operator puts it in after deploying), filled here
# from a variable of the developer's: logical id → variable.
LOCAL_SECRETS = {"OpenAIApiKeySecret": "KALLO_OPENAI_API_KEY"}


@dataclass(frozen=True)
class Stack:
    """What the parts of the local stack share; a route factory builds its routes from it."""

    template: dict[str, Any]
    resolver: template.Resolver  # its `physical` holds the ids of the resources in the embedded AWS
    functions: dict[str, runtime.LocalFunction]
    base_url: str  # where this stack serves HTTP, e.g. http://127.0.0.1:3000


# Where the functions' emails link to the console (`kallo.web.console_url`); a developer's value wins.
CONSOLE_URL_VARIABLE = "KALLO_CONSOLE_URL"
RouteFactory = Callable[[Stack], list[BaseRoute]]
# The one ASGI app is made of these factories' routes, in this order. Factories run before any
# function has read its settings, so one may also export variables the functions need into os.environ.
# The REST gateway stays last: it ends with the catch-all that answers API Gateway's 404. The WebSocket
# gateway (`/ws`, `/ws/convos/{convoId}`) and the `@connections` management endpoint go before it,
# and so does the mailbox of the emails the embedded SES "sent" (`/_local/mail`).
ROUTE_FACTORIES: list[RouteFactory] = [ws_gateway.routes, mailbox.routes, http_gateway.routes]


def build_app(stack: Stack, factories: list[RouteFactory] = ROUTE_FACTORIES) -> Starlette:
    routes = [route for factory in factories for route in factory(stack)]
    return Starlette(
        routes=routes,
        middleware=[Middleware(http_gateway.AccessLog), Middleware(loopback.LoopbackOnly)],
    )


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The values of LOCAL_SECRETS the developer set."""
    return {logical_id: environ[name] for logical_id, name in LOCAL_SECRETS.items() if environ.get(name)}


def _variable_sections(template_: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The raw Environment.Variables of Globals and of every function."""
    yield template_.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for resource in template.functions(template_).values():
        yield resource["Properties"].get("Environment", {}).get("Variables", {})


def parameter_overrides(template_: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Stack parameters the developer sets through the variable that carries them to the functions
    (e.g. KALLO_OIDC_ISSUERS for OidcIssuers): the local `sam deploy --parameter-overrides`."""
    parameters = template_.get("Parameters") or {}
    overrides = {}
    for variables in _variable_sections(template_):
        for name, value in variables.items():
            if isinstance(value, dict) and value.get("Ref") in parameters and name in environ:
                overrides[value["Ref"]] = environ[name]
    return overrides


def shared_environment(
    template_: dict[str, Any], resolver: template.Resolver, environ: Mapping[str, str]
) -> dict[str, str]:
    """The one environment all functions share: the union of their template environments, then the
    local defaults (unless the developer set them)."""
    merged: dict[str, str] = {}
    for logical_id in template.functions(template_):
        for name, value in template.function_environment(template_, resolver, logical_id).items():
            if merged.setdefault(name, value) != value:
                logger.warning(
                    "%s of %s differs from another function's: all get %r", name, logical_id, merged[name]
                )
    for name, value in LOCAL_DEFAULTS.items():
        merged[name] = environ.get(name, value)
    return merged


def console_url(environ: Mapping[str, str], base_url: str) -> str:
    """Where the links in the emails the functions send (invitations) point: the developer's
    KALLO_CONSOLE_URL (the template's PublicConsoleUrl, empty unless set), else this stack's console.
    The cloud's default, `https://<domain>/<stage>/console/`, has a stage this stack's paths lack."""
    return environ.get(CONSOLE_URL_VARIABLE) or f"{base_url}/console/"


def use_embedded_aws(endpoint: str) -> None:
    """Point every boto3 client of this process at the embedded services, with fake credentials."""
    for name in list(os.environ):
        # A developer's profile or per-service endpoint would win over these and reach real AWS.
        if name.startswith("AWS_ENDPOINT_URL_") or name in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
        ):
            del os.environ[name]
    os.environ.update(FAKE_AWS_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint)


def tame_embedded_dynamodb() -> None:
    """Two fixes of moto's DynamoDB for a stack under load (`bench.load` found both). Idempotent.

    - One request at a time: moto's server answers each request on a thread of its own, but its
      DynamoDB backend is not thread-safe (TransactWriteItems deep-copied a table while other threads
      wrote to it: "dictionary changed size during iteration", a 500). moto is Python under one
      interpreter lock, so serialising it costs little.
    - A transaction's rollback copy: moto deep-copies every table a transaction touches before applying
      it, so each TransactWriteItems took time in proportion to the whole table (about 80 ms per
      thousand items on a busy machine, growing as a run fills the table). Requests being serialised,
      copying only the items the transaction names (before it runs) and putting them back when it fails
      restores the same state.
    """
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "tamed", False):
        return
    call_action, transact = DynamoHandler.call_action, DynamoDBBackend.transact_write_items
    lock = threading.RLock()

    def serialized(self: DynamoHandler) -> Any:
        with lock:
            return call_action(self)

    class _NoTableCopy:
        """moto's `copy` module, but a Table "copies" to itself (its rollback is done item by item)."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for item in transact_items:
            kind, operation = next(iter(item.items()))
            name = operation.get("TableName")
            if kind == "ConditionCheck" or name not in self.tables:
                continue
            table = self.tables[name]
            attributes = operation.get("Key") or operation.get("Item") or {}
            key = {
                a: attributes[a] for a in (table.hash_key_attr, table.range_key_attr) if a and a in attributes
            }
            found = self.get_item(name, key) if len(key) == (2 if table.range_key_attr else 1) else None
            saved.append((name, key, copy.deepcopy(found.to_json()["Attributes"]) if found else None))
        models.copy = _NoTableCopy  # type: ignore[assignment]
        try:
            transact(self, transact_items)
        except Exception:
            for name, key, before in reversed(saved):
                if before is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, before)
            raise
        finally:
            models.copy = copy  # type: ignore[assignment]

    serialized.tamed = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialized  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def start_embedded_aws() -> ThreadedMotoServer:
    """moto's server, on loopback whatever HOST is: it answers any request for any resource (DynamoDB
    one request at a time, `tame_embedded_dynamodb`)."""
    tame_embedded_dynamodb()
    server = ThreadedMotoServer(ip_address=loopback.LOOPBACK, port=0, verbose=False)
    server.start()
    return server


def listen(port: int, host: str = DEFAULT_HOST) -> socket.socket:
    """Bind the HTTP port before anything else starts, so a port in use fails fast and clearly."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def local_url(sock: socket.socket) -> str:
    """Where this machine reaches the stack (its functions too): loopback when listening everywhere."""
    host, port = sock.getsockname()[:2]
    if loopback.is_unspecified(host):
        host = loopback.LOOPBACK
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its own shutdown, which would kill the process before the
    pollers and the embedded services stop; the stack handles those signals itself (`_Stopper`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Stopper:
    """The SIGINT/SIGTERM handler: unwinds a start-up in progress, then asks the server to stop (a
    second signal stops it without waiting for requests in flight)."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.server is None:
            raise KeyboardInterrupt
        if not self.server.should_exit:
            logger.info("%s: stopping", signal.Signals(signum).name)
            # A request or a worker inside the embedded model stops generating at its next token, so
            # the server's graceful shutdown does not wait for a whole answer.
            from kallo.llm import embedded

            embedded.refuse_generations()
        self.server.force_exit = self.server.should_exit
        self.server.should_exit = True


async def _serve(server: uvicorn.Server, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        on_ready()
    await serving


def run(
    template_: dict[str, Any], sock: socket.socket, api_key: str | None, started: float, stopper: _Stopper
) -> None:
    base_url = local_url(sock)
    with contextlib.ExitStack() as cleanup:
        aws = start_embedded_aws()
        cleanup.callback(aws.stop)
        host, aws_port = aws.get_host_and_port()
        aws_endpoint = f"http://{host}:{aws_port}"
        use_embedded_aws(aws_endpoint)

        physical = resources.provision(
            template_, endpoint_url=aws_endpoint, secret_values=secret_values(os.environ)
        )
        resolver = template.Resolver(template_, physical)
        resolver.parameters.update(parameter_overrides(template_, os.environ))
        os.environ.update(shared_environment(template_, resolver, os.environ))
        os.environ[CONSOLE_URL_VARIABLE] = console_url(os.environ, base_url)
        functions = runtime.load_functions(template_)
        stack = Stack(template_, resolver, functions, base_url)
        app = build_app(stack)

        account = bootstrap.create(api_key)
        pollers = Pollers.for_template(template_, physical, functions, endpoint_url=aws_endpoint)
        pollers.start()
        cleanup.callback(pollers.stop)
        # First on the way out: the embedded model's generation in progress (a worker's summary, an
        # in-process answer) ends at its next token, so the pollers finish their job at once. (The
        # layer is importable once `main` has added the code paths.)
        from kallo.llm import embedded

        cleanup.callback(embedded.end_generations)
        logger.info("embedded AWS on %s; %d SQS poller(s)", aws_endpoint, len(pollers.pollers))

        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # http_gateway.AccessLog writes one line per request instead
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        stopper.server = server

        def announce() -> None:
            print(bootstrap.banner(base_url, account, time.perf_counter() - started), flush=True)

        asyncio.run(_serve(server, sock, announce))
        logger.info("the server has stopped; then the workers and the embedded AWS")


def main(started: float) -> int:
    # The stack's own lines at INFO; libraries (botocore, moto's werkzeug) only when something is
    # wrong. The functions log through Powertools, in JSON, as they do in Lambda.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("local").setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # else it sets itself to INFO
    http_gateway.redact_logged_credentials()
    stopper = _Stopper()
    signal.signal(signal.SIGINT, stopper)
    signal.signal(signal.SIGTERM, stopper)
    template_ = template.load()
    runtime.add_code_paths(template_)
    try:
        api_key = bootstrap.requested_key(os.environ)
    except bootstrap.InvalidApiKey as error:
        print(f"kallo local stack: {error}", file=sys.stderr)
        return 2
    port = os.environ.get("PORT") or str(DEFAULT_PORT)
    if not port.isdigit() or int(port) > 65535:
        print(f"kallo local stack: PORT must be a port number, not {port!r}", file=sys.stderr)
        return 2
    host = os.environ.get("HOST") or DEFAULT_HOST
    if not loopback.is_ip_address(host):
        print(f"kallo local stack: HOST must be an IP address to listen on, not {host!r}", file=sys.stderr)
        return 2
    try:
        sock = listen(int(port), host)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(
            f"kallo local stack: {host}:{port} is in use (another stack?): set PORT to another port",
            file=sys.stderr,
        )
        return 1
    loopback.warn_if_exposed(host, int(port))
    with sock:
        try:
            run(template_, sock, api_key, started, stopper)
        except KeyboardInterrupt:
            logger.info("interrupted while starting")
    print("Kallo local stack stopped.", flush=True)
    return 0
