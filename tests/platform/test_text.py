"""The kernel's rules for text a client gives: names, descriptions, emails, currencies."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from amazonlite.platform.money import Currency
from amazonlite.platform.text import (
    CONTROL_AND_FORMAT,
    JOINERS,
    MULTI_LINE_PATTERN,
    SINGLE_LINE_PATTERN,
    MultiLine,
    SingleLine,
    as_one_line,
    normalise_email,
)

SINGLE, MULTI, CURRENCY = TypeAdapter(SingleLine), TypeAdapter(MultiLine), TypeAdapter(Currency)


def accepted(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


class TestControlAndFormatCharacters:
    def test_the_list_is_unicodes_own(self) -> None:
        listed = {c for lo, hi in CONTROL_AND_FORMAT for c in range(lo, hi + 1)}
        assert listed == {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Cf")}

    def test_every_one_but_the_joiners_is_refused_in_a_name_and_in_a_description(self) -> None:
        for lo, hi in CONTROL_AND_FORMAT:
            for code in range(lo, hi + 1):
                value = f"Ada{chr(code)}Lovelace"
                expected_single = code in JOINERS
                expected_multi = code in JOINERS or chr(code) in "\t\n\r"
                assert (accepted(SINGLE, value), accepted(MULTI, value)) == (expected_single, expected_multi), hex(code)

    @pytest.mark.parametrize("value", ["Ada Lovelace", "Zoë's café", "क्‍ष", "👩‍💻 Studio", "東京 ストア", "مرحبا"])
    def test_ordinary_text_of_any_script_passes(self, value: str) -> None:
        assert accepted(SINGLE, value) and accepted(MULTI, value)

    def test_a_description_keeps_its_lines_a_name_has_one(self) -> None:
        for value in ("first\nsecond", "a\r\nb", "col\tcol", "para\u2029para"):
            assert (accepted(SINGLE, value), accepted(MULTI, value)) == (False, True), repr(value)

    def test_the_patterns_read_alike_in_pythons_re(self) -> None:
        # What OpenAPI tools (schemathesis among them) see is the same rule pydantic applies.
        for value, single, multi in (("Ada", True, True), ("a\nb", False, True), ("a\u202eb", False, False),
                                     ("a\U000e0041", False, False), ("a\u200db", True, True)):
            assert (bool(re.search(SINGLE_LINE_PATTERN, value)), bool(re.search(MULTI_LINE_PATTERN, value))) == (
                single, multi), repr(value)


class TestNamesFromElsewhere:
    @pytest.mark.parametrize(("claimed", "kept"), [
        ("Ada\nLovelace", "Ada Lovelace"), ("\u202eecilA\u200b", "ecilA"), (" x\x00\x07y ", "x y"),
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937"),  # a conjunct keeps its joiner
    ])
    def test_an_identity_providers_name_is_made_one_line(self, claimed: str, kept: str) -> None:
        assert as_one_line(claimed) == kept
        assert re.fullmatch(SINGLE_LINE_PATTERN, as_one_line(claimed))  # what it made is a single line


class TestEmails:
    @pytest.mark.parametrize(("given", "stored"), [
        ("ada@example.com", "ada@example.com"),
        ("  Ada@Example.COM ", "ada@example.com"),
        ("\uff41\uff44\uff41@example.com", "ada@example.com"),  # full-width letters
        ("\uff21\uff24\uff21\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "ada@example.com"),
        ("\ufb01sh@example.com", "fish@example.com"),  # a ligature
    ])
    def test_look_alikes_have_one_form(self, given: str, stored: str) -> None:
        assert normalise_email(given) == stored


class TestCurrencies:
    @pytest.mark.parametrize("code", ["INR", "EUR", "USD", "JPY", "XOF"])
    def test_codes_in_force_pass(self, code: str) -> None:
        assert CURRENCY.validate_python(code) == code

    @pytest.mark.parametrize("code", ["JED", "ABC", "inr", "EURO", "", "DEM", "XAU", "XTS", "XXX", "XDR"])
    def test_anything_else_is_refused(self, code: str) -> None:
        assert not accepted(CURRENCY, code)

    def test_the_schema_lists_the_codes(self) -> None:
        schema = CURRENCY.json_schema()
        assert "INR" in schema["enum"] and "JED" not in schema["enum"] and len(schema["enum"]) > 150
