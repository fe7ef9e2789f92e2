"""Property tests of the C2SP tile-path parser (``ledger.tiles.parse_tile_path``), the one parser of untrusted
input that had none (SD-JWT, JWS, QR payload and DID parsers are fuzzed in tests/kernel and tests/verifier).

Properties: every tile id round-trips through its path; any input is a tile id or ``MalformedInput`` (never
another exception, which the API would turn into a 500); an accepted path is the canonical spelling of its tile
(no aliases: full tiles are served ``immutable``, so two URLs for one tile are two cache entries to poison).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kernel.errors import MalformedInput
from ledger.tiles import MAX_INDEX, MAX_LEVEL, TILE_WIDTH, TileID, encode_index, parse_tile_path
from tests.system.cluster import FULL

EXAMPLES = 2000 if FULL else 300

tile_ids = st.builds(
    TileID,
    st.integers(min_value=-1, max_value=MAX_LEVEL),
    st.integers(min_value=0, max_value=MAX_INDEX),
    st.integers(min_value=1, max_value=TILE_WIDTH),
)
ascii_paths = st.text(alphabet="0123456789x/.p-ae", max_size=48)
any_text = st.text(max_size=48)


def _split(tid: TileID) -> tuple[str, str]:
    _, level, rest = tid.path().split("/", 2)
    return level, rest


def _parse_or_refuse(level: str, rest: str) -> TileID | None:
    try:
        return parse_tile_path(level, rest)
    except MalformedInput:
        return None


@settings(max_examples=EXAMPLES, deadline=None)
@given(tile_ids)
@example(TileID(0, 0))
@example(TileID(-1, MAX_INDEX, 255))
@example(TileID(MAX_LEVEL, 1000, 1))
def test_every_tile_id_round_trips_through_its_path(tid: TileID) -> None:
    assert parse_tile_path(*_split(tid)) == tid


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(["0", "1", "63", "entries", "64", "00", "-1", ""]) | ascii_paths, ascii_paths)
def test_ascii_input_is_a_tile_or_malformed_and_canonical(level: str, rest: str) -> None:
    tid = _parse_or_refuse(level, rest)
    if tid is not None:
        assert tid.path() == f"tile/{level}/{rest}"  # accepted means: the one spelling of that tile
        assert 0 <= tid.index <= MAX_INDEX


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=0, max_value=10**25))
def test_index_encoding_is_groups_of_three_digits(n: int) -> None:
    text = encode_index(n)
    groups = text.split("/")
    assert all(len(g) == 4 and g[0] == "x" for g in groups[:-1])
    assert len(groups[-1]) == 3
    if n <= MAX_INDEX:
        assert parse_tile_path("0", text).index == n
    else:
        with pytest.raises(MalformedInput):
            parse_tile_path("0", text)


# FINDING tile-unicode-digit (fixed): str.isdigit() accepted '²' and '①' that int() refuses
@settings(max_examples=EXAMPLES, deadline=None)
@given(any_text, any_text)
@example("²", "000")
def test_any_text_is_a_tile_or_malformed(level: str, rest: str) -> None:
    _parse_or_refuse(level, rest)
    _parse_or_refuse("0", rest)
    _parse_or_refuse("0", "000.p/" + level)


# FINDING tile-unicode-digit (fixed): re '\\d' matched Arabic-Indic digits, so tile/0/٠٠١ aliased tile/0/001
@settings(max_examples=EXAMPLES, deadline=None)
@given(any_text)
@example("٠٠١")
def test_accepted_unicode_paths_are_canonical(rest: str) -> None:
    tid = _parse_or_refuse("0", rest)
    if tid is not None:
        assert tid.path() == f"tile/0/{rest}"
