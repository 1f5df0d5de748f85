"""The typed messages that cross the edge/centre boundary, and the names they travel under.

A record is what the recorder accepted at a site (a decision, a movement, an alarm, a health report): its
id is unique across all sites and nodes (the recorder makes it: site, node, sequence). Records travel in
batches (`RecordBatch`, up to `BATCH_RECORDS` per JetStream message) whose message id is a digest of their
record ids, so the stream drops a republished batch inside its duplicate window; the centre's register drops a
record it holds (unique record id) whatever batch it came in.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

SITE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # a site is a JetStream domain and part of stream names
KIND_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")  # subject tokens
RECORD_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # a header value: printable ASCII, no spaces

MSG_ID = "Nats-Msg-Id"
AT_US = "Custodian-At-Us"
BATCH = "Custodian-Batch"  # header of a message carrying several records: how many
BATCH_TOKEN = "BATCH"  # the subject's last token for a batch (upper case: never a kind)
BATCH_RECORDS = 100  # at most this many records per message...
BATCH_BYTES = 256 * 1024  # ...and about this many bytes (a bigger record travels alone; the server's limit is 1 MB)
CENTRE_STREAM = "CENTRE"
RECORDS_PREFIX = "rec"


class EnvelopeError(ValueError):
    """A record, site or kind that cannot travel: names the field and why."""


def check_site(site: str) -> str:
    if not SITE_RE.match(site):
        raise EnvelopeError(f"site {site!r}: lower-case letters, digits, '-' or '_', at most 32, no dots")
    return site


def site_stream(site: str) -> str:
    """The stream holding a site's records, in the site's own JetStream domain."""
    return f"SITE_{check_site(site)}"


def register_bucket(site: str) -> str:
    """The centre's KV bucket of a site's register (its head, its changes, the `all` changes, the beat): one per site,
    so the hub can let each site's leaf read only its own (the edge mirrors it under the same name)."""
    return f"register_{check_site(site)}"


def snapshot_bucket(site: str) -> str:
    """The centre's Object Store bucket of a site's compiled snapshots (its people's password hashes): one per site,
    since chunk subjects are not named by site."""
    return f"register_snapshots_{check_site(site)}"


def record_subject(site: str, kind: str) -> str:
    return f"{RECORDS_PREFIX}.{site}.{kind}"


def site_inbox(site: str) -> str:
    """The reply-subject prefix of a site's clients (nats-py's `inbox_prefix`): the hub hands a site's leaf only the
    replies to that site's own requests, never the shared `_INBOX.>` (other sites' replies, the centre's deliveries)."""
    return f"_INBOX_{check_site(site)}"


def site_api(domain: str) -> str:
    """The JetStream API prefix of a domain, as seen from another domain across the leaf link."""
    return f"$JS.{domain}.API"


@dataclass(frozen=True, slots=True)
class RecordEnvelope:
    """One accepted record. record_id: unique across sites and nodes; site: where it was accepted; kind:
    what it is (dotted lower-case, e.g. "decision", "alarm.forced"); at_us: when, microseconds since the
    epoch on the site clock; body: the record itself, opaque here (the recorder's encoding)."""

    record_id: str
    site: str
    kind: str
    at_us: int
    body: bytes

    def __post_init__(self) -> None:
        if not RECORD_ID_RE.match(self.record_id):
            raise EnvelopeError(f"record_id {self.record_id!r}: 1..200 printable ASCII characters, no spaces")
        check_site(self.site)
        if not KIND_RE.match(self.kind):
            raise EnvelopeError(f"kind {self.kind!r}: dotted lower-case tokens (letters, digits, '_')")
        if not isinstance(self.body, bytes):
            raise EnvelopeError(f"body of {self.record_id}: bytes, not {type(self.body).__name__}")

    @property
    def subject(self) -> str:
        return record_subject(self.site, self.kind)

    def headers(self) -> dict[str, str]:
        return {MSG_ID: self.record_id, AT_US: str(self.at_us)}

    @classmethod
    def from_message(cls, subject: str, headers: dict[str, str] | None, data: bytes) -> RecordEnvelope:
        """Rebuild an envelope from a stored message (`rec.<site>.<kind>`, the two headers, the body)."""
        prefix, _, rest = subject.partition(".")
        site, _, kind = rest.partition(".")
        headers = headers or {}
        if prefix != RECORDS_PREFIX or MSG_ID not in headers or AT_US not in headers:
            raise EnvelopeError(f"message on {subject!r} is not a record (headers {sorted(headers)})")
        return cls(headers[MSG_ID], site, kind, int(headers[AT_US]), bytes(data))


