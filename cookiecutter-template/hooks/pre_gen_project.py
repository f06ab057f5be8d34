"""Refuse answers that would generate a broken distribution, before any file is written.

Cookiecutter renders this file with the answers, then runs it; a non-zero
exit stops the generation and leaves nothing behind.
"""

import keyword
import re
import sys

# Rendered as JSON strings, so any answer stays a valid Python literal.
TYPE_NAME = {{ cookiecutter.type_name | tojson }}
DISTRIBUTION = {{ cookiecutter.distribution_name | tojson }}
MODULE = {{ cookiecutter.__module_name | tojson }}
AUTHOR = {{ cookiecutter.author | tojson }}
DESCRIPTION = {{ cookiecutter.description | tojson }}

#: What a coffer type name may be: it is stored in every coffer header (ASCII)
#: and is the key of the entry point.
TYPE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}[a-z0-9]|[a-z]")
#: A valid distribution name (PEP 508).
DISTRIBUTION_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
#: The types and distributions of the PyCoffer project itself.
TAKEN_TYPES = {"bank": "pycoffer-bank", "store": "pycoffer-store", "market": "pycoffer-market",
               "null": "pycoffer-null", "aes": "pycoffer-aes"}
TAKEN_DISTRIBUTIONS = {"pycoffer", "pycoffer-core", *TAKEN_TYPES.values()}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def problems() -> list[str]:
    """Every reason the answers can't make a working distribution, as advice."""
    found = []
    if not TYPE_NAME_RE.fullmatch(TYPE_NAME):
        found.append(
            f"type_name {TYPE_NAME!r} is not a valid coffer type name: use 1 to 64 lower case "
            "letters, digits, '-' and '_', starting with a letter and ending with a letter "
            "or digit (for example 'acme-vault')"
        )
    elif TYPE_NAME in TAKEN_TYPES:
        found.append(
            f"type_name {TYPE_NAME!r} is already the type of {TAKEN_TYPES[TYPE_NAME]}; two "
            "installed plugins with one type name make that name unusable: pick another"
        )
    if not DISTRIBUTION_RE.fullmatch(DISTRIBUTION):
        found.append(
            f"distribution_name {DISTRIBUTION!r} is not a valid distribution name: use letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit "
            f"(the usual choice is 'pycoffer-{TYPE_NAME}')"
        )
    elif _canonical(DISTRIBUTION) in TAKEN_DISTRIBUTIONS:
        found.append(f"distribution_name {DISTRIBUTION!r} belongs to the PyCoffer project: pick another")
    elif not MODULE.isidentifier() or keyword.iskeyword(MODULE):
        found.append(
            f"distribution_name {DISTRIBUTION!r} gives the import name {MODULE!r}, which is "
            "not a Python identifier: start it with a letter"
        )
    elif MODULE in sys.stdlib_module_names:
        found.append(
            f"distribution_name {DISTRIBUTION!r} gives the import name {MODULE!r}, which "
            "would shadow the standard library module of that name: pick another"
        )
    for field, value in (("author", AUTHOR), ("description", DESCRIPTION)):
        if not value.strip():
            found.append(f"{field} must not be empty")
        elif not value.isprintable():
            found.append(f"{field} must be one line of printable text")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        print("Nothing was generated; run cookiecutter again with other answers.", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
