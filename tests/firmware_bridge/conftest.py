"""Every firmware_bridge test runs under the leak guard: threads, asyncio tasks, open fds, listening ports."""

from tests.leaks import no_leaks  # noqa: F401  (autouse fixture)
