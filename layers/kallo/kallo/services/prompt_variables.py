"""Variables of a topic's prompt: `{{name}}` in the prompt text, filled per convo.

A convo may carry `inputs` (a compatibility surface's per-conversation values: Dify's `inputs`, kept on
the convo when it starts). The prompt an answer of that convo follows then has each `{{name}}` replaced
by the convo's value for `name`, and by nothing when it has none, as Dify does. A convo without `inputs`
(one made over REST or the WebSocket) reads the prompt as written, braces and all.

A variable name is a letter or `_`, then letters, digits or `_` (at most 64 characters); spaces inside
the braces are allowed (`{{ name }}`). Values are inserted as they are: they are the app's end user's
words, like the question itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# At most this many variables are offered in a form (Dify's `user_input_form`).
MAX_VARIABLES = 50


def variables(text: str) -> list[str]:
    """The variable names of a prompt, in order of first appearance, each once."""
    return list(dict.fromkeys(VARIABLE.findall(text)))[:MAX_VARIABLES]


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill(text: str, values: Mapping[str, Any] | None) -> str:
    """The prompt with its variables filled from `values` (None: the prompt as written)."""
    if values is None:
        return text
    return VARIABLE.sub(lambda match: _shown(values.get(match.group(1))), text)
