"""The two languages of the pages, zh-CN and en: message tables and the choice of language.

The tables are ``kernel/static/i18n/<lang>.json`` (flat ``key -> text``; ``{name}`` placeholders), shared by the
server-rendered templates and the pages' scripts, so every visible string lives in one place per language.
The language of a request is, in order: ``?lang=``, the ``imi_lang`` cookie (set by the language switch), the
best match in ``Accept-Language`` (RFC 9110 section 12.5.4, q-values; any ``zh`` tag reads Simplified Chinese,
any ``en`` tag English), and finally zh-CN, the language of the counters. Pure functions, no I/O but the
reading of the two table files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Final

LANGS: Final = ("zh-CN", "en")
DEFAULT_LANG: Final = "zh-CN"
LANG_COOKIE: Final = "imi_lang"
TABLE_DIR: Final = Path(__file__).parent / "static" / "i18n"


@cache
def messages(lang: str) -> Mapping[str, str]:
    """The message table of ``lang`` (one of ``LANGS``); read once per process."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}")
    table: dict[str, str] = json.loads((TABLE_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return table


def translate(lang: str, key: str, **values: object) -> str:
    """The text of ``key`` in ``lang`` with ``{name}`` placeholders filled; the key itself if it is missing
    (a test checks that no key used by a page is missing)."""
    text = messages(lang).get(key, key)
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def supported(tag: str | None) -> str | None:
    """Map a BCP 47 tag to a supported language, or ``None``."""
    if not tag:
        return None
    primary = tag.strip().split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def parse_accept_language(header: str) -> list[tuple[str, float]]:
    """``Accept-Language`` as ``(tag, q)`` pairs, best first; malformed parts are skipped."""
    ranked: list[tuple[int, str, float]] = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        if tag and 0 < q <= 1:
            ranked.append((position, tag.strip(), q))
    ranked.sort(key=lambda r: (-r[2], r[0]))
    return [(tag, q) for _, tag, q in ranked]


def negotiate(*, query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language of a page request (see the module docstring for the order)."""
    for explicit in (query, cookie):
        if explicit in LANGS:
            return explicit
    for tag, _q in parse_accept_language(accept_language or ""):
        if tag == "*":
            return DEFAULT_LANG
        lang = supported(tag)
        if lang:
            return lang
    return DEFAULT_LANG
