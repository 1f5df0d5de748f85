import itertools

import pytest

from vision.shred_levels import LEVELS, SecurityLevel, find_level, levels_with


def test_paper_levels_tighten_with_each_step() -> None:
    areas = [LEVELS[f"P-{i}"].max_area_mm2 for i in range(1, 8)]
    widths = [LEVELS[f"P-{i}"].max_width_mm for i in range(1, 8)]
    assert all(a is not None and b is not None and a > b for a, b in itertools.pairwise(areas))
    assert all(w is not None for w in widths)


def test_every_family_has_seven_levels_and_damage_levels_are_not_measurable() -> None:
    for family in "POHTEF":
        assert all(f"{family}-{i}" in LEVELS for i in range(1, 8))
    assert not LEVELS["H-1"].measurable
    assert LEVELS["H-4"].measurable


def test_nsa_paper_specification_is_one_by_five_millimetres() -> None:
    nsa = find_level("nsa-02-01")
    assert nsa is not None
    assert (nsa.max_width_mm, nsa.max_length_mm, nsa.max_area_mm2) == (1.0, 5.0, 5.0)
    assert find_level("X-9") is None


def test_a_site_can_add_and_override_levels_from_toml() -> None:
    table = levels_with(
        '[levels."site-1"]\nmedia = "paper"\nmax_area_mm2 = 4\nmax_width_mm = 0.8\n'
        '[levels."P-6"]\nmedia = "paper"\nmax_area_mm2 = 9.5\nmax_width_mm = 1.0\nconfirmed = true\n'
    )
    assert table["SITE-1"] == SecurityLevel("SITE-1", "paper", 4.0, 0.8)
    assert table["P-6"].max_area_mm2 == 9.5 and table["P-6"].confirmed
    assert LEVELS["P-6"].max_area_mm2 == 10.0  # the built-in table is untouched


@pytest.mark.parametrize(
    "text",
    ['[levels."X"]\nmax_area_mm2 = -1\n', '[levels."X"]\nmax_aera_mm2 = 3\n', "[levels\nbroken"],
)
def test_malformed_level_files_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        levels_with(text)
