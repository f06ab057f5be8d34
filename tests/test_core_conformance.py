"""The core's encrypted behaviour, through an in-test AES-GCM type."""

from pathlib import Path

import pytest

from pycoffer_core.testing import EncryptedCofferConformance


@pytest.fixture(autouse=True)
def _registered(aead_type):
    yield


class TestAeadConformance(EncryptedCofferConformance):
    type_name = "test-aead"
    child_setup = f"""
sys.path.insert(0, {str(Path(__file__).parent)!r})
from aead_type import AeadPlugin
from pycoffer_core.plugins import get_plugin_manager
get_plugin_manager().register(AeadPlugin())
"""
