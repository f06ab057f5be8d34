"""The core and the pure-Python aes type work where cryptography and PyNaCl can't be installed."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("cryptography", "nacl"):
                raise ImportError(f"{name} is not installed here")

    sys.meta_path.insert(0, Block())
    os.environ["PYCOFFER_AES_BACKEND"] = "pyaes"
    import pycoffer_core.cli  # the command line imports too
    from pycoffer_core import Coffer, CofferError
    from pycoffer_core.errors import MissingDependencyError

    path = sys.argv[1]
    keys = Coffer.gen_params("aes")
    with Coffer.open(path, "w", type="aes", **keys) as coffer:
        coffer.write("note.txt", b"no compiled crypto here")
    with Coffer.open(path, "r", type="aes", **keys) as coffer:
        assert coffer.read("note.txt") == b"no compiled crypto here"
        coffer.verify()
    try:
        Coffer.open(path + "-2", "w", type="aes", password="pw")
    except MissingDependencyError as exc:
        assert "pycoffer-core[crypto]" in str(exc), exc
        assert isinstance(exc, CofferError) and isinstance(exc, ImportError)
    else:
        raise AssertionError("a passphrase worked without cryptography")
    assert not any(m.split(".")[0] in ("cryptography", "nacl") for m in sys.modules)
    print("ok")
    """
)


def test_the_aes_type_works_without_cryptography_or_pynacl(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "pure.coffer")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
