"""Reliability tests: crashes, I/O faults, tampering, model-based, fuzzing,
concurrency, hostile input, plaintext at rest (see ``docs/reliability.md``).

Each is a bounded version of a long campaign in ``campaigns/``.
"""
