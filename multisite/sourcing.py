"""Streams that copy a stream of another domain across the leaf link (a mirror or a source) are made only once
that stream answers across the link.

Why: to start a copy, nats-server (2.15) sends the origin a request to create its sourcing consumer and waits
30 s for the answer (`srcConsumerWaitTime`), then retries after a backoff. Made while the link is down, the
request is lost and the copy stays idle for the rest of that wait after the link heals: measured 35 s after
the first heal of a never-linked leaf, against about 1 s for a copy made after the heal (a copy that has
delivered resumes within about a second; see `commands.HELLO`). So a copy is made when its origin answers, and
one made earlier that is still empty (it never delivered: nothing to lose) is made again then.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)
ORIGIN_ASK_S = 2.0  # how long to wait for the origin's answer before trying again later


async def ensure_copy(
    local: JetStreamContext,
    origin: JetStreamContext,
    origin_stream: str,
    config: api.StreamConfig,
    then: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Make the copying stream `config` (and `then`, e.g. its consumer) unless it holds messages already; False
    while the origin does not answer (the caller asks again later; nothing was made)."""
    try:
        info = await local.stream_info(config.name)  # type: ignore[arg-type]
    except NotFoundError:
        info = None
    if info is None or info.state.last_seq == 0:
        try:
            await origin.stream_info(origin_stream)
        except Exception as exc:  # cut off, the origin's server restarting, or its stream not made yet
            log.debug("%s waits for %s to answer: %s", config.name, origin_stream, exc)
            return False
        if info is not None:
            await local.delete_stream(config.name)  # type: ignore[arg-type]
            log.info("%s never delivered: made again now that %s answers", config.name, origin_stream)
        await local.add_stream(config)
    if then is not None:
        await then()
    return True
