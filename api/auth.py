"""Authentication and authorisation: signed session cookies and bearer tokens, CSRF, login throttling, roles.

Sessions and tokens are signed (itsdangerous) and carry a random session id with a row in the register
(`auth_sessions`): signing out deletes the row, so a sign-out survives a restart. Refused passwords are kept in
the register too (`login_failures`) for the throttling window, so a restart is no way round the throttle.
Roles are read from the register on every request, so a role removed or a person signed off takes effect at
once. Only while the database is unreachable do the roles signed into the token stand in (and the session
row cannot be checked; sessions this process signed out stay refused), so guard consoles keep working
through an outage.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from api.context import get_context
from api.settings import ApiSettings
from registry.journal import now_utc
from registry.models import ROLES, AuthSession, LoginFailure, Person
from registry.passwords import check_password, hash_password

SESSION_COOKIE = "custodian_session"
LOGIN_CSRF_COOKIE = "custodian_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGNED_IN_STATUSES = ("active", "departing")


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    roles: frozenset[str]
    via: Literal["session", "bearer"]
    sid: str
    csrf: str


@dataclass(frozen=True, slots=True)
class Credential:
    """A freshly signed session cookie value or bearer token."""

    value: str
    sid: str
    max_age_s: int


class NotAuthenticated(Exception):
    """No valid session or token: API callers get 401, page visitors are sent to the login page."""


class Throttled(Exception):
    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins {what}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    """Refused passwords allowed within `window_s` before further attempts are refused unchecked (the values
    come from ApiSettings)."""

    per_username_and_address: int
    per_address: int  # across usernames: password spraying from one address
    per_username: int  # across addresses: one account guessed from many
    window_s: float


def address_key(address: str) -> str:
    """The client address throttled as one: an IPv4 address, or the /64 an IPv6 host is handed whole."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    """Counts refused passwords in the register, so every API process and every restart sees the same count.

    Checked before the password is (a throttled attempt costs no argon2 and is not recorded, so the table
    grows by at most the limits per window and key); failures older than the window are deleted."""

    def __init__(self, limits: ThrottleLimits, clock: Callable[[], dt.datetime] = now_utc) -> None:
        self.limits = limits
        self.clock = clock

    def check(self, session: Session, username: str, address: str) -> None:
        now = self.clock()
        user, where = username.lower()[:64], address_key(address)
        window = dt.timedelta(seconds=self.limits.window_s)
        rows = session.execute(
            select(LoginFailure.at, LoginFailure.username, LoginFailure.address).where(
                LoginFailure.at > now - window, or_(LoginFailure.username == user, LoginFailure.address == where)
            )
        ).all()
        keys = (
            (
                "for this account from this address",
                self.limits.per_username_and_address,
                [r.at for r in rows if r.username == user and r.address == where],
            ),
            ("from this address", self.limits.per_address, [r.at for r in rows if r.address == where]),
            ("for this account", self.limits.per_username, [r.at for r in rows if r.username == user]),
        )
        waits = []
        for what, allowed, times in keys:
            if len(times) >= allowed:
                # The key clears when its `allowed`-th newest failure leaves the window.
                clears = sorted(times)[-allowed] + window
                waits.append((max(1, int((clears - now).total_seconds() + 0.999)), what))
        if waits:
            retry_after_s, what = max(waits)
            raise Throttled(what, retry_after_s)

    def failed(self, session: Session, username: str, address: str) -> None:
        now = self.clock()
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - dt.timedelta(seconds=self.limits.window_s)))
        session.add(LoginFailure(at=now, username=username.lower()[:64], address=address_key(address)))

    def succeeded(self, session: Session, username: str, address: str) -> None:
        session.execute(
            delete(LoginFailure).where(
                LoginFailure.username == username.lower()[:64], LoginFailure.address == address_key(address)
            )
        )


class Authenticator:
    def __init__(self, settings: ApiSettings, factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.factory = factory
        self._sessions = URLSafeTimedSerializer(settings.secret_key, salt="custodian.session")
        self._tokens = URLSafeTimedSerializer(settings.secret_key, salt="custodian.bearer")
        self.throttle = LoginThrottle(
            ThrottleLimits(
                settings.login_failures_allowed,
                settings.login_failures_per_address,
                settings.login_failures_per_username,
                settings.login_failure_window_s,
            )
        )
        # Signed out by this process: refused even while the register cannot be asked.
        self._revoked_here: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self.settings.secret_key.encode(), f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()

    def _lifetime_s(self, via: Literal["session", "bearer"]) -> int:
        return int((self.settings.session_hours if via == "session" else self.settings.token_hours) * 3600)

    def issue(self, session: Session, person: Person, via: Literal["session", "bearer"]) -> Credential:
        """Sign a credential and record its session; sessions past their expiry are deleted on the way."""
        sid = secrets.token_urlsafe(18)
        lifetime = self._lifetime_s(via)
        signer = self._sessions if via == "session" else self._tokens
        value = signer.dumps({"u": person.username, "r": sorted(person.role_names), "sid": sid})
        now = now_utc()
        session.execute(delete(AuthSession).where(AuthSession.expires_at <= now))
        session.add(
            AuthSession(
                sid=sid,
                username=person.username,
                via=via,
                issued_at=now,
                expires_at=now + dt.timedelta(seconds=lifetime),
            )
        )
        return Credential(value, sid, lifetime)

    def revoke(self, session: Session, principal: Principal) -> None:
        """Sign out the credential that made this call."""
        now = now_utc()
        with self._lock:
            self._revoked_here = {sid: until for sid, until in self._revoked_here.items() if until > now}
            self._revoked_here[principal.sid] = now + dt.timedelta(seconds=self._lifetime_s(principal.via))
        session.execute(delete(AuthSession).where(AuthSession.sid == principal.sid))

    def end_sessions_of(self, session: Session, username: str) -> None:
        """Sign a person out everywhere (their password was changed)."""
        session.execute(delete(AuthSession).where(AuthSession.username == username))

    def _decode(self, value: str, via: Literal["session", "bearer"]) -> tuple[str, frozenset[str], str]:
        signer = self._sessions if via == "session" else self._tokens
        try:
            data = signer.loads(value, max_age=self._lifetime_s(via))
            username, roles, sid = str(data["u"]), frozenset(map(str, data["r"])), str(data["sid"])
        except (BadSignature, KeyError, TypeError, ValueError):
            raise NotAuthenticated("the session or token is invalid or has expired") from None
        return username, roles, sid

    def principal(self, request: Request, bearer: str | None) -> Principal:
        if bearer:
            username, roles, sid = self._decode(bearer, "bearer")
            via: Literal["session", "bearer"] = "bearer"
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise NotAuthenticated("sign in first")
            username, roles, sid = self._decode(cookie, "session")
            via = "session"
        roles = self._current_roles(username, sid, roles)
        return Principal(username, roles, via, sid, self.csrf_for(sid))

    def _current_roles(self, username: str, sid: str, signed: frozenset[str]) -> frozenset[str]:
        try:
            with self.factory() as session:
                live = session.get(AuthSession, sid)
                if live is None or live.username != username or live.expires_at <= now_utc():
                    raise NotAuthenticated("this session was signed out or has expired")
                person = session.execute(
                    select(Person).options(selectinload(Person.roles)).where(Person.username == username)
                ).scalar()
                if person is None or person.status not in SIGNED_IN_STATUSES:
                    raise NotAuthenticated("this account is no longer active")
                return frozenset(person.role_names)
        except DBAPIError:
            # The register is unreachable: the roles signed at login stand in until it is back.
            with self._lock:
                if sid in self._revoked_here:
                    raise NotAuthenticated("this session was signed out") from None
            return signed

    def verify_password(self, person: Person | None, password: str) -> bool:
        if person is None:
            # Spend the same effort as a real check so timing does not reveal which usernames exist.
            check_password(_dummy_hash(), password)
            return False
        return person.status in SIGNED_IN_STATUSES and check_password(person.password_hash, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


_bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /api/token")


class Allow:
    """The only way a route opens: `Depends(Allow("guard", "auditor"))` names every role let in."""

    def __init__(self, *roles: str) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"Allow() needs roles from {ROLES}; got {sorted(unknown) or 'none'}")
        self.roles = frozenset(roles)

    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer_scheme),
    ) -> Principal:
        auth = get_context(request).auth
        principal = auth.principal(request, credentials.credentials if credentials else None)
        if not principal.roles & self.roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your roles do not open this")
        if principal.via == "session" and request.method not in SAFE_METHODS:
            await _check_csrf(request, principal)
        return principal


class Public:
    """Marks a route deliberately open to everyone (login, health). Nothing else may omit `Allow`."""

    def __call__(self) -> None:
        return None


PUBLIC = Public()


async def _check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, principal.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
