"""Hypothesis budget for the tracking tests: modest, so the folder stays well under four minutes."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "tracking",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=int(os.environ.get("CUSTODIAN_TRACKING_EXAMPLES", "40")),
)
settings.load_profile("tracking")


def pytest_configure(config: object) -> None:
    # with NUMBA_DISABLE_JIT=1 (coverage runs) the EPC hash's intended uint64 wrap-around warns
    config.addinivalue_line(  # type: ignore[attr-defined]
        "filterwarnings", "ignore:overflow encountered in scalar multiply:RuntimeWarning"
    )
