"""Guard station: the live feed (SSE, with history replay), alarm acknowledgement, override, door and device
states. Commands go to the running site through `SiteControl`; the API never opens a device."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import DBAPIError

from api import schemas
from api.deps import ContextDep, Guard, SiteWatcher
from controllers.bus import LiveBus, LiveEvent
from registry.services import lookup

router = APIRouter(tags=["guard station"])

KEEPALIVE_S = 15.0


def sse_frame(event: LiveEvent) -> str:
    return f"id: {event.seq}\nevent: {event.kind.value}\ndata: {json.dumps(event.to_json())}\n\n"


async def live_stream(bus: LiveBus, after_seq: int, request: Request) -> AsyncIterator[str]:
    # Subscribe before replaying, so nothing published during the replay is missed; duplicates are skipped.
    queue = bus.subscribe()
    try:
        last = after_seq
        yield "retry: 2000\n\n"
        for event in bus.history(after_seq):
            last = event.seq
            yield sse_frame(event)
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event.seq > last:
                last = event.seq
                yield sse_frame(event)
    finally:
        bus.unsubscribe(queue)


@router.get(
    "/api/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def live(request: Request, ctx: ContextDep, _user: SiteWatcher, after: int = 0) -> StreamingResponse:
    """Decisions, alarms, door states and device health as server-sent events; replays history after `after`
    (or the browser's Last-Event-ID on reconnect)."""
    bus = ctx.require_bus()
    last_id = request.headers.get("last-event-id", "")
    start = int(last_id) if last_id.isdigit() else max(after, 0)
    return StreamingResponse(
        live_stream(bus, start, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/api/guard/alarms/{alarm_id}/ack", status_code=status.HTTP_204_NO_CONTENT)
def acknowledge(alarm_id: schemas.RowId, ctx: ContextDep, user: Guard) -> None:
    control = ctx.require_control()
    try:
        control.acknowledge(alarm_id, user.username)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no open alarm {alarm_id}") from None


@router.post("/api/guard/portals/{portal}/override", status_code=status.HTTP_204_NO_CONTENT)
def override(portal: str, body: schemas.OverrideCreate, ctx: ContextDep, user: Guard) -> None:
    """Let a blocked exit through on the guard's own credentials and written reason (the controllers
    journal it and open an incident)."""
    control = ctx.require_control()
    try:
        with ctx.factory() as session:
            lookup.portal(session, portal)
    except DBAPIError:
        pass  # the register is down; the site control still knows its portals and decides alone
    try:
        control.override(portal, user.username, body.reason)
    except LookupError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"no blocked exit waiting at {portal}") from None


@router.get("/api/guard/doors")
def doors(ctx: ContextDep, _user: SiteWatcher) -> list[schemas.DoorPublic]:
    return [schemas.DoorPublic.model_validate(d, from_attributes=True) for d in ctx.require_control().doors()]


@router.get("/api/guard/devices")
def devices(ctx: ContextDep, _user: SiteWatcher) -> list[schemas.DevicePublicHealth]:
    return [schemas.DevicePublicHealth.model_validate(d, from_attributes=True) for d in ctx.require_control().devices()]
