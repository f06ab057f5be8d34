import sys
from pathlib import Path

import pytest

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
if str(CAMPAIGNS) not in sys.path:
    sys.path.insert(0, str(CAMPAIGNS))

import harness  # noqa: E402

ALL_TYPES = harness.all_types()
#: The types whose container layer authenticates (``test-aead`` does; not registered yet here).
SEALED_TYPES = [name for name in harness.installed_types() if harness.authenticates(name)] + [harness.AEAD]


@pytest.fixture(params=ALL_TYPES)
def type_name(request):
    """Each installed coffer type, then the in-test ``test-aead``."""
    if request.param == harness.AEAD:
        request.getfixturevalue("aead_type")  # registered for this test only
    return request.param


@pytest.fixture
def fast_kdf(monkeypatch):
    monkeypatch.setenv(harness.INSECURE_FAST_ENV, "1")


@pytest.fixture(params=SEALED_TYPES)
def sealed_type(request):
    """Each type whose container layer authenticates every byte it stores."""
    if request.param == harness.AEAD:
        request.getfixturevalue("aead_type")
    return request.param
