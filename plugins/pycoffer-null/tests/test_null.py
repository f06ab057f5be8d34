"""The null type passes the conformance suite and stores data in the clear."""

from pycoffer_core import Coffer
from pycoffer_core.testing import CofferConformance


class TestNullConformance(CofferConformance):
    type_name = "null"


def test_null_takes_no_keys():
    assert Coffer.gen_params("null") == {}


def test_null_compresses_but_does_not_encrypt(tmp_path):
    path = tmp_path / "plain.coffer"
    text = b"a very compressible line of public text\n" * 2000
    with Coffer.open(path, "w", type="null") as coffer:
        coffer.write("doc.txt", text)
    assert path.stat().st_size < len(text) / 10
    with Coffer.open(path, "r", type="null") as coffer:
        assert coffer.read("doc.txt") == text
