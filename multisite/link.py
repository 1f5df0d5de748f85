"""A NATS connection owned by a loop thread: the threaded callers' handle on the async client."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from multisite.loop import LoopThread

T = TypeVar("T")
log = logging.getLogger(__name__)


class Link:
    """One client connection (reconnecting forever) on its own loop thread. An edge's links pass their site's
    `inbox_prefix` (`envelope.site_inbox`): through the leaf link the hub delivers no other replies."""

    def __init__(self, url: str, name: str, *, inbox_prefix: str = "_INBOX", connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.loop = LoopThread(f"nats-{name}")
        try:
            self.nc: Client = self.loop.run(_connect(url, name, inbox_prefix, connect_timeout_s), connect_timeout_s + 5)
        except BaseException:
            self.loop.close()
            raise

    def js(self, domain: str | None = None) -> JetStreamContext:
        """JetStream of the server's own domain (None), or of another domain across the leaf link."""
        return self.nc.jetstream(domain=domain, timeout=5)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = 60.0) -> T:
        return self.loop.run(coro, timeout_s)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def close(self) -> None:
        try:
            if not self.nc.is_closed:
                self.loop.run(self.nc.close(), 10)
        except Exception as exc:  # closing a connection whose server is gone
            log.debug("closing %s: %s", self.name, exc)
        finally:
            self.loop.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _connect(url: str, name: str, inbox_prefix: str, timeout_s: float) -> Client:
    async def quiet(exc: Exception) -> None:  # the default callback prints tracebacks on every reconnect
        log.debug("%s: %s", name, exc)

    return await nats.connect(
        url,
        name=name,
        inbox_prefix=inbox_prefix,
        connect_timeout=timeout_s,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        error_cb=quiet,
        pending_size=64 * 1024 * 1024,
    )
