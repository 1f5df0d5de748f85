"""Which site file the register was last loaded from (its SHA-256), so a restart loads a file only when it
changed, and then only its configuration."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal
from registry.models import Item, Person, SiteFileLoad, Venue

FULL, CONFIGURATION = "full", "configuration"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def last_loaded(session: Session) -> SiteFileLoad | None:
    return session.execute(select(SiteFileLoad).order_by(SiteFileLoad.id.desc()).limit(1)).scalar()


def register_is_empty(session: Session) -> bool:
    """Nothing loaded yet: no venue, no person, no item."""
    return all(session.execute(select(model.id).limit(1)).first() is None for model in (Venue, Person, Item))


def loaded(session: Session, actor: str, path: Path, sha256: str, mode: str) -> SiteFileLoad:
    row = SiteFileLoad(sha256=sha256, path=str(path), mode=mode, loaded_at=journal.now_utc())
    session.add(row)
    session.flush()
    journal.append(session, actor, "site.file_loaded", f"site_file:{path.name}", {"sha256": sha256, "mode": mode})
    return row
