"""The {{ cookiecutter.type_name }} type passes PyCoffer's conformance suite, and keeps its own promises.

The suite (``pycoffer_core.testing``) checks what every encrypted type must
do: round trips, crash safety, locking, secrecy of names and content,
detection of tampering, wrong keys and passphrases. Keep it passing when
you change the transforms; change the tests below when you change the keys.
"""

from __future__ import annotations

import os
import re

import pytest

from pycoffer_core import Coffer, InvalidArgumentError
from pycoffer_core.testing import EncryptedCofferConformance

TYPE = "{{ cookiecutter.type_name }}"
KEY = "{{ cookiecutter.__key_param }}"


class TestConformance(EncryptedCofferConformance):
    type_name = TYPE


def test_the_type_is_found_through_its_entry_point():
    (info,) = [info for info in Coffer.types() if info.name == TYPE]
    assert re.sub(r"[-_.]+", "-", info.distribution).lower() == "{{ cookiecutter.distribution_name|lower|replace('_', '-')|replace('.', '-') }}"


def test_gen_params_returns_a_fresh_32_byte_key():
    first, second = Coffer.gen_params(TYPE), Coffer.gen_params(TYPE)
    assert set(first) == {KEY}
    assert len(first[KEY]) == 32
    assert first[KEY] != second[KEY]


@pytest.mark.parametrize("value", [os.urandom(31), os.urandom(33), "x" * 32, 12345, None])
def test_a_missing_or_wrong_key_raises_invalid_argument_naming_it(tmp_path, value):
    with pytest.raises(InvalidArgumentError, match=KEY) as caught:
        Coffer.open(tmp_path / "x.coffer", "w", type=TYPE, **{KEY: value})
    assert isinstance(caught.value, ValueError)
    assert not (tmp_path / "x.coffer").exists()
