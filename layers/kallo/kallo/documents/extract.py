"""The plain text of a document, which is what passages, the index and citations' offsets refer to.

Whitespace is normalised moderately so that offsets stay meaningful to a reader: line breaks become
`\\n`, runs of spaces (and tabs) after a line's first word become one (indentation stays, so code
and pretty-printed JSON keep their shape), trailing spaces go, and three or more line
breaks become a paragraph break (one blank line). Text is capped at MAX_CHARS characters (about 300,000
words, far more than any prompt can hold); anything after the cap is not indexed or cited, and the cut
falls on a paragraph, line or word boundary near it. Of a PDF, at most MAX_PAGES pages are read.

I11 (hostile input): `bounded_text_of` is what the worker calls: `text_of` in a child process bound in
CPU, memory and time (`kallo.documents.bounded`); a document over the bound fails `too_complex`.
"""

from __future__ import annotations

import io
import json
import logging
import re
from html.parser import HTMLParser

from kallo import errors
from kallo.documents import bounded
from kallo.documents.sniff import UTF8_BOM

MAX_CHARS = 2_000_000
MAX_PAGES = 2_000

_INNER_SPACE = re.compile(r"(?<=\S)[^\S\n]+")
_LINE_END_SPACE = re.compile(r"[^\S\n]+\n")
_LINE_START_SPACE = re.compile(r"\n[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def bounded_text_of(data: bytes, media_type: str) -> str:
    """`text_of` within the per-document bound on CPU, memory and time (raises `bounded.TooComplex`
    over it)."""
    if media_type == "application/pdf":
        import pypdf  # noqa: F401  (imported once in the parent, not again in every child)
    return str(bounded.run(text_of, data, media_type))


def text_of(data: bytes, media_type: str) -> str:
    """The normalised text of `data` (of a type `sniff.detect` returned); raises Unprocessable with
    code "unreadable_document" when no text can be read from it."""
    if media_type == "application/pdf":
        raw = _pdf_text(data)
    else:
        decoded = data.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
        if media_type == "text/html":
            raw = _html_text(decoded)
        elif media_type == "application/json":
            raw = _json_text(decoded)
        else:
            raw = decoded
    text = normalise(raw)
    if not text:
        raise _unreadable("The document contains no text.")
    return text


def normalise(text: str) -> str:
    """Text with uniform line breaks, single spaces, at most one blank line in a row, and capped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = _CONTROL.sub(" ", text)
    text = _INNER_SPACE.sub(" ", text)
    text = _LINE_END_SPACE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if len(text) <= MAX_CHARS:
        return text
    head = text[:MAX_CHARS]
    for boundary in ("\n\n", "\n", " "):
        cut = head.rfind(boundary)
        if cut > MAX_CHARS * 0.9:
            return head[:cut].rstrip()
    return head


def _unreadable(message: str) -> errors.Unprocessable:
    return errors.Unprocessable(message, code="unreadable_document")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    # pypdf reports recoverable damage through logging; a damaged file still fails below if no text
    # comes out of it, and the warnings would only be noise in the function's logs.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _unreadable("The PDF is protected by a password.")
        size = 0
        for number, page in enumerate(reader.pages):
            if number >= MAX_PAGES:
                break
            pages.append(page.extract_text() or "")
            size += len(pages[-1])
            if size > MAX_CHARS:
                break
    except errors.DomainError:
        raise
    except Exception as exc:
        # A damaged file can make pypdf fail in many ways (its own errors, but also KeyError, ValueError,
        # zlib and struct errors, or a missing decryption dependency); every one means "cannot read it".
        raise _unreadable(f"The PDF cannot be read ({type(exc).__name__}).") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise _unreadable("The PDF has no text layer (a scanned document needs OCR first).")
    return text


def _json_text(decoded: str) -> str:
    """Pretty-printed, so that a minified document still has lines to cut passages at."""
    try:
        return json.dumps(json.loads(decoded), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to re-indent, kept as is
        return decoded


def _html_text(decoded: str) -> str:
    parser = _TextParser()
    parser.feed(decoded)
    parser.close()
    return _LINE_START_SPACE.sub("\n", "".join(parser.parts))


class _TextParser(HTMLParser):
    """Collects the visible text of an HTML document; block elements start new lines or paragraphs,
    entities are unescaped (`convert_charrefs`), and what is not shown to a reader is dropped."""

    HIDDEN = {"head", "script", "style", "noscript", "template", "svg", "iframe", "object"}
    PARAGRAPHS = {
        "address", "article", "aside", "blockquote", "dl", "div", "fieldset", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section",
        "table", "ul",
    }  # fmt: skip
    LINES = {"br", "caption", "dd", "dt", "figcaption", "li", "tr"}
    CELLS = {"td", "th"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden: list[str] = []
        self.preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # A document may leave <head> unclosed; its body is visible all the same.
            self.hidden = [t for t in self.hidden if t != "head"]
        if tag in self.HIDDEN and tag not in self.VOID:
            self.hidden.append(tag)
        self.preformatted += tag == "pre"
        self._break(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.hidden:
            del self.hidden[len(self.hidden) - 1 - self.hidden[::-1].index(tag) :]
        if tag == "pre" and self.preformatted:
            self.preformatted -= 1
        self._break(tag, opening=False)

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            # Line breaks in HTML source are spaces to a reader, except in <pre>.
            self.parts.append(data if self.preformatted else _ANY_SPACE.sub(" ", data))

    def _break(self, tag: str, *, opening: bool) -> None:
        if self.hidden:
            return
        if tag in self.PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in self.LINES and opening:
            self.parts.append("\n")
        elif tag in self.CELLS and opening:
            self.parts.append(" ")
