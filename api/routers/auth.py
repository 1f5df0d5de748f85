"""Bearer tokens for API clients, sign-out, and who am I. Logins and logouts are journalled."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from api import schemas
from api.auth import PUBLIC, Authenticator, Credential, NotAuthenticated, client_address
from api.deps import AnySignedIn, ContextDep
from registry import journal
from registry.db import transaction
from registry.models import Person

router = APIRouter(prefix="/api", tags=["auth"])


def find_person(session: Session, username: str) -> Person | None:
    return session.execute(
        select(Person).options(selectinload(Person.roles)).where(Person.username == username)
    ).scalar()


def sign_in(
    factory: sessionmaker[Session],
    auth: Authenticator,
    username: str,
    password: str,
    address: str,
    via: Literal["session", "bearer"],
) -> tuple[Person, Credential]:
    """Check throttling and password; journal the outcome (never the password); issue the credential.

    Raises Throttled (before any password check) or NotAuthenticated."""
    with transaction(factory) as session:
        auth.throttle.check(session, username, address)
        person = find_person(session, username)
        accepted = auth.verify_password(person, password)
        if accepted and person is not None:
            journal.append(
                session, person.username, "auth.login", f"person:{person.username}", {"via": via, "ip": address}
            )
            auth.throttle.succeeded(session, username, address)
            return person, auth.issue(session, person, via)
        subject = f"person:{username[:64]}"
        journal.append(session, "anonymous", "auth.login_refused", subject, {"via": via, "ip": address})
        auth.throttle.failed(session, username, address)
    raise NotAuthenticated("wrong username or password")


@router.post("/token", dependencies=[Depends(PUBLIC)])
def token(
    request: Request, ctx: ContextDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> schemas.TokenPublic:
    """OAuth2 password grant: a signed bearer token for an API client."""
    person, credential = sign_in(ctx.factory, ctx.auth, form.username, form.password, client_address(request), "bearer")
    return schemas.TokenPublic(
        access_token=credential.value,
        expires_in=credential.max_age_s,
        username=person.username,
        roles=sorted(person.role_names),
    )


@router.post("/logout")
def logout(ctx: ContextDep, user: AnySignedIn) -> dict[str, str]:
    """Revokes the token or session that made this call."""
    with transaction(ctx.factory) as session:
        ctx.auth.revoke(session, user)
        journal.append(session, user.username, "auth.logout", f"person:{user.username}", {"via": user.via})
    return {"detail": "signed out"}


@router.get("/me")
def me(user: AnySignedIn) -> schemas.MePublic:
    return schemas.MePublic(username=user.username, roles=sorted(user.roles), via=user.via)
