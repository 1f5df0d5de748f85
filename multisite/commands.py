"""Commands from the centre to the edge that owns a door: guard acknowledgements and resolutions (durable) and
overrides (live).

Acknowledgements and resolutions must not be lost: the centre puts them in its `COMMANDS` stream
(`cmd.<site>.<kind>`, message id = the command id); each leaf sources its own site's commands into `CMD_<site>`
in its domain; the edge applies them from there with a durable consumer, whenever it is reachable, and records
each outcome as a record in its site stream (`rec.<site>.command_result`), which the centre's stream sources like
any other record.

An override must never be queued to apply later (a door opening minutes after the guard gave up): it is a core
NATS request to `guard.<site>.override`, answered by the edge's responder on its leaf. While the leaf link is
down nobody answers at the hub (no responders: refused at once); an edge that answers too late has its answer
dropped and the guard was told it is not known to be applied (the edge's own book and records show what the
door did). The guard's password travels in the request and is checked at the edge against its local register, as
a local override is; it is never logged. The hub hands `guard.<site>.override` to that site's leaf only
(`servers.leaf_permissions`); the link itself needs TLS in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from controllers.control import (
    ControlError,
    NoFreshBlock,
    OverrideOutcome,
    OverrideRefused,
    PasswordRefused,
    RegisterUnavailable,
    SiteUnreachable,
    UnknownPortal,
)
from multisite.edge import EdgePublisher, ensure_site_stream
from multisite.envelope import KIND_RE, MSG_ID, RecordEnvelope, check_site, site_api, site_inbox
from multisite.link import Link
from multisite.register import now_us
from multisite.servers import CENTRE_DOMAIN, deliver_prefix
from multisite.sourcing import ORIGIN_ASK_S, ensure_copy

log = logging.getLogger(__name__)
COMMANDS = "COMMANDS"
RESULT_KIND = "command_result"
ISSUED_BY = "Custodian-Issued-By"
ISSUED_AT = "Custodian-Issued-At-Us"
ALARM_ACK = "alarm_ack"  # body: {"alarm_id": int, "note": str}
ALARM_RESOLVE = "alarm_resolve"  # body: {"alarm_id": int, "note": str}, the note saying what was done
RESOLVE_NOTE_MIN = 3  # characters of a resolution's note, as the site's own resolve asks
# The centre's first command to each site at start, taken by the edge with no effect: a JetStream source that
# has never delivered a message resumes only after the server's retry (~35 s, nats-server 2.15) when its link
# comes back, one that has delivered resumes at once; so an acknowledgement sent during a site's first cut is
# not held up. (A source made while the link is down waits the same way: `sourcing` makes it only once the centre
# answers.)
HELLO = "hello"
OVERRIDE_ANSWER_S = 8.0  # the centre's wait for the edge's answer (the edge's engine answers within 5 s)
# The refusals an edge's override may give, sent back by name and raised again at the centre.
OVERRIDE_ERRORS: dict[str, type[ControlError]] = {
    c.__name__: c for c in (UnknownPortal, NoFreshBlock, PasswordRefused, OverrideRefused, RegisterUnavailable)
}


@dataclass(frozen=True, slots=True)
class Command:
    """command_id: unique; kind: e.g. "alarm_ack"; issued_by: the guard at the centre."""

    command_id: str
    site: str
    kind: str
    issued_by: str
    issued_at_us: int
    body: bytes = b""

    def __post_init__(self) -> None:
        check_site(self.site)
        if not KIND_RE.match(self.kind) or "." in self.kind:
            raise ValueError(f"command kind {self.kind!r}: one lower-case token")

    @property
    def subject(self) -> str:
        return f"cmd.{self.site}.{self.kind}"

    def headers(self) -> dict[str, str]:
        return {
            MSG_ID: self.command_id,
            ISSUED_BY: self.issued_by,
            ISSUED_AT: str(self.issued_at_us),
        }

    @classmethod
    def from_message(cls, msg: Msg) -> Command:
        _, site, kind = msg.subject.split(".", 2)
        h = msg.headers or {}
        return cls(h[MSG_ID], site, kind, h[ISSUED_BY], int(h[ISSUED_AT]), bytes(msg.data))


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What the edge's handler did: applied or not, and why (shown to the guard)."""

    applied: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CommandResult:
    command_id: str
    site: str
    kind: str
    applied: bool
    detail: str
    at_us: int

    def envelope(self) -> RecordEnvelope:
        return RecordEnvelope(
            f"cmdres:{self.command_id}", self.site, RESULT_KIND, self.at_us, json.dumps(asdict(self)).encode()
        )

    @classmethod
    def from_envelope(cls, envelope: RecordEnvelope) -> CommandResult:
        return cls(**json.loads(envelope.body))


