"""The site loader never crashes: whatever the file, it loads or it raises one SiteFileError naming a line
and a field, and a refused file writes nothing.

Three generators, none of which knows how the loader works: a value of any TOML type (or a huge one) at
every key of every section, byte- and line-level mutations of the example site file, and whole documents
built from the schema's vocabulary. Then the explicit cases from issue 10. A few thousand files in CI;
twenty times as many with CUSTODIAN_LONG_TESTS=1.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry import db, siteschema
from registry.models import Antenna, Approval, Badge, Device, Item, JournalEntry, Person, Portal, Venue
from registry.sitefile import SECTIONS, SiteFileError, load
from tests.registry.conftest import EXAMPLE_SITE

LONG = os.environ.get("CUSTODIAN_LONG_TESTS") == "1"
SCALE = 20 if LONG else 1
EXAMPLE_TEXT = EXAMPLE_SITE.read_text()
EXAMPLE = tomllib.loads(EXAMPLE_TEXT)


# The long form takes tens of minutes on the shared 2-core machine: past pytest's default timeout.
long_enough = pytest.mark.timeout(7200 if LONG else 300)


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class Register:
    """One SQLite register with the example site, shared by the fuzz tests of this module."""

    def __init__(self, folder: Path) -> None:
        self.engine = db.make_engine(f"sqlite:///{folder / 'fuzz.db'}")
        db.upgrade(self.engine)
        self.factory: sessionmaker[Session] = db.session_factory(self.engine)
        self.file = folder / "site.toml"
        with db.transaction(self.factory) as session:
            load(session, "site-loader", EXAMPLE_SITE)
        self.loaded = self.refused = 0

    def state(self) -> tuple[object, ...]:
        with self.factory() as session:
            count = lambda m: session.execute(select(func.count()).select_from(m)).scalar_one()  # noqa: E731
            head = session.execute(
                select(JournalEntry.seq, JournalEntry.hash).order_by(JournalEntry.seq.desc())
            ).first()
            return (
                tuple(head) if head else None,
                *(count(m) for m in (Venue, Portal, Device, Antenna, Person, Badge, Item, Approval)),
            )

    def try_load(self, data: bytes) -> SiteFileError | None:
        """Load the file; it loads, or it is refused with a line and a field and nothing written.

        A file that loads is rolled back too, so every file meets the same register."""
        self.file.write_bytes(data)
        before = self.state()
        try:
            with self.factory() as session, session.begin():
                load(session, "fuzz", self.file)
                session.rollback()
        except SiteFileError as error:
            self.refused += 1
            assert error.line is not None and error.line >= 1, error
            assert error.line <= max(data.count(b"\n") + 1, 1), error
            assert error.where and error.message, error
            assert "\n" not in str(error), error
            assert error.rule != "site.database_refused", error  # the schema let through what the database refused
            assert self.state() == before, "a refused file wrote something"
            return error
        self.loaded += 1
        return None


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Register]:
    reg = Register(tmp_path_factory.mktemp("fuzz"))
    yield reg
    reg.engine.dispose()


# Values of every TOML type, and of the sizes and shapes that break naive loaders.

WORDS = sorted(
    {
        "",
        " ",
        "outside",
        "corridor",
        "vault",
        "archive",
        "main-exit",
        "bob",
        "paul",
        "secret",
        "top_secret",
        "top-secret",
        "camera",
        "osdp_panel",
        "inside",
        "paper",
        "carry_out",
        "S-2026-001",
        "E28011700000020000000001",
        "E2801170000002000000FFFF",
        "scbk",
        "a\nb",
        "\x00",
        "\u202e",
        "秘密",
        " leading",
        "x" * 65,
        "x" * 100_001,
    }
)
SCALARS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, 1, -1, 64, 65, 2**31, 2**63 - 1, -(2**63), 10**30, 2**200]),
    st.floats(),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(WORDS),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=14))])),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["number", "side", "x", ""]), inner, max_size=3)
    ),
    max_leaves=8,
)


def dumped(document: dict[str, Any]) -> bytes:
    try:
        return tomli_w.dumps(document).encode()
    except (TypeError, ValueError):  # a value TOML cannot write (e.g. a mixed-type array for tomli_w)
        return b""


def fields() -> Iterator[tuple[str, str]]:
    yield from (("site", key) for key in siteschema.keys_of(siteschema.SiteInfo))
    for section, model in siteschema.SECTION_MODELS.items():
        yield from ((section, key) for key in siteschema.keys_of(model))
    yield from (("antennas", key) for key in siteschema.keys_of(siteschema.AntennaEntry))
    yield from (("(top level)", section) for section in SECTIONS)


FIELDS = list(fields())


@pytest.mark.parametrize(("section", "key"), FIELDS, ids=[f"{s}.{k}" for s, k in FIELDS])
def test_any_value_at_any_key_loads_or_is_refused_cleanly(register: Register, section: str, key: str) -> None:
    @fuzz(20)
    @given(value=VALUES, which=st.integers(min_value=0, max_value=20))
    def run(value: Any, which: int) -> None:
        document = copy.deepcopy(EXAMPLE)
        if section == "(top level)":
            document[key] = value
        elif section == "site":
            document["site"][key] = value
        elif section == "antennas":
            readers = [d for d in document["devices"] if "antennas" in d]
            reader = readers[which % len(readers)]
            reader["antennas"][which % len(reader["antennas"])][key] = value
        else:
            entries = document[section]
            entries[which % len(entries)][key] = value
        data = dumped(document)
        if data:
            error = register.try_load(data)
            if error is not None and section not in ("(top level)", "antennas"):
                assert error.where.startswith(section), error  # the error is about the field that was changed

    run()


MUTATION_TOKENS = [
    b"[[venues]]\n",
    b"[[devices]]\n",
    b"[site]\n",
    b" = ",
    b'"',
    b"'''",
    b'"""',
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"\n",
    b"#",
    b"\\",
    b"true",
    b"1e999",
    b"nan",
    b"0x",
    b"9" * 5000,
    b"-",
    b'code = "corridor"\n',
    b'badges = ["20003"]\n',
    b'ceiling = "unclassified"\n',
    b"\xff",
    b"\xc3",
    b"\x00",
    b"\xef\xbb\xbf",
    b"[" * 2000,
]

