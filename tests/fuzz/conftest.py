"""Hypothesis profiles of the fuzz tests.

``fuzz`` (the default) keeps the whole directory to about a minute on two cores; ``fuzz-long``
tries many more examples per target, for a long run (see README.md). ``BLIT_FUZZ_PROFILE=long``
selects the long one; the tests take the selected profile as ``fuzz-active`` (every fuzz test
is decorated with ``helpers.fuzz.fuzz_settings``), so nothing outside tests/fuzz changes."""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    max_examples=200,
    deadline=timedelta(seconds=5),  # one input taking this long is a failure: a near-hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("fuzz-long", settings.get_profile("fuzz"), max_examples=2_500)
settings.register_profile(
    "fuzz-active",
    settings.get_profile("fuzz-long" if os.environ.get("BLIT_FUZZ_PROFILE") == "long" else "fuzz"),
)
