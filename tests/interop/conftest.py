"""Fixtures of the interop tests; they live in ``peers.py`` so test modules can import
its helpers by a name that is not ambiguous (``conftest`` is, with tests/conftest.py)."""

from peers import dcmtk, loopback, storage_scp, study  # noqa: F401 - fixtures
