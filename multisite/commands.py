"""Commands from the centre to the edge that owns a door: guard acknowledgements, overrides.

Both directions are JetStream, never core request/reply across the leaf link (core messages are lost while
the link is down). The centre puts a command in its `COMMANDS` stream (`cmd.<site>.<kind>`, message id = the
command id); each leaf sources its own site's commands into `CMD_<site>` in its domain; the edge applies them
from there with a durable consumer and records the outcome as a record in its site stream
(`rec.<site>.command_result`), which the centre's stream sources like any other record.

An acknowledgement must not be lost: `send` returns once the centre's stream has it, and the edge applies it
whenever it is reachable. An override needs a live path: `request` waits for the edge's result and fails with
`EdgeUnreachable` after its timeout; the command carries a deadline (the same timeout), and an edge that gets
it later refuses it and records that, so an override never opens a door minutes after the guard gave up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from multisite.centre import source_states
from multisite.edge import EdgePublisher, ensure_site_stream
from multisite.envelope import CENTRE_STREAM, KIND_RE, MSG_ID, RecordEnvelope, check_site, record_subject, site_api
from multisite.link import Link
from multisite.register import now_us
from multisite.servers import CENTRE_DOMAIN

log = logging.getLogger(__name__)
COMMANDS = "COMMANDS"
RESULT_KIND = "command_result"
ISSUED_BY = "Custodian-Issued-By"
ISSUED_AT = "Custodian-Issued-At-Us"
EXPIRES_AT = "Custodian-Expires-At-Us"


class EdgeUnreachable(RuntimeError):
    """The edge did not confirm a command in time: nothing is known to have happened at the door."""


@dataclass(frozen=True, slots=True)
class Command:
    """command_id: unique; kind: e.g. "override", "alarm_ack"; expires_at_us: 0 for none (an acknowledgement),
    else the edge refuses it after then (centre clock; keep site clocks in NTP sync)."""

    command_id: str
    site: str
    kind: str
    issued_by: str
    issued_at_us: int
    expires_at_us: int = 0
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
            EXPIRES_AT: str(self.expires_at_us),
        }

    @classmethod
    def from_message(cls, msg: Msg) -> Command:
        _, site, kind = msg.subject.split(".", 2)
        h = msg.headers or {}
        return cls(h[MSG_ID], site, kind, h[ISSUED_BY], int(h[ISSUED_AT]), int(h[EXPIRES_AT]), bytes(msg.data))


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

    def command(self, site: str, kind: str, issued_by: str, body: bytes = b"", expires_in_s: float = 0) -> Command:
        at = self._clock()
        expires = at + int(expires_in_s * 1e6) if expires_in_s else 0
        return Command(uuid.uuid4().hex, site, kind, issued_by, at, expires, body)

    def send(self, command: Command) -> None:
        """Durably queued for the edge (returns once the centre's stream stored it)."""
        self.link.run(self._publish(command))

    async def _publish(self, command: Command) -> None:
        ack = await self._js.publish(command.subject, command.body, headers=command.headers(), stream=COMMANDS)
        if ack.duplicate:
            log.info("command %s was already queued", command.command_id)

    def request(
        self, site: str, kind: str, issued_by: str, body: bytes = b"", *, timeout_s: float = 5.0
    ) -> CommandResult:
        """Send a command that expires after `timeout_s` and wait for the edge's result.
        Raises EdgeUnreachable when none came in time (the edge will refuse it if it arrives later)."""
        command = self.command(site, kind, issued_by, body, expires_in_s=timeout_s)
        return self.link.run(self._request(command, timeout_s), timeout_s + 15)

    async def _request(self, command: Command, timeout_s: float) -> CommandResult:
        # Subscribe to the site's results before sending, so a fast answer cannot be missed.
        sub = await self._js.subscribe(
            record_subject(command.site, RESULT_KIND),
            stream=CENTRE_STREAM,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.NEW,
        )
        try:
            await self._publish(command)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    msg = await sub.next_msg(timeout=left)
                except TimeoutError:
                    break
                result = CommandResult.from_envelope(RecordEnvelope.from_message(msg.subject, msg.headers, msg.data))
                if result.command_id == command.command_id:
                    return result
        finally:
            await sub.unsubscribe()
        raise EdgeUnreachable(await self._unreachable(command, timeout_s))

    async def _unreachable(self, command: Command, timeout_s: float) -> str:
        heard = ""
        try:
            for state in await source_states(self.link.nc):
                if state.site == command.site:
                    heard = f"; last heard from the site {state.active_s:.1f} s ago" if state.active_s else ""
        except Exception:  # the explanation is a courtesy; the error stands without it
            pass
        return (
            f"{command.kind} for site {command.site} not confirmed by the edge within {timeout_s:g} s{heard}: "
            f"not known to be applied, and the edge will refuse it after its deadline"
        )

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> CentreCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- edge ----
async def ensure_edge_commands(js: JetStreamContext, site: str, centre_domain: str = CENTRE_DOMAIN) -> None:
    """The site's commands sourced from the centre into the local domain, and the edge's durable consumer."""
    stream = command_stream(site)
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=stream,
                sources=[
                    api.StreamSource(
                        name=COMMANDS,
                        filter_subject=f"cmd.{site}.*",
                        external=api.ExternalStream(api=site_api(centre_domain)),
                    )
                ],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=7 * 86_400.0,
            )
        )
    try:
        await js.consumer_info(stream, "edge")
    except NotFoundError:
        await js.add_consumer(
            stream, api.ConsumerConfig(durable_name="edge", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30.0)
        )


Handler = Callable[[Command, bool], CommandOutcome]


class EdgeCommands:
    """Applies the site's commands with `handler(command, redelivered)` (called on a worker thread) and records
    each outcome in the site stream before acknowledging the command. `redelivered` is true when an earlier
    attempt may have applied it (a crash before the ack): an override handler should then refuse it (fail
    closed); an acknowledgement can simply be applied again."""

    def __init__(self, url: str, site: str, handler: Handler, *, clock: Callable[[], int] = now_us) -> None:
        self.site = check_site(site)
        self.link = Link(url, f"edge-commands-{site}")
        self._handler = handler
        self._clock = clock
        self._publisher = EdgePublisher(self.link.nc, site)
        js = self.link.js()
        try:
            self.link.run(ensure_site_stream(js, site))
            self.link.run(ensure_edge_commands(js, site))
            self._sub = self.link.run(js.pull_subscribe_bind("edge", command_stream(site)))
        except BaseException:
            self.link.close()
            raise
        self.applied = 0
        self._running = self.link.loop.spawn(self._run())

    async def _run(self) -> None:
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
        now = self._clock()
        if command.expires_at_us and now > command.expires_at_us:
            late = (now - command.expires_at_us) / 1e6
            outcome = CommandOutcome(False, f"reached the edge {late:.1f} s after its deadline: not applied")
        else:
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

    def close(self) -> None:
        self._running.cancel()
        self.link.close()

    def __enter__(self) -> EdgeCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
