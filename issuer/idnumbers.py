"""Chinese identity numbers: the resident identity number and the unified social credit code.

Two national standards, both with a check character that catches every single-character typo:

* GB 11643-1999 *Citizen identification number* (公民身份号码), 18 characters::

      AAAAAA YYYYMMDD SSS C
      area   birth    seq check       seq: odd = male, even = female
                                      check: ISO 7064 MOD 11-2 over the 17 digits, "X" stands for 10

* GB 32100-2015 *Unified social credit identifier* (统一社会信用代码), 18 characters from a 31-symbol
  alphabet (the digits and the capitals without I, O, S, V, Z)::

      R K DDDDDD OOOOOOOOO C
      | | |      |         check: weights 3^i mod 31, check = (31 - sum mod 31) mod 31
      | | |      organisation code (GB 11714-1997), itself ending in a MOD 11 check character
      | | administrative division of the registration authority (GB/T 2260), six digits
      | organisation category
      registration authority

Everything here is pure: the caller passes ``today``; nothing reads the clock.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Final, Literal

from kernel.errors import MalformedInput

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "EARLIEST_BIRTH_DATE",
    "CreditCode",
    "ResidentId",
    "credit_code_check_char",
    "mask_resident_id",
    "organisation_code_check_char",
    "resident_id_check_char",
    "validate_credit_code",
    "validate_resident_id",
]

# ---------------------------------------------------------------------------------------------------------
# GB 11643-1999 resident identity number
# ---------------------------------------------------------------------------------------------------------

_DIGITS: Final = frozenset("0123456789")  # str.isdigit() would also admit "١" and "²"; these are ASCII only

# ISO 7064 MOD 11-2: the weight of the digit at 0-based position i (from the left) is 2^(17 - i) mod 11,
# i.e. 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2; the weighted sum mod 11 selects the check character below.
_RESIDENT_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_RESIDENT_CHECK: Final = "10X98765432"

#: Birth dates before this are refused by default; pass ``earliest=`` to move it.
EARLIEST_BIRTH_DATE: Final = datetime.date(1890, 1, 1)

# First digit of the GB/T 2260 area code: 1 North, 2 North-East, 3 East, 4 Central-South, 5 South-West,
# 6 North-West, 7 Taiwan, 8 Hong Kong / Macao / residence permits. 0 and 9 are not in use.
_AREA_REGIONS: Final = frozenset("12345678")


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A resident identity number that passed :func:`validate_resident_id`; ``number`` is normalised."""

    number: str
    area_code: str
    birth_date: datetime.date
    sex: Literal["M", "F"]


def resident_id_check_char(body: str) -> str:
    """The GB 11643 check character (``0``-``9`` or ``X``) for a 17-digit body."""
    if len(body) != 17 or not _DIGITS.issuperset(body):
        raise ValueError("a resident identity number body is exactly 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(body, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


def _resident_shape(number: object) -> str:
    """Return ``number`` with a lowercase check ``x`` made uppercase, or refuse its shape."""
    if not isinstance(number, str) or len(number) != 18:
        raise MalformedInput(
            "a resident identity number has exactly 18 characters", slug="resident-id-format"
        )
    body, check = number[:17], number[17]
    if not _DIGITS.issuperset(body):
        raise MalformedInput(
            "the first 17 characters of a resident identity number are digits", slug="resident-id-format"
        )
    if check == "x":
        check = "X"
    if check not in _DIGITS and check != "X":
        raise MalformedInput(
            "the check character of a resident identity number is a digit or X", slug="resident-id-format"
        )
    return body + check


def validate_resident_id(
    number: str, *, today: datetime.date, earliest: datetime.date = EARLIEST_BIRTH_DATE
) -> ResidentId:
    """Check an 18-character resident identity number (GB 11643-1999) and split it into its parts.

    Refuses, in this order: the wrong shape or an implausible area code (``resident-id-format``), a wrong
    check character (``resident-id-checksum``), a birth date that is no calendar date, lies after ``today``
    or before ``earliest`` (``resident-id-birth-date``). A lowercase ``x`` check character is accepted and
    normalised to ``X``; nothing else is rewritten (no trimming, no full-width digits).
    """
    normalised = _resident_shape(number)
    area_code = normalised[:6]
    if area_code[0] not in _AREA_REGIONS:
        raise MalformedInput(
            f"area code {area_code} does not start with a region digit 1-8", slug="resident-id-format"
        )
    if resident_id_check_char(normalised[:17]) != normalised[17]:
        raise MalformedInput(
            "the check character of the resident identity number does not match", slug="resident-id-checksum"
        )
    stamp = normalised[6:14]
    try:
        birth_date = datetime.date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))
    except ValueError:
        raise MalformedInput(
            f"birth date {stamp} is not a calendar date", slug="resident-id-birth-date"
        ) from None
    if birth_date > today:
        raise MalformedInput(f"birth date {birth_date} lies in the future", slug="resident-id-birth-date")
    if birth_date < earliest:
        raise MalformedInput(f"birth date {birth_date} lies before {earliest}", slug="resident-id-birth-date")
    sex: Literal["M", "F"] = "M" if int(normalised[16]) % 2 == 1 else "F"
    return ResidentId(number=normalised, area_code=area_code, birth_date=birth_date, sex=sex)


