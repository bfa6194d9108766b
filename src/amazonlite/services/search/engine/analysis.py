"""Text analysis shared by both engines: one tokenizer, one folding, one typo rule, one highlighter.

Both engines index the terms this module makes (tantivy as pre-tokenized text, PostgreSQL as a
`tsvector` literal) and search for the terms it makes of a query, so a word matches or misses
alike in both, whatever either engine's own tokenizer would have done with it; and the snippet
marks the words that made the product match, in either engine.
"""

from __future__ import annotations

import enum
import functools
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_TERM_LENGTH = 64  # longer "words" are tracking codes or junk; neither engine indexes them
FUZZY_FROM = 4  # letters: a shorter word must be typed exactly (or as a prefix, when last)
TWO_TYPOS_FROM = 8

# Latin letters that Unicode does not decompose into a base letter and an accent.
_LATIN_FOLDS = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ħ": "h"})
_JOINERS = frozenset("\u200c\u200d")  # zero-width (non-)joiner: part of words in Indic scripts
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")  # the letters and digits of ASCII: its only word characters


def fold(text: str) -> str:
    """The case- and accent-insensitive form of `text`: 'Café' → 'cafe', 'Straße' → 'strasse'.

    Accents are dropped from Latin letters only: in Devanagari, Tamil and most other scripts a
    combining mark is a vowel sign, part of the letter, and dropping it would merge words."""
    if text.isascii():
        return text.lower()  # what the steps below make of ASCII, at a fraction of the cost
    kept: list[str] = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept).translate(_LATIN_FOLDS))


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNM" or char in _JOINERS


def _words(text: str) -> Iterable[tuple[int, int]]:
    start = None
    for index, char in enumerate(text):
        if _is_word_char(char):
            if start is None:
                start = index
        elif start is not None:
            yield start, index
            start = None
    if start is not None:
        yield start, len(text)


@dataclass(frozen=True, slots=True)
class Token:
    """A term and where it stands in the original text (for highlighting)."""

    start: int
    end: int
    term: str


def tokenize(text: str) -> list[Token]:
    """Runs of letters, digits and marks, folded. 'Wi-Fi 6E' → wi, fi, 6e; 'UK 8½' → uk, 8, 1, 2."""
    if text.isascii():  # most catalog text: the same tokens by a regular expression, several times faster
        return [Token(m.start(), m.end(), m.group().lower()) for m in _ASCII_WORD.finditer(text)
                if m.end() - m.start() <= MAX_TERM_LENGTH]
    tokens: list[Token] = []
    for start, end in _words(text):
        folded = fold(text[start:end])
        # Folding can bring in a separator (the fraction slash of '½'): each part is a term of the span.
        for part_start, part_end in _words(folded):
            term = folded[part_start:part_end]
            if len(term) <= MAX_TERM_LENGTH:
                tokens.append(Token(start, end, term))
    return tokens


def analyze(text: str) -> list[str]:
    """The terms of `text`, in order, repeats kept (term frequency counts in ranking)."""
    return [token.term for token in tokenize(text)]


def attribute_texts(attributes: Mapping[str, object]) -> list[str]:
    """What a product's attributes say in words: the text and number values, and the name of
    each attribute that is true ({"waterproof": true} is found by "waterproof"; false says nothing)."""
    texts: list[str] = []
    for key, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                texts.append(key.replace("_", " "))
            elif isinstance(item, str | int | float) and not isinstance(item, bool):
                texts.append(str(item))
    return texts


def attribute_value_key(key: str, value: object) -> str:
    """One accepted value of an attribute filter, as both engines index and look it up: the key as
    given, the value case- and accent-folded; 8 and 8.0 are one number."""
    if isinstance(value, bool):
        canonical = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        canonical = str(int(value))
    elif isinstance(value, int | float):
        canonical = repr(value)
    else:
        canonical = " ".join(fold(str(value)).split())
    return f"{key}={canonical}"


def attribute_value_keys(attributes: Mapping[str, object]) -> list[str]:
    keys: set[str] = set()
    for key, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            keys.add(attribute_value_key(key, item))
    return sorted(keys)


# Typos -------------------------------------------------------------------------------------------

def typo_budget(word: str) -> int:
    """Edits a query word may be away from a term: none under 4 letters (too many words are one
    edit from "cap"), one from 4, two from 8. The same rule as tantivy's fuzzy term query
    (Levenshtein, a swap of two neighbours counting as one edit)."""
    if len(word) >= TWO_TYPOS_FROM:
        return 2
    return 1 if len(word) >= FUZZY_FROM else 0


def _distance_rows(word: str, term: str, limit: int) -> list[int]:
    """The last row of the optimal-string-alignment distance table of `word` against `term`:
    entry j is the distance from `word` to the first j characters of `term`."""
    previous2: list[int] = []
    previous = list(range(len(term) + 1))
    for i, char in enumerate(word, start=1):
        current = [i] + [0] * len(term)
        for j, other in enumerate(term, start=1):
            cost = 0 if char == other else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char == term[j - 2] and word[i - 2] == other:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return [limit + 1] * len(current)
        previous2, previous = previous, current
    return previous


