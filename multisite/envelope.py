"""The typed messages that cross the edge/centre boundary, and the names they travel under.

A record is what the recorder accepted at a site (a decision, a movement, an alarm, a health report): its
id is unique across all sites and nodes (the recorder makes it: site, node, sequence), and it is the
JetStream message id, so the stream drops a republished record inside its duplicate window and the centre's
register drops one outside it (unique record id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SITE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # a site is a JetStream domain and part of stream names
KIND_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")  # subject tokens
RECORD_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # a header value: printable ASCII, no spaces

MSG_ID = "Nats-Msg-Id"
AT_US = "Custodian-At-Us"
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


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """What the site's JetStream said about one envelope. accepted: stored (now, or earlier when
    duplicate); seq: its sequence in the site stream (the first copy's, for a duplicate); error: why not."""

    record_id: str
    accepted: bool
    duplicate: bool = False
    seq: int = 0
    error: str = ""
