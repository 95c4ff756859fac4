"""The one JSON parser of client input: every REST body (`kallo.web.create_app`) and every WebSocket
message (`kallo.websocket`).

I11 (hostile input): a body is bounded in size and in nesting before it is parsed, so neither the
parser nor anything that walks the value afterwards (validation, serialisation, DynamoDB, which nests
at most 32 levels) can exhaust the stack: `[` a hundred thousand times is a 400, not a RecursionError
and a 502. The nesting is measured on the bracket skeleton of the text (strings removed) with C-speed
primitives, about 0.1 s per MB at worst, and only when the text holds more brackets than the bound.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from kallo.errors import BadRequest, PayloadTooLarge

MAX_DEPTH = 64
# A JSON body is a few fields and at most one long text (64 Ki characters, up to 4 bytes each); files
# go through multipart uploads or presigned posts, not JSON.
MAX_JSON_BYTES = 1024 * 1024

# A JSON string, escapes included; an unterminated one runs to the end. Possessive, so it never
# backtracks: linear in the text.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Openers to +1, closers to -1 (as signed bytes).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class MalformedJson(BadRequest):
    status, code = 400, "malformed_json"


def too_deep(text: str) -> bool:
    """Whether arrays and objects nest deeper than `MAX_DEPTH` in a JSON text (brackets inside strings
    do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    skeleton = _STRING.sub(b"", text.encode("utf-8", "surrogatepass")).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(skeleton).cast("b")), default=0) > MAX_DEPTH


def _finite(literal: str) -> float:
    # `1e400` is infinity to Python, and NaN or infinity can be neither validated nor stored.
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse(text: str | bytes, *, max_bytes: int = MAX_JSON_BYTES, what: str = "the request body") -> Any:
    """The value of a JSON text; raises `PayloadTooLarge` (413) above `max_bytes`, `MalformedJson`
    (400) when it is not JSON (NaN, Infinity and numbers out of a float's range included) or nests
    deeper than `MAX_DEPTH`."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as error:
            raise MalformedJson(f"{what} is not UTF-8 text") from error
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise PayloadTooLarge(f"{what} is larger than {max_bytes} bytes")
    if too_deep(text):
        raise MalformedJson(f"{what} nests arrays and objects deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # RecursionError: a last guard, the check above comes first
        raise MalformedJson(f"{what} is not valid JSON") from error
