"""Journal anchors: the journal's head, kept outside the database, so that truncation and rewriting show.

The chain by itself proves that no entry was edited, inserted or removed in the middle. It cannot prove
that entries were not deleted from the end, or that someone did not rebuild the chain from some entry on
with freshly computed hashes. An anchor is a (sequence number, hash) the journal once had at its head;
since entry n's hash covers entries 1..n, a journal that still holds entry n with that hash still holds
everything up to n, unchanged. Kept where the database's writers cannot reach (another disk, a
write-once share, a printout in the auditor's file), anchors turn both attacks into a failed check.

`write_anchor` is what the site calls periodically: it first checks that the journal still contains the
newest anchor already written, and refuses (writing and deleting nothing) when it does not, so a
tampered journal never gets a fresh anchor that would bless it. `status` is what the auditor's page shows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal
from registry.errors import RegistryError
from registry.models import JournalEntry

FORMAT = "custodian.journal-anchor/1"
KEEP = 24  # files in a rolling set; the newest alone covers the whole journal, older ones narrow a rewrite down
_FILE = re.compile(r"^journal-anchor-(\d{12})-(\d{8}T\d{6}Z)\.json$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class AnchorError(RegistryError):
    """An anchor file cannot be read or is not an anchor."""


class JournalTampered(RegistryError):
    """The journal no longer contains an anchored head, or its chain is broken."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    head_at: str | None  # the head entry's own time
    taken_at: str  # when the anchor was taken

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "anchor") -> Anchor:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} document")
            seq, digest = data["seq"], data["hash"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq is not a sequence number")
            if not isinstance(digest, str) or not _HASH.match(digest) or (seq == 0 and digest != journal.GENESIS):
                raise ValueError("hash is not a SHA-256 hex digest")
            head_at, taken_at = data.get("head_at"), data["taken_at"]
            if not isinstance(taken_at, str) or not (head_at is None or isinstance(head_at, str)):
                raise ValueError("times are ISO 8601 strings")
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"{source}: not a journal anchor ({exc})") from None
        return cls(seq, digest, head_at, taken_at)

    def describe(self) -> str:
        return f"sequence {self.seq} (hash {self.hash[:16]}..., anchored {self.taken_at})"


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    anchor: Anchor
    ok: bool
    problem: str = ""


def take(session: Session) -> Anchor:
    """The journal's head now, as an anchor."""
    head = journal.head(session)
    return Anchor(head.seq, head.hash, head.at, journal.now_utc().isoformat(timespec="seconds"))


def check(session: Session, anchor: Anchor) -> AnchorCheck:
    """Does the journal still hold the anchored head? (Whether the chain up to it links is `journal.verify`'s
    question; together they prove entries 1..anchor.seq are the ones anchored.)"""
    if anchor.seq == 0:
        return AnchorCheck(anchor, True)
    found = session.execute(select(JournalEntry.hash).where(JournalEntry.seq == anchor.seq)).scalar()
    if found == anchor.hash:
        return AnchorCheck(anchor, True)
    if found is None:
        last = journal.head(session).seq
        if last == 0:
            problem = f"the journal is empty, but it was anchored at {anchor.describe()}: every entry was deleted"
        elif last < anchor.seq:
            problem = (
                f"the journal ends at {last}, but it was anchored at {anchor.describe()}: "
                f"entries {last + 1}..{anchor.seq} were deleted"
            )
        else:
            problem = f"entry {anchor.seq}, anchored at {anchor.describe()}, is missing"
    else:
        problem = (
            f"entry {anchor.seq} no longer has the hash anchored at {anchor.describe()}: "
            f"the journal was rewritten at or before entry {anchor.seq}"
        )
    return AnchorCheck(anchor, False, problem)


def read(path: Path) -> list[Anchor]:
    """The anchor in a file, or every anchor file in a folder (oldest first)."""
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if _FILE.match(p.name))
            return sorted((_read_file(p) for p in files), key=lambda a: (a.seq, a.taken_at))
        return [_read_file(path)]
    except OSError as exc:
        raise AnchorError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _read_file(path: Path) -> Anchor:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AnchorError(f"{path}: not a journal anchor (not UTF-8 text)") from None
    return Anchor.from_json(text, str(path))


def verify(session: Session, anchors: list[Anchor]) -> journal.VerifyResult:
    """The whole chain verifies (journal.verify) and still contains every anchor given."""
    result = journal.verify(session)
    if not result.ok:
        return result
    for anchor in sorted(anchors, key=lambda a: a.seq):
        found = check(session, anchor)
        if not found.ok:
            return journal.VerifyResult(False, result.entries, anchor.seq, found.problem, result.head_hash)
    return result


def write_atomically(path: Path, text: str) -> None:
    """Temporary file, fsync, rename, fsync of the folder: the file is there whole or not at all."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _since(session: Session, anchor: Anchor) -> str:
    """'' when the journal still holds `anchor` and every entry after it links on; else the problem."""
    found = check(session, anchor)
    if not found.ok:
        return found.problem
    after = journal.verify_after(session, anchor.seq, anchor.hash)
    return "" if after.ok else f"entry {after.first_bad_seq}: {after.problem}"


def write_anchor(session: Session, directory: Path, *, keep: int = KEEP) -> Anchor:
    """Anchor the journal's head in `directory` (the site calls this periodically); returns the anchor.

    Refused with JournalTampered, writing and removing nothing, when the journal no longer contains the
    newest anchor already there or an entry since it does not link; the first anchor in an empty folder is
    written only after the whole journal verifies. The cost is the entries since the newest anchor. When
    the head has not moved, no file is added and the newest anchor is returned. The newest `keep` files
    are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    anchors = read(directory)
    newest = anchors[-1] if anchors else None
    if newest is None:
        whole = journal.verify(session)
        if not whole.ok:
            raise JournalTampered(f"entry {whole.first_bad_seq}: {whole.problem}")
    else:
        problem = _since(session, newest)
        if problem:
            raise JournalTampered(problem)
    anchor = take(session)
    if newest is not None and (newest.seq, newest.hash) == (anchor.seq, anchor.hash):
        return newest
    stamp = dt.datetime.fromisoformat(anchor.taken_at).strftime("%Y%m%dT%H%M%SZ")
    write_atomically(directory / f"journal-anchor-{anchor.seq:012d}-{stamp}.json", anchor.to_json())
    for old in sorted(p for p in directory.iterdir() if _FILE.match(p.name))[:-keep]:
        old.unlink()
    return anchor


@dataclass(frozen=True, slots=True)
class AnchorStatus:
    """For the auditor's page: the head now, and whether the anchors outside the database still agree."""

    head: journal.Head
    anchors: int  # anchor files found
    newest: Anchor | None
    state: str  # "anchored" | "not_anchored" | "broken"
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.state != "broken"


def status(session: Session, directory: Path | None) -> AnchorStatus:
    """The head and the anchors' verdict. Cheap enough for a page: one lookup per anchor and a walk over the
    entries since the newest (the full chain is `journal.verify`'s job)."""
    head = journal.head(session)
    try:
        anchors = read(directory) if directory is not None and directory.exists() else []
    except AnchorError as exc:
        return AnchorStatus(head, 0, None, "broken", str(exc))
    if not anchors:
        return AnchorStatus(head, 0, None, "not_anchored", "no anchor has been written yet")
    for anchor in anchors[:-1]:
        found = check(session, anchor)
        if not found.ok:
            return AnchorStatus(head, len(anchors), anchors[-1], "broken", found.problem)
    problem = _since(session, anchors[-1])
    return AnchorStatus(head, len(anchors), anchors[-1], "broken" if problem else "anchored", problem)
