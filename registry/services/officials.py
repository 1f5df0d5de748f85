"""The people acting in a record (inspectors, seizing officers): someone in the register, or an outside
official named with the identification they presented (CE Art. 25)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from registry import rules
from registry.models import Person
from registry.services import lookup


@dataclass(frozen=True, slots=True)
class Official:
    """Give `username` for a person in the register, or `name` and `identification` for an outside official."""

    username: str | None = None
    name: str = ""
    organisation: str = ""
    identification: str = ""


@dataclass(frozen=True, slots=True)
class Resolved:
    person: Person | None
    name: str
    organisation: str
    identification: str

    @property
    def key(self) -> str:
        """Who this is, for counting distinct people: the register's person, else the identification shown."""
        if self.person is not None:
            return f"person:{self.person.id}"
        return f"id:{self.organisation.strip().casefold()}:{self.identification.strip().casefold()}"

    @property
    def label(self) -> str:
        return label(self)


class _Named(Protocol):
    person: Person | None
    name: str
    organisation: str
    identification: str


def label(official: _Named) -> str:
    """How an official is shown: the username, or name, organisation and the identification presented."""
    if official.person is not None:
        return official.person.username
    where = f", {official.organisation}" if official.organisation else ""
    return f"{official.name}{where} (id {official.identification})"


def resolve(session: Session, officials: Sequence[Official], field: str) -> list[Resolved]:
    """Look each official up; refuse an outside official without name or identification, and repeats."""
    resolved = []
    for n, official in enumerate(officials):
        if official.username:
            person = lookup.person(session, official.username)
            rules.active_person(person)
            resolved.append(Resolved(person, person.name, person.organisation, ""))
        elif not official.name.strip() or not official.identification.strip():
            raise rules.refuse("official.identification", f"{field}[{n}] lacks a name or an identification.")
        else:
            resolved.append(Resolved(None, official.name, official.organisation, official.identification))
    return resolved


def distinct(resolved: Sequence[Resolved], field: str) -> None:
    """Each official once: listing someone twice does not make two officials."""
    seen: dict[str, Resolved] = {}
    for official in resolved:
        if official.key in seen:
            raise rules.refuse("official.listed_twice", f"{official.label} appears twice in {field}.")
        seen[official.key] = official


def count_distinct(resolved: Sequence[Resolved]) -> int:
    return len({o.key for o in resolved})
