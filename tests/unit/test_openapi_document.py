"""docs/openapi.json is the API's published contract: it must match what the functions declare."""

from tools import openapi


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert openapi.DOCUMENT.read_text() == openapi.render(), (
        "docs/openapi.json is out of date: run `python -m tools.openapi`"
    )
