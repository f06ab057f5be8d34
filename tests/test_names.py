"""Member names are relative POSIX paths that can't escape a folder."""

import pytest

from pycoffer_core.errors import InvalidNameError
from pycoffer_core.names import MAX_COMPONENT_BYTES, MAX_NAME_BYTES, normalize


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
