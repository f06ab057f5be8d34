"""``python -m pycoffer_core.cli`` runs the ``pycoffer`` command."""

from .main import main

main()
