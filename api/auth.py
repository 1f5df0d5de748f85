"""Authentication and authorisation: signed session cookies and bearer tokens, CSRF, login throttling, roles.

Sessions and tokens are signed (itsdangerous) and carry a random session id; logout revokes that id in
memory. Roles are read from the register on every request, so a role removed or a person signed off
takes effect at once; only while the database is unreachable do the roles signed into the token stand
in, so guard consoles keep working through an outage.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload

from api.context import get_context
from api.settings import ApiSettings
from registry.models import ROLES, Person
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
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class LoginThrottle:
    """At most `allowed` failures per (username, client address) within `window_s` seconds."""

    MAX_KEYS = 10_000

    def __init__(self, allowed: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.allowed = allowed
        self.window_s = window_s
        self.clock = clock
        self._failures: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures[key]
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def check(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._recent((username.lower(), address), now)
            if len(times) >= self.allowed:
                raise Throttled(max(1, int(self.window_s - (now - times[0]) + 0.999)))

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.MAX_KEYS:
                # Usernames are chosen by whoever is guessing: forget expired keys so memory stays bounded.
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
            self._failures[(username.lower(), address)].append(now)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), address), None)


class Authenticator:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._sessions = URLSafeTimedSerializer(settings.secret_key, salt="custodian.session")
        self._tokens = URLSafeTimedSerializer(settings.secret_key, salt="custodian.bearer")
        self.throttle = LoginThrottle(settings.login_failures_allowed, settings.login_failure_window_s)
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self.settings.secret_key.encode(), f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()

    def issue(self, person: Person, via: Literal["session", "bearer"]) -> Credential:
        sid = secrets.token_urlsafe(18)
        hours = self.settings.session_hours if via == "session" else self.settings.token_hours
        signer = self._sessions if via == "session" else self._tokens
        value = signer.dumps({"u": person.username, "r": sorted(person.role_names), "sid": sid})
        return Credential(value, sid, int(hours * 3600))

    def revoke(self, principal: Principal) -> None:
        hours = max(self.settings.session_hours, self.settings.token_hours)
        now = time.time()
        with self._lock:
            self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
            self._revoked[principal.sid] = now + hours * 3600

    def _decode(self, value: str, via: Literal["session", "bearer"]) -> tuple[str, frozenset[str], str]:
        signer = self._sessions if via == "session" else self._tokens
        hours = self.settings.session_hours if via == "session" else self.settings.token_hours
        try:
            data = signer.loads(value, max_age=int(hours * 3600))
            username, roles, sid = str(data["u"]), frozenset(map(str, data["r"])), str(data["sid"])
        except (BadSignature, KeyError, TypeError, ValueError):
            raise NotAuthenticated("the session or token is invalid or has expired") from None
        with self._lock:
            if sid in self._revoked:
                raise NotAuthenticated("this session was signed out")
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
        roles = self._current_roles(request, username, roles)
        return Principal(username, roles, via, sid, self.csrf_for(sid))

    def _current_roles(self, request: Request, username: str, signed: frozenset[str]) -> frozenset[str]:
        factory = get_context(request).factory
        try:
            with factory() as session:
                person = session.execute(
                    select(Person).options(selectinload(Person.roles)).where(Person.username == username)
                ).scalar()
                if person is None or person.status not in SIGNED_IN_STATUSES:
                    raise NotAuthenticated("this account is no longer active")
                return frozenset(person.role_names)
        except DBAPIError:
            # The register is unreachable: the roles signed at login stand in until it is back.
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
