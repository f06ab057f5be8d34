"""Member names are relative POSIX paths that can't escape a folder."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycoffer_core.errors import InvalidNameError
from pycoffer_core.names import MAX_COMPONENT_BYTES, MAX_NAME_BYTES, canonical_from_utf8, normalize


@pytest.mark.parametrize(
    "raw, expected",
    [("a", "a"), ("/a/b", "a/b"), ("//a//b/", "a/b"), ("./a/./b", "a/b"), ("é/ü", "é/ü")],
)
def test_names_are_normalized(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["..", "a/../b", "../../etc/passwd", "a\x00", "a\\..\\b", "", "/", ".", "\udcff",
     "x" * (MAX_COMPONENT_BYTES + 1), "a/" * (MAX_NAME_BYTES // 2 + 1)],
)
def test_bad_names_raise_invalid_name_error(raw):
    with pytest.raises(InvalidNameError):
        normalize(raw)


@pytest.mark.parametrize("raw", [b"a", None, 3, ["a"]])
def test_names_must_be_strings(raw):
    with pytest.raises(TypeError):
        normalize(raw)


def _normalizes_to_itself(name: str) -> bool:
    try:
        return normalize(name) == name
    except InvalidNameError:
        return False


_NAME_PIECES = st.sampled_from(["a", "é", "/", ".", "..", "", "\x00", "\\", "x" * 200, "\udcff"])


@given(st.one_of(st.text(max_size=40), st.lists(_NAME_PIECES, max_size=30).map("".join)))
def test_an_index_accepts_exactly_the_names_the_writer_stores(name):
    """Opening checks index names at the byte level: the same verdict as normalize()."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return  # no UTF-8 for it: an index can't hold it
    expected = name if _normalizes_to_itself(name) else None
    assert canonical_from_utf8(raw) == expected


@pytest.mark.parametrize("raw", [b"\xff", b"a/\xc3", b"\xed\xb3\xbf"])
def test_an_index_name_that_is_not_utf8_is_refused(raw):
    assert canonical_from_utf8(raw) is None


def test_an_index_handed_back_as_any_buffer_decodes_the_same():
    """A container layer may return a memoryview or bytearray from open()."""
    from pycoffer_core.container.index import OP_PUT, CommitHeader, MemberEntry, Op, decode_commit, encode_commit

    body = encode_commit(CommitHeader(1, 0, 0, 0, 0), [Op(OP_PUT, "a/b", MemberEntry("a/b", bytes(16), 0, 0))])
    expected = decode_commit(body)
    assert decode_commit(memoryview(body)) == decode_commit(bytearray(body)) == expected
