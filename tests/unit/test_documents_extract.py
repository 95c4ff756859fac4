"""Text extraction (kallo.documents.extract): what passages, the index and citations' offsets refer to."""

import io

import pypdf
import pytest

from kallo import errors
from kallo.documents import extract
from kallo.documents.extract import text_of
from tests.support import documents


def test_the_text_of_every_pdf_page_is_read_and_joined_with_blank_lines():
    data = documents.pdf(["The harbour fee is 40 euros.\nBoats over 12 m pay double.", "", "Page (three)."])
    assert text_of(data, "application/pdf") == (
        "The harbour fee is 40 euros.\nBoats over 12 m pay double.\n\nPage (three)."
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (documents.pdf(["Nothing to see."])[:200], "cannot be read"),
        (b"%PDF-1.7\n" + b"garbage " * 50, "cannot be read"),
        (documents.pdf(["", ""]), "no text layer"),
    ],
)
def test_corrupt_and_textless_pdfs_are_unreadable(data, why):
    with pytest.raises(errors.Unprocessable) as raised:
        text_of(data, "application/pdf")
    assert raised.value.code == "unreadable_document" and raised.value.status == 422
    assert why in raised.value.message


def encrypted(user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(documents.pdf(["Locked text."])))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_password_protected_pdf_is_unreadable_but_one_only_restricted_by_its_owner_is_read():
    with pytest.raises(errors.Unprocessable, match="password"):
        text_of(encrypted("secret"), "application/pdf")
    assert text_of(encrypted(""), "application/pdf") == "Locked text."


def test_html_keeps_visible_text_and_block_structure():
    page = b"""<!DOCTYPE html><html><head><title>Menu</title><style>p { color: red }</style></head>
    <body><h1>Caf&eacute; &amp; Bar</h1><p>Open   daily,
       noon to &lt;late&gt;.</p><script>var x = "<p>hidden</p>";</script>
    <ul><li>Tea</li><li>Coffee&nbsp;&#8364;3</li></ul>
    <table><tr><th>Day</th><th>Hours</th></tr><tr><td>Mon</td><td>12-22</td></tr></table>
    <noscript>Enable JS</noscript></body></html>"""
    assert text_of(page, "text/html") == (
        "Café & Bar\n\nOpen daily, noon to <late>.\n\nTea\nCoffee €3\n\nDay Hours\nMon 12-22"
    )


def test_an_unclosed_head_does_not_hide_the_body():
    assert text_of(b"<html><head><title>T</title><body><p>Shown</p>", "text/html") == "Shown"


def test_json_is_pretty_printed_so_it_has_lines():
    assert text_of(b'{"name":"Acme","tags":["a","b"]}', "application/json") == (
        '{\n  "name": "Acme",\n  "tags": [\n    "a",\n    "b"\n  ]\n}'
    )


def test_text_is_decoded_and_whitespace_normalised_moderately():
    data = b"\xef\xbb\xbf  Title\r\n\r\n\r\n\r\nSome    words\there.   \r\n    indented code\n\n\n"
    assert text_of(data, "text/markdown") == "Title\n\nSome words here.\n    indented code"
    assert text_of(b"a,b\r\n1,2\r\n", "text/csv") == "a,b\n1,2"


def test_text_is_capped_at_a_boundary(monkeypatch):
    monkeypatch.setattr(extract, "MAX_CHARS", 100)
    paragraph = " ".join(["word"] * 15)  # 74 characters
    text = text_of("\n\n".join([paragraph] * 3).encode(), "text/plain")
    assert text == paragraph + "\n\n" + " ".join(["word"] * 4)


def test_a_document_without_text_is_unreadable():
    with pytest.raises(errors.Unprocessable) as raised:
        text_of(b"<html><script>only()</script></html>", "text/html")
    assert raised.value.code == "unreadable_document"
    with pytest.raises(errors.Unprocessable):
        text_of(b" \n\t\n", "text/plain")