def command_stream(site: str) -> str:
    return f"CMD_{check_site(site)}"


# ---- centre ----
async def ensure_commands_stream(js: JetStreamContext) -> None:
    try:
        await js.stream_info(COMMANDS)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=COMMANDS,
                subjects=["cmd.*.*"],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=7 * 86_400.0,
                duplicate_window=3600.0,
            )
        )


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """A guard's override at a site's door, as `SiteControl.override` takes it."""

    portal: str
    username: str
    password: str
    reason: str
    alarm_id: int | None = None

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> OverrideRequest:
        return cls(**json.loads(data))


def override_subject(site: str) -> str:
    return f"guard.{check_site(site)}.override"


class CentreCommands:
    """The centre's command sender for threaded callers (the guard pages)."""

    def __init__(self, url: str, *, clock: Callable[[], int] = now_us) -> None:
        self.link = Link(url, "centre-commands")
        self._js = self.link.js()
        self._clock = clock
        try:
            self.link.run(ensure_commands_stream(self._js))
        except BaseException:
            self.link.close()
            raise

    def command(self, site: str, kind: str, issued_by: str, body: bytes = b"") -> Command:
        return Command(uuid.uuid4().hex, site, kind, issued_by, self._clock(), body)

    def send(self, command: Command) -> None:
        """Durably queued for the edge (returns once the centre's stream stored it)."""
        self.link.run(self._publish(command))

    def hello(self, site: str) -> None:
        """The first message of the site's commands (see HELLO); one per centre start and hour (dedup)."""
        self.send(Command(f"{HELLO}-{check_site(site)}-{self._clock() // 3_600_000_000}", site, HELLO, "centre",
                          self._clock()))

    async def _publish(self, command: Command) -> None:
        ack = await self._js.publish(command.subject, command.body, headers=command.headers(), stream=COMMANDS)
        if ack.duplicate:
            log.info("command %s was already queued", command.command_id)

    def override(self, site: str, request: OverrideRequest, *, timeout_s: float = OVERRIDE_ANSWER_S) -> OverrideOutcome:
        """The edge's decision on a live path, or SiteUnreachable (nothing was queued); the edge's refusals
        (PasswordRefused, NoFreshBlock, ...) are raised as they were there."""
        try:
            reply = self.link.run(self.link.nc.request(override_subject(site), request.encode(), timeout=timeout_s),
                                  timeout_s + 5)
        except NoRespondersError:
            raise SiteUnreachable(
                f"site {site} cannot be reached from the centre (its edge is cut off or down): the override was not "
                "sent and nothing is queued; the door stays shut. Call the site's guards."
            ) from None
        except (NatsTimeout, TimeoutError):
            raise SiteUnreachable(
                f"site {site} did not answer within {timeout_s:g} s: the override is not known to be applied (the "
                "site's own alarm book shows what its door did); nothing is queued."
            ) from None
        answer = json.loads(reply.data)
        if answer.get("error"):
            error = OVERRIDE_ERRORS.get(answer["error"], OverrideRefused)
            if issubclass(error, OverrideRefused):
                raise error(answer["message"], answer.get("reason", ""))
            raise error(answer["message"])
        fields = answer["outcome"]
        return OverrideOutcome(**{**fields, "items": tuple(fields["items"]), "overridden": tuple(fields["overridden"])})

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> CentreCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- edge ----
async def ensure_edge_commands(nc: Client, site: str, centre_domain: str = CENTRE_DOMAIN) -> bool:
    """The site's commands sourced from the centre into the local domain, and the edge's durable consumer, once
    the centre's stream answers (see `sourcing`); False while it does not (ask again later)."""
    stream = command_stream(site)
    js = nc.jetstream(timeout=5)
    config = api.StreamConfig(
        name=stream,
        sources=[
            api.StreamSource(
                name=COMMANDS,
                filter_subject=f"cmd.{site}.*",
                external=api.ExternalStream(api=site_api(centre_domain), deliver=deliver_prefix(site)),
            )
        ],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=7 * 86_400.0,
    )

    async def consumer() -> None:
        try:
            await js.consumer_info(stream, "edge")
        except NotFoundError:
            await js.add_consumer(
                stream, api.ConsumerConfig(durable_name="edge", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30.0)
            )

    return await ensure_copy(js, nc.jetstream(domain=centre_domain, timeout=ORIGIN_ASK_S), COMMANDS, config,
                             consumer)


Handler = Callable[[Command, bool], CommandOutcome]


