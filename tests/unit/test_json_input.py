"""The one JSON parser of client input (I11): bounded size and nesting, numbers JSON can carry."""

import json

import pytest

from kallo import json_input
from kallo.errors import PayloadTooLarge
from kallo.json_input import MAX_DEPTH, MalformedJson, parse, too_deep


def test_nesting_is_measured_on_arrays_and_objects_outside_strings():
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep('{"a":' * (MAX_DEPTH + 1))  # unbalanced counts as it opens
    # Brackets in strings, escaped quotes included, are text.
    text = json.dumps({"a": ["[" * 500, '\\"[[[', "é{ü}" * 100]})
    assert not too_deep(text) and parse(text) == json.loads(text)
    # Many shallow structures are not deep.
    assert not too_deep("[" + ",".join(["[[1]]"] * 10_000) + "]")


def test_parse_refuses_what_is_not_json_or_too_big_or_too_deep():
    assert parse('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert parse(b'{"a": "\xc3\xa9"}') == {"a": "é"}
    for bad in (
        "",
        "{",
        "[" * 100_000,
        '{"a":' * 70_000,
        "NaN",
        "[Infinity]",
        "[-Infinity]",
        "[1e400]",
        "1" * 5000,
    ):
        with pytest.raises(MalformedJson) as caught:
            parse(bad)
        assert caught.value.status == 400 and caught.value.code == "malformed_json"
    with pytest.raises(MalformedJson):
        parse(b"\xff\xfe")
    with pytest.raises(PayloadTooLarge):
        parse(json.dumps("x" * json_input.MAX_JSON_BYTES))
    with pytest.raises(PayloadTooLarge):  # the bound is in bytes, not characters
        parse(json.dumps("é" * (json_input.MAX_JSON_BYTES // 2)))
    assert parse("[1]", max_bytes=3) == [1]
