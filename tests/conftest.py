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