class EdgeCommands:
    """Applies the site's commands with `handler(command, redelivered)` (called on a worker thread) and records
    each outcome in the site stream before acknowledging the command. `redelivered` is true when an earlier
    attempt may have applied it (a crash before the ack); a handler must then be idempotent or refuse it."""

    def __init__(
        self, url: str, site: str, handler: Handler, *, centre_domain: str = CENTRE_DOMAIN,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.site = check_site(site)
        self.link = Link(url, f"edge-commands-{site}", inbox_prefix=site_inbox(site))
        self._handler = handler
        self._clock = clock
        self._publisher = EdgePublisher(self.link.nc, site)
        self._centre_domain = centre_domain
        try:
            self.link.run(ensure_site_stream(self.link.js(), site))
        except BaseException:
            self.link.close()
            raise
        self.applied = 0
        self.hellos = 0
        self._running = self.link.loop.spawn(self._run())

    async def _run(self) -> None:
        """Commands are taken once the centre answered: a site that never reached it has no command stream yet."""
        while True:
            try:
                if await ensure_edge_commands(self.link.nc, self.site, self._centre_domain):
                    break
            except Exception as exc:  # the leaf restarting
                if self.link.nc.is_closed:
                    return
                log.warning("edge commands at %s not set up yet: %s", self.site, exc)
            await asyncio.sleep(0.5)
        self._sub = await self.link.js().pull_subscribe_bind("edge", command_stream(self.site))
        while True:
            try:
                msgs = await self._sub.fetch(10, timeout=1.0)
            except TimeoutError:
                continue
            except Exception as exc:  # the leaf restarting
                if self.link.nc.is_closed:
                    return
                log.warning("edge commands at %s: %s", self.site, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        command = Command.from_message(msg)
        if command.kind == HELLO:  # no effect, nothing to record
            await msg.ack_sync()
            self.hellos += 1
            return
        now = self._clock()
        try:
            outcome = await asyncio.to_thread(self._handler, command, msg.metadata.num_delivered > 1)
        except Exception as exc:
            outcome = CommandOutcome(False, f"handler failed: {type(exc).__name__}: {exc}")
        result = CommandResult(command.command_id, self.site, command.kind, outcome.applied, outcome.detail, now)
        (published,) = await self._publisher.publish([result.envelope()])
        if not published.accepted:  # the outcome is not recorded: let the command come back
            log.error("result of command %s not recorded (%s): redelivering", command.command_id, published.error)
            await msg.nak(delay=1.0)
            return
        await msg.ack_sync()
        self.applied += 1

    def pending(self) -> int:
        """Commands at the edge not yet taken and acknowledged (tests, diagnostics); -1 before the stream is made."""
        try:
            info = self.link.run(self.link.js().consumer_info(command_stream(self.site), "edge"), 10)
        except NotFoundError:
            return -1
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def close(self) -> None:
        self._running.cancel()
        self.link.close()

    def __enter__(self) -> EdgeCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


OverrideHandler = Callable[[OverrideRequest], OverrideOutcome]


class EdgeOverrides:
    """The edge's responder to overrides from the centre: `handler` (the site's own `override`, password check
    included) runs on a worker thread; its outcome or refusal is the reply."""

    def __init__(self, url: str, site: str, handler: OverrideHandler) -> None:
        self.site = check_site(site)
        self._handler = handler
        self.link = Link(url, f"edge-overrides-{site}", inbox_prefix=site_inbox(site))
        try:
            self._sub = self.link.run(self.link.nc.subscribe(override_subject(site), cb=self._answer))
            self.link.run(self.link.nc.flush())
        except BaseException:
            self.link.close()
            raise

    async def _answer(self, msg: Msg) -> None:
        try:
            request = OverrideRequest.decode(msg.data)
        except (ValueError, TypeError) as exc:
            answer: dict[str, object] = {"error": "OverrideRefused", "message": f"unreadable request: {exc}"}
            await msg.respond(json.dumps(answer).encode())
            return
        try:
            outcome = await asyncio.to_thread(self._handler, request)
            answer = {"outcome": asdict(outcome)}
        except ControlError as exc:
            answer = {"error": type(exc).__name__, "message": str(exc), "reason": getattr(exc, "reason", "")}
        except Exception as exc:  # fail closed: the door stays shut, the guard is told why
            log.exception("override at %s failed", self.site)
            why = f"the site could not take the override ({type(exc).__name__}); the door stays shut"
            answer = {"error": "OverrideRefused", "message": why}
        await msg.respond(json.dumps(answer).encode())

    def close(self) -> None:
        self.link.close()
