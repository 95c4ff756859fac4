"""Passages: the units that are indexed, retrieved and put in front of the model.

About TARGET characters each (a paragraph or two: enough context to answer from, small enough that
four of them fit any model's context with the question), cut at the strongest boundary available
(a paragraph break, else a sentence end, else a line break, else a space) and overlapping the previous
passage by about OVERLAP characters, starting at a sentence where possible, so that a fact straddling
a cut is whole in one of the two passages. Offsets are into the extracted text: for every passage
`text[p.start:p.end] == p.text`, and no passage is empty or starts or ends with whitespace.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

TARGET = 800
# A passage is cut between MIN and MAX characters; the last one may run to MAX rather than leave a
# small remainder.
MIN = 500
MAX = 1000
OVERLAP = 120

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
# A sentence ends at . ! ? (or their CJK forms), possibly followed by closing quotes or brackets, then
# whitespace; a lone capital ("J. Smith"), a common abbreviation or a list item's number ("2. ") before
# the dot is not an end.
_SENTENCE = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*(?:\s+|$)|[\u3002\uff01\uff1f]")
_NOT_AN_END = re.compile(
    r"(?:\b(?:[A-Z]|e\.g|i\.e|etc|vs|cf|Mr|Mrs|Ms|Dr|Prof|St|No|Inc|Ltd|Co|Jr|Sr|approx|fig|Fig)"
    r"|(?:^|\n)[^\S\n]*\d{1,3})\.$"
)
_LINE = re.compile(r"\n\s*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Passage:
    start: int
    end: int
    text: str


def sentence_breaks(text: str, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets in `text[start:end]` where a sentence (or paragraph) begins, after the first one."""
    end = len(text) if end is None else end
    breaks = [m.end() for m in _PARAGRAPH.finditer(text, start, end)]
    for match in _SENTENCE.finditer(text, start, end):
        if not _NOT_AN_END.search(text, max(start, match.start() - 8), match.start() + 1):
            breaks.append(match.end())
    return sorted({b for b in breaks if start < b < end})


def split(text: str) -> list[Passage]:
    """The passages of `text`, in order."""
    boundaries = (
        [m.end() for m in _PARAGRAPH.finditer(text)],
        sentence_breaks(text),
        [m.end() for m in _LINE.finditer(text)],
        [m.end() for m in _SPACE.finditer(text)],
    )
    sentences = boundaries[1]
    found: list[Passage] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = len(text) if len(text) - start <= MAX else _cut(boundaries, start)
        passage = _trimmed(text, start, end)
        if passage:
            found.append(passage)
        if end >= len(text):
            break
        start = _skip_space(text, _overlap_start(sentences, boundaries[3], start, end))
    return found


def _cut(boundaries: tuple[list[int], ...], start: int) -> int:
    """The end of the passage from `start`: the last boundary of the strongest kind in [MIN, TARGET],
    or failing that the first one in (TARGET, MAX], or a hard cut at TARGET."""
    low, target, high = start + MIN, start + TARGET, start + MAX
    for positions in boundaries:
        before = positions[bisect_left(positions, low) : bisect_right(positions, target)]
        if before:
            return before[-1]
        after = positions[bisect_right(positions, target) : bisect_right(positions, high)]
        if after:
            return after[0]
    return target


def _overlap_start(sentences: list[int], spaces: list[int], start: int, end: int) -> int:
    """Where the next passage starts: the sentence start nearest OVERLAP characters before the cut
    (within half of it either way), else the first word within OVERLAP of the cut; always after
    `start`."""
    low, high = max(start + 1, end - OVERLAP * 3 // 2), end - OVERLAP // 2
    candidates = sentences[bisect_left(sentences, low) : bisect_right(sentences, high)]
    if candidates:
        return min(candidates, key=lambda position: abs(end - OVERLAP - position))
    words = spaces[bisect_left(spaces, max(start + 1, end - OVERLAP)) : bisect_left(spaces, end)]
    return words[0] if words else max(start + 1, end - OVERLAP)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _trimmed(text: str, start: int, end: int) -> Passage | None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped:
        return None
    start += len(chunk) - len(chunk.lstrip())
    return Passage(start, start + len(stripped), stripped)
