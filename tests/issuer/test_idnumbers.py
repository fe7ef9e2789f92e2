"""GB 11643-1999 resident identity numbers and GB 32100-2015 unified social credit codes.

Published vectors live in tests/vectors/cn_id_numbers.json, each with its source named (the standard's
own appendix, python-stdnum's doctests, Wikipedia, aarioai/id-rule).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from issuer.idnumbers import (
    CREDIT_CODE_ALPHABET,
    CreditCode,
    ResidentId,
    credit_code_check_char,
    mask_resident_id,
    organisation_code_check_char,
    resident_id_check_char,
    validate_credit_code,
    validate_resident_id,
)
from kernel.errors import MalformedInput

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "cn_id_numbers.json").read_text(encoding="utf-8")
)
TODAY = datetime.date(2025, 6, 1)
DIGITS = "0123456789"
RESIDENT_CHECKS = "0123456789X"


def slug_of(excinfo: pytest.ExceptionInfo[MalformedInput]) -> str:
    return excinfo.value.slug


# --- resident identity number: published vectors ----------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["resident_id"]["valid"], ids=lambda v: v["number"])
def test_resident_id_published_valid(vector: dict[str, str]) -> None:
    rid = validate_resident_id(vector["number"], today=TODAY)
    assert rid == ResidentId(
        number=vector.get("normalised", vector["number"]),
        area_code=vector["area_code"],
        birth_date=datetime.date.fromisoformat(vector["birth_date"]),
        sex=vector["sex"],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("vector", VECTORS["resident_id"]["invalid"], ids=lambda v: v["number"])
def test_resident_id_published_invalid(vector: dict[str, str]) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(vector["number"], today=TODAY)
    assert slug_of(excinfo) == vector["slug"]


def test_standard_example_born_1880_needs_a_lower_bound() -> None:
    vector = VECTORS["resident_id"]["before_1890"]
    # The checksum is right (GB 11643-1999 Appendix A) ...
    assert resident_id_check_char(vector["number"][:17]) == vector["number"][17]
    # ... but 1880 is before the default earliest birth date of 1890.
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(vector["number"], today=TODAY)
    assert slug_of(excinfo) == "resident-id-birth-date"
    rid = validate_resident_id(vector["number"], today=TODAY, earliest=datetime.date(1870, 1, 1))
    assert rid.birth_date == datetime.date(1880, 1, 1)
    assert rid.sex == "M"


def test_female_and_male_from_the_17th_digit() -> None:
    assert validate_resident_id("11010519491231002X", today=TODAY).sex == "F"  # 17th digit 2
    assert validate_resident_id("360426199101010071", today=TODAY).sex == "M"  # 17th digit 7


def test_lowercase_x_is_normalised() -> None:
    assert validate_resident_id("11010519491231002x", today=TODAY).number == "11010519491231002X"


# --- resident identity number: refusals -------------------------------------------------------------------


def with_check(body: str) -> str:
    return body + resident_id_check_char(body)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "11010519491231002",  # 17
        "11010519491231002X0",  # 19
        "1101051949123100XX",  # X in the body
        "11010519491231002Y",
        "11010519491231002*",
        " 11010519491231002X",
        "11010519491231002X ",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",  # Arabic-Indic digits pass str.isdigit()
        with_check("01010519491231002"),  # region 0
        with_check("91010519491231002"),  # region 9
    ],
)
def test_resident_id_format_refused(number: str) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(number, today=TODAY)
    assert slug_of(excinfo) == "resident-id-format"


def test_resident_id_non_string_refused() -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(110105194912310020, today=TODAY)  # type: ignore[arg-type]
    assert slug_of(excinfo) == "resident-id-format"


@pytest.mark.parametrize(
    "body",
    [
        "11010519490229002",  # 1949 is no leap year
        "11010520230229002",  # neither is 2023
        "11010519491301002",  # month 13
        "11010519490001002",  # month 0
        "11010519490100002",  # day 0
        "11010519490431002",  # 31 April
        "11010500000101002",  # year 0
        "11010518891231002",  # 1889: before 1890
        "11010520250602002",  # tomorrow
        "11010530000101002",  # far future
    ],
)
def test_resident_id_birth_date_refused(body: str) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(with_check(body), today=TODAY)
    assert slug_of(excinfo) == "resident-id-birth-date"


def test_resident_id_birth_date_bounds_inclusive() -> None:
    assert validate_resident_id(with_check("11010520250601002"), today=TODAY).birth_date == TODAY
    oldest = validate_resident_id(with_check("11010518900101002"), today=TODAY).birth_date
    assert oldest == datetime.date(1890, 1, 1)
    leap = validate_resident_id(with_check("11010520000229002"), today=TODAY).birth_date
    assert leap == datetime.date(2000, 2, 29)


def test_resident_id_checksum_checked_before_birth_date() -> None:
    # Wrong check character and an impossible date: the typo is reported.
    body = "11010519491301002"
    wrong = next(c for c in RESIDENT_CHECKS if c != resident_id_check_char(body))
    with pytest.raises(MalformedInput) as excinfo:
        validate_resident_id(body + wrong, today=TODAY)
    assert slug_of(excinfo) == "resident-id-checksum"


def test_check_char_weights_by_hand() -> None:
    # GB 11643-1999 Appendix B style worked sum for 11010519491231002X:
    # weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 over 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2
    digits = [1, 1, 0, 1, 0, 5, 1, 9, 4, 9, 1, 2, 3, 1, 0, 0, 2]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(d * w for d, w in zip(digits, weights, strict=True))
    assert total == 167
    assert total % 11 == 2
    assert "10X98765432"[2] == "X" == resident_id_check_char("11010519491231002")


@pytest.mark.parametrize("body", ["", "1234567890123456", "123456789012345678", "1101051949123100X"])
def test_resident_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError, match="17 ASCII digits"):
        resident_id_check_char(body)


# --- resident identity number: property -------------------------------------------------------------------

resident_bodies = st.builds(
    lambda region, area, born, seq: f"{region}{area}{born:%Y%m%d}{seq}",
    st.sampled_from("12345678"),
    st.text(DIGITS, min_size=5, max_size=5),
    st.dates(min_value=datetime.date(1890, 1, 1), max_value=TODAY),
    st.text(DIGITS, min_size=3, max_size=3),
)


@given(resident_bodies)
def test_computed_check_char_is_the_only_valid_one(body: str) -> None:
    check = resident_id_check_char(body)
    rid = validate_resident_id(body + check, today=TODAY)
    assert rid.number == body + check
    assert rid.sex == ("M" if int(body[16]) % 2 else "F")
    for other in RESIDENT_CHECKS:
        if other == check:
            continue
        with pytest.raises(MalformedInput) as excinfo:
            validate_resident_id(body + other, today=TODAY)
        assert slug_of(excinfo) == "resident-id-checksum"


@given(st.text(DIGITS, min_size=17, max_size=17))
def test_any_17_digit_body_has_exactly_one_check_char(body: str) -> None:
    check = resident_id_check_char(body)
    assert check in RESIDENT_CHECKS
    # MOD 11-2 property: the weighted sum including the check value (X = 10, weight 1) is 1 mod 11.
    values = [int(d) for d in body] + [10 if check == "X" else int(check)]
    weights = [pow(2, 17 - i, 11) for i in range(18)]
    assert sum(v * w for v, w in zip(values, weights, strict=True)) % 11 == 1


@given(resident_bodies, st.integers(0, 16), st.sampled_from(DIGITS))
def test_single_digit_typo_is_caught(body: str, position: int, digit: str) -> None:
    number = body + resident_id_check_char(body)
    typo = number[:position] + digit + number[position + 1 :]
    if typo == number:
        return
    with pytest.raises(MalformedInput):
        validate_resident_id(typo, today=TODAY)


# --- masking ----------------------------------------------------------------------------------------------


def test_mask_resident_id() -> None:
    assert mask_resident_id("11010519491231002X") == "1101**********002X"
    assert mask_resident_id("11010519491231002x") == "1101**********002X"
    assert mask_resident_id("360426199101010071") == "3604**********0071"
    assert len(mask_resident_id("360426199101010071")) == 18


@pytest.mark.parametrize("number", ["", "1101051949123100", "11010519491231002Q", "abcdefghijklmnopqr"])
def test_mask_refuses_what_is_not_shaped_like_a_number(number: str) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        mask_resident_id(number)
    assert slug_of(excinfo) == "resident-id-format"


# --- unified social credit code: published vectors --------------------------------------------------------


@pytest.mark.parametrize("code", VECTORS["credit_code"]["valid"])
def test_credit_code_published_valid(code: str) -> None:
    parsed = validate_credit_code(code)
    assert parsed == CreditCode(
        code=code,
        registration_authority=code[0],
        category=code[1],
        division_code=code[2:8],
        organisation_code=code[8:17],
    )


def test_credit_code_wikipedia_example_fields() -> None:
    (vector,) = VECTORS["credit_code"]["valid_other"]
    parsed = validate_credit_code(vector["code"])
    assert parsed.registration_authority == "9"  # market regulation (industry and commerce)
    assert parsed.category == "1"
    assert parsed.division_code == "350100"  # Fuzhou
    assert parsed.organisation_code == "M000100Y4"


@pytest.mark.parametrize("vector", VECTORS["credit_code"]["invalid"], ids=lambda v: v["code"])
def test_credit_code_published_invalid(vector: dict[str, str]) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_credit_code(vector["code"])
    assert slug_of(excinfo) == vector["slug"]


@pytest.mark.parametrize("code", VECTORS["credit_code"]["pilot_noncompliant"]["codes"])
def test_pilot_era_codes_with_a_wrong_check_are_refused(code: str) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_credit_code(code)
    assert slug_of(excinfo) == "credit-code-checksum"


# --- unified social credit code: refusals and parts -------------------------------------------------------


def test_weights_are_powers_of_three_mod_31() -> None:
    expected = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    assert [pow(3, i, 31) for i in range(17)] == expected


def test_organisation_code_check_by_hand() -> None:
    # 91110000600037341L: organisation code 60003734-1.
    # 6*3 + 0*7 + 0*9 + 0*10 + 3*5 + 7*8 + 3*4 + 4*2 = 109; 109 mod 11 = 10; 11 - 10 = 1.
    assert organisation_code_check_char("60003734") == "1"
    # 11 - (sum mod 11) = 10 is written X, = 11 is written 0:
    assert organisation_code_check_char("07837757") == "X"  # from 9115220107837757XE
    assert organisation_code_check_char("00000000") == "0"
    # Letters count A=10 ... Z=35 (GB 11714's own character set, not the credit code alphabet):
    assert organisation_code_check_char("MA2PBP21") == "2"  # from 91340600MA2PBP2120


def test_credit_code_final_check_mapping_of_zero() -> None:
    # 31 - (sum mod 31) = 31 is written "0"; 30 is "Y", the last alphabet character.
    assert credit_code_check_char("00000000000000000") == "0"
    assert credit_code_check_char("10000000000000000") == "Y"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "91110000600037341",  # 17
        "91110000600037341LL",  # 19
        "91110000600037341l",  # lowercase
        "9111000060003734IL",  # I
        "O1110000600037341L",  # O
        "91110000600037341Z",
        "91110000600037341S",
        "91110000600037341V",
        "911100006000-7341L",
        "９1110000600037341L",  # full-width digit
        "91A10000600037341L",  # letter in the division code
    ],
)
def test_credit_code_format_refused(code: str) -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_credit_code(code)
    assert slug_of(excinfo) == "credit-code-format"


def test_credit_code_non_string_refused() -> None:
    with pytest.raises(MalformedInput) as excinfo:
        validate_credit_code(None)  # type: ignore[arg-type]
    assert slug_of(excinfo) == "credit-code-format"


def test_wrong_organisation_check_is_refused_even_if_the_final_check_matches() -> None:
    body = "91110000600037342"  # organisation check 2 instead of 1
    code = body + credit_code_check_char(body)
    with pytest.raises(MalformedInput) as excinfo:
        validate_credit_code(code)
    assert slug_of(excinfo) == "credit-code-checksum"
    assert "organisation code" in excinfo.value.detail


@pytest.mark.parametrize("body", ["", "9111000060003734", "9111000060003734I"])
def test_credit_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError, match="credit code alphabet"):
        credit_code_check_char(body)


@pytest.mark.parametrize("body", ["", "1234567", "123456789", "1234567-"])
def test_organisation_check_char_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        organisation_code_check_char(body)


# --- unified social credit code: property -----------------------------------------------------------------

credit_bodies = st.builds(
    lambda head, division, org: f"{head}{division}{org}{organisation_code_check_char(org)}",
    st.text(CREDIT_CODE_ALPHABET, min_size=2, max_size=2),
    st.text(DIGITS, min_size=6, max_size=6),
    st.text(CREDIT_CODE_ALPHABET, min_size=8, max_size=8),
)


@given(credit_bodies)
def test_computed_credit_check_is_the_only_valid_one(body: str) -> None:
    check = credit_code_check_char(body)
    assert validate_credit_code(body + check).code == body + check
    for other in CREDIT_CODE_ALPHABET:
        if other == check:
            continue
        with pytest.raises(MalformedInput) as excinfo:
            validate_credit_code(body + other)
        assert slug_of(excinfo) == "credit-code-checksum"


@given(credit_bodies, st.integers(0, 16), st.sampled_from(CREDIT_CODE_ALPHABET))
def test_single_character_typo_in_a_credit_code_is_caught(body: str, position: int, char: str) -> None:
    code = body + credit_code_check_char(body)
    typo = code[:position] + char + code[position + 1 :]
    if typo == code:
        return
    with pytest.raises(MalformedInput):
        validate_credit_code(typo)
