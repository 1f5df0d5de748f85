"""Suite-wide settings: hypothesis runs without deadlines (first calls JIT-compile Numba kernels), and every
test of every folder runs under the leak guard (threads, asyncio tasks, open fds, listening ports)."""

import os

from hypothesis import HealthCheck, settings

from tests.leaks import no_leaks  # noqa: F401  (autouse fixture, for every test folder)

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("CUSTODIAN_HYPOTHESIS_EXAMPLES", "60")),
)
settings.load_profile("default")