def edit_distance(word: str, term: str, limit: int) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from `word` to `term`; any value above
    `limit` is returned as limit + 1."""
    if abs(len(word) - len(term)) > limit:
        return limit + 1
    return min(_distance_rows(word, term, limit)[-1], limit + 1)


def prefix_distance(word: str, term: str, limit: int) -> int:
    """Edits from `word` to the closest prefix of `term` ('hedphon' is one from 'headphones')."""
    return min(min(_distance_rows(word, term, limit)), limit + 1)


class Match(enum.IntEnum):
    """How a query word met a term, best first."""

    EXACT = 0
    PREFIX = 1
    FUZZY = 2


@dataclass(frozen=True, slots=True)
class QueryWord:
    """A folded word of a query. The last word may be a prefix of a term: it may be still typed."""

    text: str
    last: bool

    @property
    def typos(self) -> int:
        return typo_budget(self.text)

    def match(self, term: str) -> Match | None:
        return _match(self.text, self.last, term)


# Highlighting compares every word of a description with every query word: memoized, as the same
# words come back in one text and across the hits of a page.
@functools.lru_cache(maxsize=65_536)
def _match(word: str, last: bool, term: str) -> Match | None:
    if term == word:
        return Match.EXACT
    if last and term.startswith(word):
        return Match.PREFIX
    typos = typo_budget(word)
    if not typos:
        return None
    if last:
        term = term[:len(word) + typos]  # a longer beginning is more edits away than the budget
    if sum(char in term for char in word) < len(word) - typos:
        return None  # an edit loses at most one of the word's letters: a quick no for most terms
    measure = prefix_distance if last else edit_distance
    return Match.FUZZY if measure(word, term, typos) <= typos else None


def query_words(text: str, *, limit: int) -> tuple[QueryWord, ...]:
    """The distinct words of `text`, the first `limit` of them; the last word of the text is a prefix."""
    terms = analyze(text)
    distinct = list(dict.fromkeys(terms))[:limit]
    return tuple(QueryWord(term, last=term == terms[-1]) for term in distinct)


def match_all(words: Sequence[QueryWord], text: str) -> Match | None:
    """How well `text` (a name) matches every word: its worst word's match; None if one misses."""
    terms = analyze(text)
    worst = Match.EXACT
    for word in words:
        found = [kind for term in terms if (kind := word.match(term)) is not None]
        if not found:
            return None
        worst = max(worst, min(found))
    return worst


# Snippets ----------------------------------------------------------------------------------------

SNIPPET_LENGTH = 180  # characters of text around the matches, before escaping
_LEAD = 40  # characters shown before the first match of a fragment


def highlight(text: str, words: Sequence[QueryWord], *, length: int = SNIPPET_LENGTH) -> tuple[str, int]:
    """A fragment of `text` around its densest run of matches, HTML-escaped, each matched word in
    `<mark>…</mark>`; and how many words it marks. Product text is never trusted as HTML: every
    character outside the marks is escaped, so a name like `<script>` reads as text."""
    tokens = tokenize(text)
    hits = [t for t in tokens if any(w.match(t.term) is not None for w in words)]
    if not hits:
        start, end = 0, _cut(text, tokens, 0, length)
    else:
        best = max(hits, key=lambda first: sum(first.start <= h.start and h.end <= first.start + length - _LEAD
                                                for h in hits))
        start = _back_to_word(tokens, best.start - _LEAD) if best.start > _LEAD else 0
        end = _cut(text, tokens, start, length)
    marked = {(t.start, t.end) for t in hits if start <= t.start and t.end <= end}
    pieces: list[str] = ["…"] if start > 0 else []
    cursor = start
    for span_start, span_end in sorted(marked):
        pieces.append(html.escape(text[cursor:span_start]))
        pieces.append(f"<mark>{html.escape(text[span_start:span_end])}</mark>")
        cursor = span_end
    pieces.append(html.escape(text[cursor:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces), len(marked)


def _back_to_word(tokens: Sequence[Token], position: int) -> int:
    """The start of the first word that ends after `position` (a fragment does not open mid-word)."""
    return next((t.start for t in tokens if t.end > position), position)


def _cut(text: str, tokens: Sequence[Token], start: int, length: int) -> int:
    """Where a fragment from `start` ends: `length` characters on, moved back to a word's end."""
    limit = start + length
    if limit >= len(text):
        return len(text)
    ends = [t.end for t in tokens if start < t.end <= limit]
    return ends[-1] if ends else limit


def snippet(name: str, description: str, words: Sequence[QueryWord]) -> str:
    """The fragment of the description that matches best, or the name when the description does
    not match (the product was found by its name, brand, category or attributes)."""
    described, marks = highlight(description, words)
    if marks:
        return described
    return highlight(name, words)[0]
