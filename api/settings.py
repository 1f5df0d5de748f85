"""Settings of the API. A missing or placeholder secret key is refused: it signs every session and token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIB = 1024 * 1024
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "changeme", "secret", "dev", "test", "xxx"})
MIN_SECRET_CHARS = 32


@dataclass(frozen=True, slots=True)
class ApiSettings:
    secret_key: str
    session_hours: float = 12.0
    token_hours: float = 8.0
    # Cookies marked Secure travel only over HTTPS. None: secure exactly when this process serves TLS itself;
    # set True behind a TLS-terminating proxy.
    cookie_secure: bool | None = None
    # Refused passwords allowed per window before sign-in is refused unchecked (429): per username from one
    # address, per address across usernames (password spraying), per username across addresses.
    login_failures_allowed: int = 5
    login_failures_per_address: int = 20
    login_failures_per_username: int = 20
    login_failure_window_s: float = 300.0
    certificates_dir: Path | None = None
    anchors_dir: Path | None = None  # where the site writes journal anchors (shown on the auditor's page)
    demo: bool = False  # `custodian demo`: simulator controls on the pages (an item placed on the intake)
    epcis_location_base: str = "https://id.custodian.invalid"
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    site_name: str = "Custodian"
    time_zone: str = "UTC"  # IANA name: the zone guard consoles show dates and times in
    # Request bodies are counted while they are read: a body over the limit is answered 413 as soon as its
    # Content-Length (or, streamed, its first bytes past the limit) shows it, never read whole first.
    max_body_bytes: int = 1 * MIB
    max_image_bytes: int = 20 * MIB  # routes marked @accepts_images (photos of labels, camera frames)

    def __post_init__(self) -> None:
        key = self.secret_key.strip()
        if key.lower() in PLACEHOLDER_SECRETS or len(key) < MIN_SECRET_CHARS:
            raise ValueError(
                f"secret_key must be a random value of at least {MIN_SECRET_CHARS} characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.max_body_bytes < 1 or self.max_image_bytes < self.max_body_bytes:
            raise ValueError("max_body_bytes must be positive and max_image_bytes at least max_body_bytes")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time_zone {self.time_zone!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("TLS needs both tls_certfile and tls_keyfile, or neither")

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.tls_certfile is not None