MUTATION = st.one_of(
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 400)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(MUTATION_TOKENS) | st.binary(max_size=8)),
    st.tuples(st.just("byte"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("duplicate line"), st.floats(0, 1), st.integers(1, 3)),
    st.tuples(st.just("delete line"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("swap lines"), st.floats(0, 1), st.floats(0, 1)),
)


def mutate(data: bytes, how: tuple[str, float, Any]) -> bytes:
    kind, where, arg = how
    at = int(where * len(data))
    lines = data.split(b"\n")
    n = int(where * (len(lines) - 1))
    if kind == "delete":
        return data[:at] + data[at + arg :]
    if kind == "insert":
        return data[:at] + arg + data[at:]
    if kind == "byte":
        return data[:at] + bytes([arg]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "duplicate line":
        return b"\n".join(lines[: n + 1] + [lines[n]] * arg + lines[n + 1 :])
    if kind == "delete line":
        return b"\n".join(lines[:n] + lines[n + 1 :])
    m = int(arg * (len(lines) - 1))
    lines[n], lines[m] = lines[m], lines[n]
    return b"\n".join(lines)


@long_enough
@fuzz(800)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutations_of_the_example_file_load_or_are_refused_cleanly(register: Register, mutations: list[Any]) -> None:
    data = EXAMPLE_TEXT.encode()
    for how in mutations:
        data = mutate(data, how)
    register.try_load(data)


VOCABULARY = sorted({key for _section, key in FIELDS} | set(SECTIONS) | {"site", "extra", "antennas"})
ENTRY = st.dictionaries(st.sampled_from(VOCABULARY), SCALARS | st.lists(SCALARS, max_size=3), max_size=8)
DOCUMENT = st.dictionaries(
    st.sampled_from([*SECTIONS, "site", "nonsense"]),
    st.lists(ENTRY, max_size=3) | ENTRY | SCALARS,
    max_size=5,
)


@long_enough
@fuzz(500)
@given(document=DOCUMENT)
def test_documents_from_the_schemas_vocabulary_load_or_are_refused_cleanly(
    register: Register, document: dict[str, Any]
) -> None:
    data = dumped(document)
    if data:
        register.try_load(data)


def test_the_fuzzing_reached_both_outcomes(register: Register) -> None:
    """Runs after the generators (module order): files were refused, and some loaded (they reached the
    services, not only the schema)."""
    if register.refused + register.loaded < 1000:
        pytest.skip("run together with the generators above")
    print(f"fuzz: {register.refused} refused, {register.loaded} loaded")
    assert register.refused > 1000
    assert register.loaded > 20


# The malformed files issue 10 lists, each with the line and field the error must name.


def replaced(old: str, new: str) -> bytes:
    assert old in EXAMPLE_TEXT, old
    return EXAMPLE_TEXT.replace(old, new, 1).encode()


EXPLICIT = [
    (
        "not UTF-8",
        replaced('name = "Archive"', 'name = "ArchXive"').replace(b"ArchXive", b"Arch\xffive"),
        "venues[2].name",
        "not UTF-8",
        'name = "Arch',
    ),
    ("UTF-16", EXAMPLE_TEXT.encode("utf-16"), "encoding", "not UTF-8", None),
    (
        "username = 5",
        replaced('username = "gus"', "username = 5"),
        "people[4].username",
        "expected a string",
        "username =",
    ),
    (
        "an int where a list is expected",
        replaced('roles = ["guard"]', "roles = 3"),
        "people[4].roles",
        "expected a list",
        "roles =",
    ),
    (
        "a list where a scalar is expected",
        replaced('ceiling = "secret"', 'ceiling = ["secret"]'),
        "venues[0].ceiling",
        "expected a level name",
        "ceiling =",
    ),
    (
        "a table where an array of tables is expected",
        b'[venues]\ncode = "a"\nceiling = "secret"\n',
        "venues",
        "expected a list",
        "[venues]",
    ),
    (
        "an unknown key",
        replaced("strike_ms = 3000", "strike_s = 3"),
        "devices[0].strike_s",
        "did you mean strike_ms",
        "strike_s =",
    ),
    ("an unknown section", replaced("[site]", "[sites]"), "sites", "unknown key", "[sites]"),
    (
        "a missing required value",
        replaced('epc = "E28011700000020000000003"\n', ""),
        "items[2].epc",
        "is required",
        "[[items]]",
    ),
    (
        "a duplicated venue",
        replaced('code = "archive"', 'code = "corridor"'),
        "venues[2].code",
        "already given by venues[0]",
        "code =",
    ),
    (
        "a duplicated EPC",
        replaced("E28011700000020000000005", "E28011700000020000000004"),
        "items[4].epc",
        "item.epc_unique",
        "epc =",
    ),
    (
        "a duplicated key",
        replaced('name = "Archive"', 'name = "Archive"\nname = "Again"'),
        "venues[2].name",
        "TOML syntax",
        'name = "Again"',
    ),
    (
        "a huge number",
        replaced("uses = 50", "uses = 99999999999999999999999999"),
        "approvals[0].uses",
        "at most 1000000",
        "uses =",
    ),
    (
        "a number too long to read",
        replaced("uses = 50", "uses = " + "9" * 5000),
        "approvals[0].uses",
        "too long",
        "uses =",
    ),
    (
        "a huge string",
        replaced('name = "Gus Guard"', 'name = "' + "x" * 1_000_000 + '"'),
        "people[4].name",
        "at most 200 characters",
        "name =",
    ),
    (
        "a very long list",
        replaced('badges = ["10001"]', "badges = [" + ", ".join(f'"{n}"' for n in range(99_999)) + "]"),
        "people[0].badges",
        "at most 64 entries",
        "badges =",
    ),
    (
        "deep nesting",
        (EXAMPLE_TEXT + "\n[[venues]]\ncode = " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
        "venues[5].code",
        "nested too deeply",
        "code = [[[",
    ),
    (
        "deep inline tables",
        replaced('source = "synthetic"', "source = " + "{a=" * 3000 + "1" + "}" * 3000),
        "devices[4].source",
        "nested too deeply",
        "source =",
    ),
    (
        "a NUL character",
        replaced('name = "Archive"', 'name = "Arc\\u0000hive"'),
        "venues[2].name",
        "control characters",
        "name =",
    ),
    ("not a finite number", replaced("x_m = 10.0", "x_m = inf"), "portals[0].x_m", "finite", "x_m ="),
    (
        "a time without a zone",
        replaced("valid_from = 2026-01-01T00:00:00Z", "valid_from = 2026-01-01T00:00:00"),
        "approvals[0].valid_from",
        "time zone",
        "valid_from =",
    ),
    (
        "a time outside the calendar in UTC",
        replaced("valid_from = 2026-01-01T00:00:00Z", "valid_from = 0001-01-01T00:00:00+01:00"),
        "approvals[0].valid_from",
        "years",
        "valid_from =",
    ),
    (
        "a secret in the file",
        replaced("strike_ms = 3000", 'scbk = "00112233445566778899AABBCCDDEEFF"'),
        "devices[0].scbk",
        "secrets do not go in the site file",
        "scbk =",
    ),
    (
        "a reserved venue code",
        replaced('code = "corridor"', 'code = "outside"'),
        "venues[0].code",
        "reserved",
        "code =",
    ),
    (
        "an antenna side misspelt",
        replaced('{ number = 3, side = "ignore" }', '{ number = 3, side = "ignored" }'),
        "devices[6].antennas[2].side",
        "expected one of",
        '{ number = 3, side = "ignored" }',
    ),
    ("a file far too large", b"# " + b"x" * (9 * 2**20), "file", "larger than", None),
]


@pytest.mark.parametrize(
    ("data", "where", "words", "line_text"), [c[1:] for c in EXPLICIT], ids=[c[0] for c in EXPLICIT]
)
def test_each_kind_of_malformed_file_gets_one_clear_line(
    register: Register, data: bytes, where: str, words: str, line_text: str | None
) -> None:
    error = register.try_load(data)
    assert error is not None
    assert error.where == where, error
    assert words in error.message, error
    if line_text is not None:
        named = data.split(b"\n")[error.line - 1].decode("utf-8", errors="replace").strip()  # type: ignore[operator]
        assert named.startswith(line_text), (error, named[:80])
    assert len(str(error)) < 600


def test_a_file_that_cannot_be_read_is_named(register: Register, tmp_path: Path) -> None:
    with pytest.raises(SiteFileError) as caught, db.transaction(register.factory) as session:
        load(session, "fuzz", tmp_path)  # a directory
    assert caught.value.where == "file" and "cannot be read" in caught.value.message


def test_an_empty_file_a_byte_order_mark_and_windows_line_ends_are_fine(register: Register) -> None:
    assert register.try_load(b"") is None
    assert register.try_load(b"\xef\xbb\xbf" + EXAMPLE_TEXT.encode()) is None
    assert register.try_load(EXAMPLE_TEXT.replace("\n", "\r\n").encode()) is None


def test_lines_are_counted_as_toml_counts_them(register: Register) -> None:
    """Only "\n" ends a line: a line separator inside a string does not shift the line named."""
    data = replaced('reason = "Briefing at the ministry"', 'reason = "Briefing\u2028at\u2029the ministry"')
    data = data.replace(b'uses = 50\ndestination_text', b'uses = "fifty"\ndestination_text')
    error = register.try_load(data)
    assert error is not None and error.where == "approvals[2].uses"
    assert data.split(b"\n")[error.line - 1] == b'uses = "fifty"'  # type: ignore[operator]