def mask_resident_id(number: str) -> str:
    """Display form: the first four and the last four characters, the ten between as ``*``.

    ``"11010519491231002x"`` becomes ``"1101**********002X"``. The shape is checked (so that nothing
    unexpected is echoed), the check character is not: stored numbers were validated when they came in.
    """
    normalised = _resident_shape(number)
    return normalised[:4] + "*" * 10 + normalised[14:]


# ---------------------------------------------------------------------------------------------------------
# GB 32100-2015 unified social credit code
# ---------------------------------------------------------------------------------------------------------

#: The 31 code characters in value order: "0" is 0, "A" is 10, ..., "Y" is 30.
CREDIT_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUES: Final = {char: value for value, char in enumerate(CREDIT_CODE_ALPHABET)}
# Weight of position i (0-based, from the left) is 3^i mod 31: 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28.
_CREDIT_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))

# GB 11714-1997 organisation code: 8 body characters, weights below, check = 11 - (sum mod 11) with 10 -> X,
# 11 -> 0. Its character values come from GB 11714's own set: digits 0-9, letters A=10 ... Z=35 (all 26).
_ORGANISATION_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True, slots=True)
class CreditCode:
    """A unified social credit code that passed :func:`validate_credit_code`, split into its fields."""

    code: str
    registration_authority: str
    category: str
    division_code: str
    organisation_code: str


def _organisation_value(char: str) -> int:
    if char in _DIGITS:
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"{char!r} is not a GB 11714 code character")


def organisation_code_check_char(body: str) -> str:
    """The GB 11714 check character (``0``-``9`` or ``X``) for an 8-character organisation code body."""
    if len(body) != 8:
        raise ValueError("an organisation code body has exactly 8 characters")
    total = sum(
        _organisation_value(char) * weight for char, weight in zip(body, _ORGANISATION_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def credit_code_check_char(body: str) -> str:
    """The GB 32100 check character for the first 17 characters of a unified social credit code."""
    if len(body) != 17 or any(char not in _CREDIT_VALUES for char in body):
        raise ValueError("a credit code body is exactly 17 characters of the credit code alphabet")
    total = sum(_CREDIT_VALUES[char] * weight for char, weight in zip(body, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(code: str) -> CreditCode:
    """Check an 18-character unified social credit code (GB 32100-2015) and split it into its fields.

    Refuses the wrong length, characters outside :data:`CREDIT_CODE_ALPHABET` (this includes lowercase
    letters and I, O, S, V, Z) or a division code that is not six digits (``credit-code-format``), and a
    wrong check character of the embedded organisation code or of the whole code (``credit-code-checksum``).

    Some codes issued in early pilot regions before the standard (for example in Fujian) do not satisfy the
    final check and are refused here; they need an explicit allow-list if they must be accepted.
    """
    if not isinstance(code, str) or len(code) != 18:
        raise MalformedInput(
            "a unified social credit code has exactly 18 characters", slug="credit-code-format"
        )
    strays = sorted({char for char in code if char not in _CREDIT_VALUES})
    if strays:
        raise MalformedInput(
            f"characters {''.join(strays)!r} are not in the credit code alphabet {CREDIT_CODE_ALPHABET}",
            slug="credit-code-format",
        )
    division_code = code[2:8]
    if not _DIGITS.issuperset(division_code):
        raise MalformedInput(
            f"the administrative division code {division_code} is not six digits", slug="credit-code-format"
        )
    organisation_code = code[8:17]
    if organisation_code_check_char(organisation_code[:8]) != organisation_code[8]:
        raise MalformedInput(
            f"the check character of organisation code {organisation_code} does not match",
            slug="credit-code-checksum",
        )
    if credit_code_check_char(code[:17]) != code[17]:
        raise MalformedInput(
            "the check character of the unified social credit code does not match",
            slug="credit-code-checksum",
        )
    return CreditCode(
        code=code,
        registration_authority=code[0],
        category=code[1],
        division_code=division_code,
        organisation_code=organisation_code,
    )
