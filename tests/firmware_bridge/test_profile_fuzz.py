"""Profiles: the TOML parser accepts the shipped maps and rejects anything else with ProfileError only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import ProfileError
from firmware_bridge.modbus.profile import Point, Table, load_profile, parse_profile, shipped_profiles

REJECTED = {"count": 0}


def test_shipped_profiles_say_the_map_is_custodians_own() -> None:
    from importlib import resources

    assert set(shipped_profiles()) >= {"shredder_generic", "degausser_generic"}
    for name in shipped_profiles():
        text = resources.files("firmware_bridge.profiles").joinpath(f"{name}.toml").read_text()
        assert "Custodian's own" in text
        assert load_profile(name).name == name


@given(st.text(max_size=400))
def test_random_text_raises_only_profile_error(text: str) -> None:
    try:
        parse_profile(text)
    except ProfileError:
        REJECTED["count"] += 1


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_profile_error(data: bytes) -> None:
    try:
        parse_profile(data.decode("latin-1"))
    except ProfileError:
        REJECTED["count"] += 1


def test_fuzzing_did_reject_inputs() -> None:
    # Runs after the two property tests in file order; they must have exercised the error path.
    assert REJECTED["count"] > 0


POINT_FIELDS = st.fixed_dictionaries({
    "type": st.sampled_from(["coil", "discrete", "holding", "input", "bogus", 3]),
    "address": st.one_of(st.integers(-5, 70000), st.text(max_size=3)),
    "words": st.integers(0, 3),
    "scale": st.one_of(st.floats(allow_nan=True), st.integers(-2, 5)),
})


@given(POINT_FIELDS)
def test_structured_but_wrong_points_raise_only_profile_error(fields: dict[str, object]) -> None:
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') if not isinstance(v, float) or v == v else f"{k} = nan"
                     for k, v in fields.items())
    text = f'[device]\nname = "x"\nkind = "shredder"\n[points.p]\n{body}\n'
    with pytest.raises(ProfileError):
        parse_profile(text)  # never a complete shredder map, so always rejected, but only this way


@given(st.integers(0, 2**32 - 1))
def test_two_word_values_round_trip(value: int) -> None:
    point = Point("counter", Table.INPUT, 0, words=2)
    raw = point.encode(value)
    assert len(raw) == 2 and all(0 <= w <= 0xFFFF for w in raw)
    assert point.decode(raw) == value


@given(st.floats(0, 6553.5))
def test_scaled_values_round_trip_within_one_step(value: float) -> None:
    point = Point("cutting_size", Table.HOLDING, 0, scale=0.1, unit="mm")
    assert abs(point.decode(point.encode(value)) - value) <= 0.05 + 1e-9


def test_overlapping_points_are_rejected() -> None:
    base = load_profile("shredder_generic")
    text = ['[device]\nname = "o"\nkind = "shredder"']
    for p in base.points.values():
        address = 0 if p.name == "motor_current" else p.address  # collides with the 32-bit counter
        text.append(f'[points.{p.name}]\ntype = "{p.table}"\naddress = {address}\nwords = {p.words}')
    with pytest.raises(ProfileError, match="overlaps"):
        parse_profile("\n".join(text))


@pytest.mark.parametrize("scale", ["nan", "inf", "0", "-1", "true"])
def test_non_positive_or_non_finite_scale_is_rejected(scale: str) -> None:
    with pytest.raises(ProfileError, match="scale"):
        parse_profile(f'[device]\nname="x"\nkind="shredder"\n[points.p]\ntype="input"\naddress=0\nscale={scale}\n')
