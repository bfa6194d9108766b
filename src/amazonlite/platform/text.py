"""Text a client gives us: names are one line of visible text, descriptions may have lines, and
emails are compared in one form.

The rules on characters are `pattern`s, so the OpenAPI document states them. They refuse Unicode's
control (Cc) and format (Cf) characters: NUL, escapes, bidirectional overrides that make a name
read differently from what it is, invisible tags, zero-width spaces. The zero-width joiner and
non-joiner are format characters that writing needs (Devanagari conjuncts, Persian, emoji
sequences), so they are allowed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Every control (Cc) and format (Cf) character of Unicode 14 (Python 3.11's `unicodedata`), as
# inclusive ranges; tests/platform/test_text.py checks it against the running Python's data.
CONTROL_AND_FORMAT: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
JOINERS = frozenset({0x200C, 0x200D})  # zero-width non-joiner, zero-width joiner
LINE_BREAKS = frozenset({0x09, 0x0A, 0x0D})  # tab, line feed, carriage return: text with lines keeps them
LINE_SEPARATORS = (0x2028, 0x2029)  # Unicode's own line and paragraph separators (Zl, Zp)


def _refused_class(refused: list[tuple[int, int]]) -> str:
    """A regex character class body. Code points of the first plane as `\\uXXXX` escapes, which
    Rust's regex (pydantic), Python's `re` and ECMA-262 (OpenAPI tools) all read alike; the few
    beyond it literally, as there is no escape for them that all three share."""
    def one(code: int) -> str:
        return f"\\u{code:04X}" if code <= 0xFFFF else chr(code)

    return "".join(one(lo) if lo == hi else f"{one(lo)}-{one(hi)}" for lo, hi in refused)


def _without(allowed: frozenset[int], extra: tuple[int, ...] = ()) -> str:
    refused: list[tuple[int, int]] = []
    for code in sorted({c for lo, hi in CONTROL_AND_FORMAT for c in range(lo, hi + 1) if c not in allowed}
                       | set(extra)):
        if refused and refused[-1][1] == code - 1:
            refused[-1] = (refused[-1][0], code)
        else:
            refused.append((code, code))
    return _refused_class(refused)


_NOT_ONE_LINE = _without(JOINERS, LINE_SEPARATORS)
# One line: no control or format character (tabs and line breaks included) but the joiners.
SINGLE_LINE_PATTERN = f"^[^{_NOT_ONE_LINE}]*$"
# Lines: as one line, but tabs and line breaks are kept.
MULTI_LINE_PATTERN = f"^[^{_without(JOINERS | LINE_BREAKS)}]*$"
# What pydantic's `strip_whitespace` removes (Unicode's White_Space, as Rust's `trim`; not quite
# Python's `str.strip()`, which also removes U+001C-U+001F), as inclusive ranges.
WHITE_SPACE: tuple[tuple[int, int], ...] = (
    (0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)
_SPACE = _refused_class(list(WHITE_SPACE))
# A name as a client may send it: white space around (stripped: tabs and line breaks there too),
# then one line with a character that is not white space, as a blank name is refused.
NAME_PATTERN = f"^[{_SPACE}]*[^{_NOT_ONE_LINE}]*[^{_NOT_ONE_LINE}{_SPACE}][^{_NOT_ONE_LINE}]*[{_SPACE}]*$"

SingleLine = Annotated[str, StringConstraints(pattern=SINGLE_LINE_PATTERN)]
"""A name, a title, an address line: no control or format characters, no line breaks."""

NonBlankLine = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""A name (of a person, a product, a place), an address line: one line, not blank; white space
around it is allowed, and removed by `STRIPPED` after the length is checked:
`Annotated[NonBlankLine, StringConstraints(max_length=200), STRIPPED]`. (pydantic's own
`strip_whitespace` strips first: a value the schema calls too long would be taken.)"""

STRIPPED = AfterValidator(str.strip)

MultiLine = Annotated[str, StringConstraints(pattern=MULTI_LINE_PATTERN)]
"""A description: lines and tabs, but no other control or format characters."""


_REFUSED_IN_ONE_LINE = re.compile(f"[{_NOT_ONE_LINE}]+")


def as_one_line(value: str) -> str:
    """A name from elsewhere (an identity provider's claim) made to follow `SingleLine`: control and
    format characters become one space each run, then surrounding white space goes."""
    return _REFUSED_IN_ONE_LINE.sub(" ", value).strip()


def normalise_email(value: str) -> str:
    """The one form emails are stored and compared in: NFKC (full-width letters are plain ASCII,
    a ligature is its letters), no surrounding spaces, lower case."""
    return unicodedata.normalize("NFKC", value).strip().lower()
