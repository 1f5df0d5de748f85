"""Field validation shared by the services and the site loader. Each failure names its field."""

from __future__ import annotations

import re

from registry.errors import InvalidInput
from registry.levels import Level

_HEX = re.compile(r"^[0-9A-F]+$")
# EPC memory is word (16-bit) aligned; Gen2 EPCs run from 96 to 496 bits.
EPC_MIN_BITS, EPC_MAX_BITS = 96, 496


def epc(value: str, field: str = "epc") -> str:
    """Upper-case hex of a whole number of 16-bit words, 96..496 bits."""
    cleaned = str(value).strip().upper().replace(" ", "").replace(":", "")
    if not cleaned or not _HEX.match(cleaned):
        raise InvalidInput(field, f"{value!r} is not hexadecimal")
    bits = len(cleaned) * 4
    if bits % 16 or not EPC_MIN_BITS <= bits <= EPC_MAX_BITS:
        raise InvalidInput(
            field, f"{value!r} is {bits} bits; an EPC is {EPC_MIN_BITS}..{EPC_MAX_BITS} bits in 16-bit words"
        )
    return cleaned


def tid(value: str | None, field: str = "tid") -> str | None:
    """A tag's TID: upper-case hex, 32..96 bits in 16-bit words, or None."""
    if value is None or value == "":
        return None
    cleaned = str(value).strip().upper().replace(" ", "")
    bits = len(cleaned) * 4
    if not _HEX.match(cleaned) or bits % 16 or not 32 <= bits <= 96:
        raise InvalidInput(field, f"{value!r} is not a TID (hex, 32..96 bits in 16-bit words)")
    return cleaned


def level(value: object, field: str = "level") -> Level:
    try:
        return Level.parse(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise InvalidInput(field, str(exc)) from None


def choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise InvalidInput(field, f"{value!r} is not one of: {', '.join(allowed)}")
    return value
