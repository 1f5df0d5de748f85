"""The live bus as server-sent events, for every page that follows it (the guard console, the destruction
centre): history replayed after the browser's Last-Event-ID (or `after`), then events as they come, with a
keep-alive comment while nothing does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

from controllers.bus import LiveBus, LiveEvent

KEEPALIVE_S = 15.0
# The OpenAPI description of a route that answers with `stream`.
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}


def stream(
    request: Request,
    bus: LiveBus,
    after: int,
    *,
    shown: Callable[[LiveEvent], bool] = lambda _event: True,
    name: Callable[[LiveEvent], str] = lambda event: event.kind.value,
) -> StreamingResponse:
    """The bus's events that are `shown`, each as an SSE event called `name(event)`."""
    last_id = request.headers.get("last-event-id", "")
    start = int(last_id) if last_id.isdigit() else max(after, 0)
    return StreamingResponse(
        _events(bus, start, request, shown, name),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    bus: LiveBus, after_seq: int, request: Request, shown: Callable[[LiveEvent], bool], name: Callable[[LiveEvent], str]
) -> AsyncIterator[str]:
    # Subscribe before replaying, so nothing published during the replay is missed; duplicates are skipped.
    queue = bus.subscribe()
    try:
        last = after_seq
        yield "retry: 2000\n\n"
        for event in bus.history(after_seq):
            last = event.seq
            if shown(event):
                yield _frame(event, name(event))
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event.seq > last:
                last = event.seq
                if shown(event):
                    yield _frame(event, name(event))
    finally:
        bus.unsubscribe(queue)


def _frame(event: LiveEvent, name: str) -> str:
    return f"id: {event.seq}\nevent: {name}\ndata: {json.dumps(event.to_json())}\n\n"
