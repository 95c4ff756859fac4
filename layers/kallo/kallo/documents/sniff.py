"""Media type detection from a file's bytes.

A client's file name and Content-Type are claims, not facts: the type of a data source is decided
here from the bytes. PDFs are recognised by their `%PDF-` header and must look like a PDF throughout
(`_check_pdf`); known binary formats (executables,
archives, Office files, images, audio, video) are refused by their magic numbers with a message that
says what the file looks like; anything else must be UTF-8 text (a BOM is allowed, NUL bytes are not).
Among text, JSON and HTML are recognised from the content; CSV and Markdown cannot be told from plain
text reliably, so the declared type or the name's extension decides them when the bytes fit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import PurePosixPath

from kallo import errors
from kallo.documents import ALLOWED_TYPES

UTF8_BOM = b"\xef\xbb\xbf"

# (offset, magic, what it is). Ambiguous short magics are qualified where they are checked below.
_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (0, b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (0, b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class"),
    (0, b"\x00asm", "a WebAssembly module"),
    (0, b"PK\x03\x04", "a zip archive (or an Office document such as .docx)"),
    (0, b"PK\x05\x06", "a zip archive"),
    (0, b"PK\x07\x08", "a zip archive"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"BZh", "a bzip2 archive"),
    (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"(\xb5/\xfd", "a zstd archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (257, b"ustar", "a tar archive"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"\x00\x00\x01\x00", "an icon"),
    (0, b"OggS", "an Ogg media file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (4, b"ftyp", "an MP4/QuickTime/HEIF media file"),
)
# A PDF: `%PDF-1.7`; `%%EOF` within the last KiB (the spec's window for trailing junk); an unzipper
# searches the last 64 KiB + 22 bytes for the end-of-archive record.
_PDF_HEADER = re.compile(rb"%PDF-\d\.\d")
_PDF_LINE_MAX = 64
_PDF_EOF_WINDOW = 1024
_PDF_HEAD_WINDOW = 4096
_ZIP_END = b"PK\x05\x06"
_ZIP_END_WINDOW = 64 * 1024 + 22
# Signatures that have no business in the first KiBs of a PDF (its header comment and first objects).
_EMBEDDED_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ\x90\x00", "a Windows executable"),
    (b"PE\x00\x00", "a Windows executable"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document"),
)
_RIFF_KINDS = {b"WAVE": "a WAV audio file", b"AVI ": "an AVI video", b"WEBP": "a WebP image"}

# Control characters that do not occur in text files (tab, newlines, form feed and escape do).
_CONTROL = re.compile(r"[\x01-\x08\x0e-\x1a\x1c-\x1f\x7f]")
# Leading matter an HTML document may start with before its first element.
_HTML_PREAMBLE = re.compile(r"\s*(?:<\?xml[^>]*>|<!--.*?-->|<!doctype[^>]*>)", re.IGNORECASE | re.DOTALL)
_FIRST_TAG = re.compile(r"<([a-z][a-z0-9]*)[\s/>]", re.IGNORECASE)
# Elements that only an HTML document starts with; other tags also start Markdown files (GitHub
# READMEs open with `<p align="center">`), so a Markdown name or declared type wins over those.
_DOCUMENT_TAGS = {"html", "head", "body"}
_HTML_TAGS = _DOCUMENT_TAGS | {
    "a", "article", "aside", "blockquote", "br", "div", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "img", "link", "main", "meta", "nav", "ol", "p", "pre", "script", "section",
    "span", "style", "table", "title", "ul",
}  # fmt: skip
_EXTENSIONS = {
    ".csv": "text/csv",
    ".tsv": "text/csv",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".mdown": "text/markdown",
    ".mkd": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
# How much of a claimed CSV file is checked for consistent rows.
_CSV_SAMPLE_CHARS = 64 * 1024
_CSV_DELIMITERS = ",;\t|"


def detect(data: bytes, *, filename: str | None = None, declared: str | None = None) -> str:
    """The media type of `data`, one of ALLOWED_TYPES; `filename` and `declared` (a Content-Type) only
    choose between text types the bytes are compatible with."""
    if not data:
        raise errors.BadRequest("The file is empty.", code="empty_file")
    if data.lstrip(b"\t\n\r ")[:5] == b"%PDF-":
        _check_pdf(data)
        return "application/pdf"
    _refuse_binary(data)
    text = _as_text(data)
    hint = _hint(filename, declared)
    body = text.lstrip()
    if body[:1] in ("{", "[") and _is_json(body):
        return "application/json"
    html = _html_kind(body)
    if html == "document" or (html == "fragment" and hint != "text/markdown"):
        return "text/html"
    if hint == "text/markdown":
        return "text/markdown"
    if hint == "text/csv" and _fits_csv(body):
        return "text/csv"
    return "text/plain"


def _check_pdf(data: bytes) -> None:
    """I11 (hostile input): a file that starts like a PDF must be one throughout, not a polyglot that
    another program reads as something else (`%PDF-` in front of a zip is still a zip to an unzipper,
    and a download served as a PDF would carry it). So: a PDF version in the header line, `%%EOF`
    near the end, no zip end-of-archive record in the last 64 KiB (where unzippers look for it), and
    no signature of an archive or executable right after the header line (where a PDF has a comment
    or its first object)."""
    body = data.lstrip(b"\t\n\r ")
    if not _PDF_HEADER.match(body):
        raise _unsupported("a file that only starts like a PDF (its header has no version)")
    if b"%%EOF" not in body[-_PDF_EOF_WINDOW:]:
        raise _unsupported("a truncated PDF or another format behind a PDF header (no %%EOF at its end)")
    if _ZIP_END in body[-_ZIP_END_WINDOW:]:
        raise _unsupported("a zip archive behind a PDF header")
    header_end = body.find(b"\n", 0, _PDF_LINE_MAX)
    after = body[header_end + 1 if header_end >= 0 else 8 : _PDF_HEAD_WINDOW]
    for magic, what in _EMBEDDED_MAGICS:
        if magic in after:
            raise _unsupported(f"{what} behind a PDF header")


def _unsupported(what: str) -> errors.UnsupportedMediaType:
    return errors.UnsupportedMediaType(
        f"The file looks like {what}; a data source must be one of: {', '.join(ALLOWED_TYPES)}."
    )


def _refuse_binary(data: bytes) -> None:
    for offset, magic, what in _MAGICS:
        if data[offset : offset + len(magic)] == magic:
            raise _unsupported(what)
    if data[:4] == b"RIFF" and data[8:12] in _RIFF_KINDS:
        raise _unsupported(_RIFF_KINDS[data[8:12]])
    # "MZ" also starts words; a DOS/PE header has NUL bytes right after it.
    if data[:2] == b"MZ" and b"\x00" in data[2:64]:
        raise _unsupported("a Windows executable")
    if data[:3] == b"ID3" and data[3:4] in (b"\x02", b"\x03", b"\x04"):
        raise _unsupported("an MP3 audio file")


def _as_text(data: bytes) -> str:
    if b"\x00" in data:
        raise _unsupported("binary data (it contains NUL bytes)")
    try:
        text = data.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError:
        raise _unsupported("binary data or text that is not UTF-8") from None
    # A stray control character happens in real text; many of them mean a binary format.
    if len(_CONTROL.findall(text[:65536])) * 100 > min(len(text), 65536):
        raise _unsupported("binary data (it is full of control characters)")
    return text


def _hint(filename: str | None, declared: str | None) -> str | None:
    """The text type a client claims: its declared Content-Type if that is an allowed type, else the
    name's extension."""
    if declared:
        media_type = declared.split(";", 1)[0].strip().lower()
        if media_type in ALLOWED_TYPES and media_type != "text/plain":
            return media_type
    if filename:
        return _EXTENSIONS.get(PurePosixPath(filename.replace("\\", "/")).suffix.lower())
    return None


