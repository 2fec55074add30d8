"""Shared pytest configuration: Hypothesis profiles.

Select one with ``HYPOTHESIS_PROFILE=ci pytest``; the default keeps local runs quick.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# No deadline: timings on a shared 2-core CI box are noisy, and the properties
# here are about correctness, not speed.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "ci",
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# --------------------------------------------------------------------------- TLS

import pytest  # noqa: E402 - the TLS fixtures were added after the profiles


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A fresh throwaway PKI for this test session (tests/tls_pki.py): no key is committed."""
    from tls_pki import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))
