"""Media type detection (kallo.documents.sniff): decided by the bytes, the name only chooses among the
text types the bytes fit."""

import io
import zipfile

import pytest

from kallo import errors
from kallo.documents import ALLOWED_TYPES
from kallo.documents.sniff import detect
from tests.support import documents

CSV = b'date,amount,customer\n2024-01-03,120.50,Acme\n2024-01-04,99.00,"Bolt, Inc."\n'
HTML = b"<!DOCTYPE html>\n<html><head><title>T</title></head><body><p>Hi</p></body></html>"


@pytest.mark.parametrize(
    ("data", "filename", "declared", "expected"),
    [
        (b"Just some notes.\nSecond line.", "notes.txt", "text/plain", "text/plain"),
        (b"# Title\n\nSome *emphasis*.", "README.md", None, "text/markdown"),
        (b"# Title\n\nSome *emphasis*.", "upload", "text/markdown; charset=utf-8", "text/markdown"),
        (CSV, "sales.csv", None, "text/csv"),
        (CSV, None, "text/csv", "text/csv"),
        (b"a\tb\n1\t2\n", "table.tsv", None, "text/csv"),
        (b'{"name": "Acme", "tags": ["a"]}', "data.json", "application/json", "application/json"),
        (HTML, "page.html", "text/html", "text/html"),
        (documents.pdf(["Hello."]), "report.pdf", "application/pdf", "application/pdf"),
    ],
)
def test_every_allowed_type_is_recognised(data, filename, declared, expected):
    assert detect(data, filename=filename, declared=declared) == expected
    assert expected in ALLOWED_TYPES


def test_content_decides_json_html_and_pdf_whatever_the_name():
    assert detect(b'  [1, 2, {"a": null}]', filename="list.txt") == "application/json"
    assert detect(HTML, filename="page.txt", declared="text/plain") == "text/html"
    assert detect(b"<!-- generated -->\n<div>Hi</div>", filename="x") == "text/html"
    assert detect(documents.pdf(["Hello."]), filename="notes.txt", declared="text/plain") == "application/pdf"


def test_claims_the_bytes_do_not_fit_fall_back_to_plain_text():
    assert detect(b"{not json", filename="data.json", declared="application/json") == "text/plain"
    prose = b"Dear team, thanks for coming.\nWe met, talked, and agreed on a plan, mostly.\n"
    assert detect(prose, filename="minutes.csv", declared="text/csv") == "text/plain"
    assert detect(b"Plain words", filename=None, declared="text/html") == "text/plain"
    assert detect(CSV) == "text/plain"  # CSV is only a claim that the bytes fit


def test_a_markdown_file_may_open_with_html_but_an_html_document_stays_html():
    readme = b'<p align="center"><img src="logo.png"></p>\n\n# Project\n'
    assert detect(readme, filename="README.md") == "text/markdown"
    assert detect(readme, filename="readme.txt") == "text/html"
    assert detect(HTML, filename="page.md") == "text/html"


def test_a_utf8_bom_is_allowed():
    assert detect(b"\xef\xbb\xbfCaf\xc3\xa9 menu", filename="menu.txt") == "text/plain"
    assert detect(b'\xef\xbb\xbf{"a": 1}') == "application/json"


@pytest.mark.parametrize(
    ("data", "filename", "looks_like"),
    [
        (documents.ELF, "report.pdf", "ELF executable"),
        (documents.PE, "report.pdf", "Windows executable"),
        (documents.ZIP, "notes.txt", "zip archive"),
        (documents.PNG, "notes.md", "PNG image"),
        (documents.GZIP, "data.csv", "gzip archive"),
        (documents.JPEG, "photo.txt", "JPEG image"),
        (b"Looks like text\x00but is not", "notes.txt", "NUL bytes"),
        (b"caf\xe9 au lait", "latin1.txt", "not UTF-8"),
        (bytes(range(1, 9)) * 20, "noise.txt", "control characters"),
    ],
)
def test_binary_files_are_refused_whatever_their_name(data, filename, looks_like):
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        detect(data, filename=filename, declared="application/pdf")
    assert raised.value.status == 415 and raised.value.code == "unsupported_media_type"
    assert looks_like in raised.value.message


def test_words_that_start_like_a_magic_number_are_still_text():
    assert detect(b"MZ Motors annual report", filename="r.txt") == "text/plain"
    assert detect(b"ID3 tags explained", filename="r.md") == "text/markdown"


def test_an_empty_file_is_a_bad_request():
    with pytest.raises(errors.BadRequest) as raised:
        detect(b"", filename="empty.txt")
    assert raised.value.code == "empty_file" and raised.value.status == 400


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (documents.pdf_zip_polyglot(), "PDF"),  # %PDF- then a zip: no %%EOF at its end
        (documents.pdf(["Hello."]) + documents.zipped(), "zip archive behind a PDF header"),
        (b"%PDF-1.4\n" + documents.ZIP + b"\n" * 2000 + b"%%EOF\n", "zip archive behind a PDF header"),
        (b"%PDF-1.4\n" + documents.ELF + b"\n%%EOF\n", "ELF executable behind a PDF header"),
        (b"%PDF-\n" + b"x" * 100 + b"\n%%EOF\n", "only starts like a PDF"),
        (documents.pdf(["Hello."])[:-200], "truncated PDF"),
    ],
)
def test_a_file_that_only_starts_like_a_pdf_is_refused(data, looks_like):
    with pytest.raises(errors.UnsupportedMediaType) as raised:
        detect(data, filename="report.pdf", declared="application/pdf")
    assert raised.value.status == 415 and looks_like in raised.value.message


def test_the_polyglot_really_is_a_zip():
    assert zipfile.ZipFile(io.BytesIO(documents.pdf_zip_polyglot())).namelist() == ["payload.exe"]


def test_json_nested_too_deep_to_parse_is_text_not_a_crash():
    assert detect(b"[" * 200_000 + b"]" * 200_000, filename="deep.json") == "text/plain"
