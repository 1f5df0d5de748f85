"""Shred particle-size security levels as data (DIN 66399-2 / ISO/IEC 21964-2, NSA/CSS 02-01).

Levels H-1..H-3, T-1, E-1 and E-2 are damage levels judged by eye and carry no size limit, so a camera
cannot verify them. `confirmed` is False where the figure comes from memory of the standard and was not
checked against its text (see destruction.md); verdicts still use it, reports say so.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SecurityLevel:
    name: str
    media: str
    max_area_mm2: float | None
    max_width_mm: float | None = None
    max_length_mm: float | None = None
    confirmed: bool = False

    @property
    def measurable(self) -> bool:
        return self.max_area_mm2 is not None


def _series(prefix: str, media: str, areas: tuple[float | None, ...], confirmed: bool = False) -> list[SecurityLevel]:
    return [SecurityLevel(f"{prefix}-{i}", media, area, confirmed=confirmed) for i, area in enumerate(areas, 1)]


_PAPER = [
    SecurityLevel("P-1", "paper", 2000.0, max_width_mm=12.0),
    SecurityLevel("P-2", "paper", 800.0, max_width_mm=6.0),
    SecurityLevel("P-3", "paper", 320.0, max_width_mm=2.0, confirmed=True),
    SecurityLevel("P-4", "paper", 160.0, max_width_mm=6.0, confirmed=True),
    SecurityLevel("P-5", "paper", 30.0, max_width_mm=2.0, confirmed=True),
    SecurityLevel("P-6", "paper", 10.0, max_width_mm=1.0),
    SecurityLevel("P-7", "paper", 5.0, max_width_mm=1.0, confirmed=True),
]

LEVELS: dict[str, SecurityLevel] = {
    level.name: level
    for level in [
        *_PAPER,
        *_series("O", "optical", (2000.0, 800.0, 160.0, 30.0, 10.0, 5.0, 0.2)),
        *_series("H", "hard disk", (None, None, None, 2000.0, 320.0, 10.0, 5.0)),
        *_series("T", "magnetic", (None, 2000.0, 320.0, 160.0, 30.0, 10.0, 2.5)),
        *_series("E", "electronic", (None, None, 160.0, 30.0, 10.0, 1.0, 0.5)),
        *_series("F", "film", (160.0, 30.0, 10.0, 2.5, 1.0, 0.5, 0.2)),
        # NSA/CSS evaluated paper shredders: no particle larger than 1 mm x 5 mm.
        SecurityLevel("NSA-02-01", "paper", 5.0, max_width_mm=1.0, max_length_mm=5.0, confirmed=True),
    ]
}


def find_level(name: str, levels: Mapping[str, SecurityLevel] = LEVELS) -> SecurityLevel | None:
    return levels.get(name.strip().upper())


def levels_with(toml_text: str, base: Mapping[str, SecurityLevel] = LEVELS) -> dict[str, SecurityLevel]:
    """The built-in table extended or overridden by an operator's TOML, one table per level:

        [levels."SITE-1"]
        media = "paper"
        max_area_mm2 = 4.0
        max_width_mm = 0.8

    Raises ValueError on a malformed file (configuration is checked at load time, not per frame).
    """
    try:
        document = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"levels file is not valid TOML: {error}") from error
    merged = dict(base)
    for name, entry in document.get("levels", {}).items():
        unknown = set(entry) - {"media", "max_area_mm2", "max_width_mm", "max_length_mm", "confirmed"}
        if unknown:
            raise ValueError(f"level {name}: unknown keys {sorted(unknown)}")
        limits = [entry.get(k) for k in ("max_area_mm2", "max_width_mm", "max_length_mm")]
        if any(v is not None and (not isinstance(v, int | float) or v <= 0) for v in limits):
            raise ValueError(f"level {name}: limits must be positive numbers")
        key = name.strip().upper()
        merged[key] = SecurityLevel(
            key,
            str(entry.get("media", "")),
            *(None if v is None else float(v) for v in limits),
            confirmed=bool(entry.get("confirmed", False)),
        )
    return merged
