"""Write the frozen test vector of the ``bank``: bank-v1.coffer and bank-v1.json.

    python make_vectors.py            # refuses to replace existing vectors
    python make_vectors.py --force    # only when the format version changes

See :mod:`pycoffer_core.vectors` for what the vector holds.
"""

import sys
from pathlib import Path

from pycoffer_core.vectors import main

if __name__ == "__main__":
    sys.exit(main(["bank", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
