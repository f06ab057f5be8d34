import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from aead_type import AeadPlugin  # noqa: E402

from pycoffer_core.plugins import registered  # noqa: E402


@pytest.fixture
def aead_type():
    """Registers the in-test AES-GCM type ``test-aead`` for one test."""
    with registered(AeadPlugin()):
        yield "test-aead"
