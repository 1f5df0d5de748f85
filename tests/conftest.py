"""Suite-wide settings: hypothesis runs without deadlines (first calls JIT-compile Numba kernels)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("CUSTODIAN_HYPOTHESIS_EXAMPLES", "60")),
)
settings.load_profile("default")