def _is_json(body: str) -> bool:
    try:
        return isinstance(json.loads(body), dict | list)
    except (ValueError, RecursionError):  # nested too deep to parse: plain text, not a 5xx (I11)
        return False


def _html_kind(body: str) -> str | None:
    """ "document" when the text starts like an HTML document (a doctype or <html>/<head>/<body>),
    "fragment" when it starts with another HTML element, else None."""
    position, doctype = 0, False
    while match := _HTML_PREAMBLE.match(body, position):
        doctype = doctype or match.group().strip().lower().startswith("<!doctype html")
        position = match.end()
    tag = _FIRST_TAG.match(body[position:].lstrip())
    name = tag.group(1).lower() if tag else None
    if doctype or name in _DOCUMENT_TAGS:
        return "document"
    return "fragment" if name in _HTML_TAGS else None


def _fits_csv(body: str) -> bool:
    """True when the rows of (the start of) the text have a consistent number of fields for one of
    the usual delimiters, or are a single column."""
    sample = body[:_CSV_SAMPLE_CHARS]
    if len(body) > len(sample):
        sample = sample.rpartition("\n")[0]  # the last row may be cut
    single_column = True
    for delimiter in _CSV_DELIMITERS:
        try:
            rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter, strict=True) if row]
        except csv.Error:
            single_column = False
            continue
        widths = {len(row) for row in rows}
        if len(widths) == 1 and widths != {1}:
            return True
        single_column = single_column and widths <= {1}
    return single_column
