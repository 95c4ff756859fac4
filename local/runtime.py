"""Run the template's Lambda functions inside this process, the way the Lambda service would.

Handlers are imported lazily, on their first invocation, from the code and layer directories the
template names (so a function written while the stack runs is picked up, and a broken one fails only
its own requests). Each function runs one invocation at a time: Lambda gives concurrent requests
separate containers, one process cannot, and a handler module's state (Powertools keeps the current
event on the module's resolver) must not be shared by two requests at once.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import anyio.to_thread

from local.template import ACCOUNT, REGION, ROOT, STACK_NAME, functions

logger = logging.getLogger(__name__)
# One import of a handler module at a time (see LocalFunction.module).
_IMPORT_LOCK = threading.RLock()
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The `context` argument of a handler, with the attributes Powertools and our code read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float  # time.monotonic() at which Lambda would stop the invocation
    function_version: str = "$LATEST"
    log_stream_name: str = "local"
    log_group_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @classmethod
    def starting(
        cls, function: str, *, memory: int, seconds: float, request_id: str | None = None
    ) -> LambdaContext:
        """The context of an invocation of `function` that starts now and that Lambda stops after
        `seconds`."""
        return cls(
            function_name=function,
            memory_limit_in_mb=memory,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{function}",
            aws_request_id=request_id or str(uuid4()),
            deadline=time.monotonic() + seconds,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function of the template: its handler (imported on first use) and its configuration."""

    def __init__(self, logical_id: str, handler: str, *, timeout: int, memory: int) -> None:
        self.logical_id = logical_id
        self.handler_name = handler
        self.timeout = timeout
        self.memory = memory
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def module(self) -> ModuleType:
        """The handler's module, imported on first use; raises whatever importing it raises.

        Imports are serialised across functions: two pollers importing handlers at once could each meet
        a shared package (Powertools) half-initialised by the other thread."""
        try:
            with _IMPORT_LOCK:
                return importlib.import_module(self.handler_name.rpartition(".")[0])
        except ImportError:
            # The finders cache directory listings: forget them so that a module created after this
            # failure is found on the next attempt.
            importlib.invalidate_caches()
            raise

    def handler(self) -> Handler:
        """The handler callable; raises (ImportError, AttributeError, ...) when it cannot be loaded."""
        if self._handler is None:
            self._handler = getattr(self.module(), self.handler_name.rpartition(".")[2])
        return self._handler

    def invoke(self, event: dict[str, Any], *, request_id: str | None = None) -> Any:
        """Run the handler in the calling thread and return what it returns (exceptions propagate)."""
        with self._lock:
            handler = self.handler()
            started = time.monotonic()
            context = LambdaContext.starting(
                self.logical_id, memory=self.memory, seconds=self.timeout, request_id=request_id
            )
            try:
                return handler(event, context)
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.timeout:
                    # Nothing can stop a thread, but the cloud would have: say so loudly.
                    logger.warning(
                        "%s ran %.1f s, over its %d s timeout: Lambda would have stopped it",
                        self.logical_id,
                        elapsed,
                        self.timeout,
                    )

    async def invoke_async(self, event: dict[str, Any], *, request_id: str | None = None) -> Any:
        """`invoke` in a worker thread, so a handler's blocking AWS calls never stall the event loop."""
        return await anyio.to_thread.run_sync(partial(self.invoke, event, request_id=request_id))


def load_functions(template: dict[str, Any]) -> dict[str, LocalFunction]:
    """Every `AWS::Serverless::Function` of the template, with Globals applied."""
    defaults = template.get("Globals", {}).get("Function", {})
    loaded = {}
    for logical_id, resource in functions(template).items():
        properties = {**defaults, **resource["Properties"]}
        loaded[logical_id] = LocalFunction(
            logical_id,
            properties["Handler"],
            timeout=int(properties.get("Timeout", 3)),  # Lambda's defaults
            memory=int(properties.get("MemorySize", 128)),
        )
    return loaded


def code_paths(template: dict[str, Any]) -> list[Path]:
    """The import roots Lambda would give the functions: their CodeUri and their layers' ContentUri
    (a Python layer built by SAM is importable from its root)."""
    defaults = template.get("Globals", {}).get("Function", {})
    resources = template["Resources"]
    paths: list[Path] = []
    for resource in functions(template).values():
        properties = {**defaults, **resource["Properties"]}
        candidates = [properties["CodeUri"]]
        for layer in properties.get("Layers", []):
            if isinstance(layer, dict) and "Ref" in layer:
                candidates.append(resources[layer["Ref"]]["Properties"]["ContentUri"])
        for candidate in candidates:
            path = (ROOT / candidate).resolve()
            if path not in paths:
                paths.append(path)
    return paths


def add_code_paths(template: dict[str, Any]) -> None:
    for path in reversed(code_paths(template)):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