_RECORD = struct.Struct(">HHqI")  # record id length, kind length, at_us, body length; then the three


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive records of one site in one JetStream message (`rec.<site>.BATCH`): the server stores, sources
    and delivers one message for many records. Its message id is a digest of its record ids, so republishing the
    same records cut the same way comes back as a duplicate; cut another way, the copy is stored and the register
    drops the records it holds (unique record id). Each record keeps its own id, kind and time."""

    site: str
    records: tuple[RecordEnvelope, ...]

    def __post_init__(self) -> None:
        if not self.records:
            raise EnvelopeError("a batch of no records")
        strays = [r.record_id for r in self.records if r.site != self.site]
        if strays:
            raise EnvelopeError(f"records {strays[:3]} are not of site {self.site}")

    @property
    def subject(self) -> str:
        return record_subject(self.site, BATCH_TOKEN)

    @property
    def msg_id(self) -> str:
        digest = hashlib.sha256("\n".join(r.record_id for r in self.records).encode()).hexdigest()[:32]
        return f"{self.records[0].record_id}+{len(self.records) - 1}:{digest}"

    def headers(self) -> dict[str, str]:
        return {MSG_ID: self.msg_id, BATCH: str(len(self.records))}

    def body(self) -> bytes:
        parts = []
        for r in self.records:
            rid, kind = r.record_id.encode(), r.kind.encode()
            parts += (_RECORD.pack(len(rid), len(kind), r.at_us, len(r.body)), rid, kind, r.body)
        return b"".join(parts)

    @classmethod
    def decode(cls, site: str, count: int, data: bytes) -> RecordBatch:
        records, offset = [], 0
        try:
            while offset < len(data):
                id_len, kind_len, at_us, body_len = _RECORD.unpack_from(data, offset)
                offset += _RECORD.size
                rid = data[offset : offset + id_len].decode("ascii")
                kind = data[offset + id_len : offset + id_len + kind_len].decode("ascii")
                offset += id_len + kind_len
                body = bytes(data[offset : offset + body_len])
                offset += body_len
                records.append(RecordEnvelope(rid, site, kind, at_us, body))
        except (struct.error, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"batch of site {site}: unreadable at byte {offset} ({exc})") from exc
        if offset != len(data) or len(records) != count:
            raise EnvelopeError(f"batch of site {site}: {len(records)} records in {offset} bytes, header says {count}")
        return cls(site, tuple(records))


def cut_batches(envelopes: Sequence[RecordEnvelope]) -> list[RecordBatch]:
    """The records in order, in batches of consecutive records of one site, at most `BATCH_RECORDS` and about
    `BATCH_BYTES` each. The cut depends only on the sequence given: the same records, the same batches."""
    out: list[RecordBatch] = []
    current: list[RecordEnvelope] = []
    size = 0
    for env in envelopes:
        weight = _RECORD.size + len(env.record_id) + len(env.kind) + len(env.body)
        if current and (env.site != current[0].site or len(current) == BATCH_RECORDS or size + weight > BATCH_BYTES):
            out.append(RecordBatch(current[0].site, tuple(current)))
            current, size = [], 0
        current.append(env)
        size += weight
    if current:
        out.append(RecordBatch(current[0].site, tuple(current)))
    return out


def message_records(subject: str, headers: dict[str, str] | None, data: bytes) -> list[RecordEnvelope]:
    """The records a stored message carries: a batch's, or the one of a single-record message (how edges
    published before batches; a site stream keeps them for its `max_age`). Raises EnvelopeError."""
    if headers and BATCH in headers:
        prefix, site, token = [*subject.split("."), "", ""][:3]
        if prefix != RECORDS_PREFIX or token != BATCH_TOKEN or not headers[BATCH].isdigit():
            raise EnvelopeError(f"message on {subject!r} is not a batch of records (headers {sorted(headers)})")
        return list(RecordBatch.decode(check_site(site), int(headers[BATCH]), data).records)
    return [RecordEnvelope.from_message(subject, headers, data)]


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What the site's JetStream said about one envelope. accepted: stored (now, or earlier when
    duplicate); seq: its sequence in the site stream (the first copy's, for a duplicate); error: why not."""

    record_id: str
    accepted: bool
    duplicate: bool = False
    seq: int = 0
    error: str = ""
