"""EPC and TID encoding: hex strings to fixed 64-bit words that Numba can hash and compare.

An EPC is 96..496 bits in whole 16-bit words. It is stored as big-endian 64-bit words (zero padded
at the end) plus its bit length, so two EPCs are equal only if both length and words are equal.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EPC_MIN_BITS = 96
EPC_MAX_BITS = 496
EPC_MAX_WORDS = (EPC_MAX_BITS + 63) // 64

_HEX_DIGITS = frozenset("0123456789ABCDEF")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def epc_bits(epc: str) -> int | None:
    """Bit length of a well-formed EPC hex string, or None when it is malformed or of a wrong length."""
    text = epc.upper()
    bits = 4 * len(text)
    if bits < EPC_MIN_BITS or bits > EPC_MAX_BITS or bits % 16 or not set(text) <= _HEX_DIGITS:
        return None
    return bits


def epc_words(epc: str) -> list[int]:
    """Big-endian 64-bit words of a well-formed EPC (see epc_bits), last word zero padded."""
    text = epc.upper()
    padded = text + "0" * (-len(text) % 16)
    return [int(padded[i : i + 16], 16) for i in range(0, len(padded), 16)]


def words_to_epc(words: np.ndarray, bits: int) -> str:
    """Inverse of epc_words: the upper-case hex EPC of `bits` bits."""
    text = "".join(f"{int(w):016X}" for w in words[: (bits + 63) // 64])
    return text[: bits // 4]


def tid_hash(tid: str | None) -> int:
    """A non-zero 64-bit fingerprint of a TID (0 means 'no TID'); identical TIDs give identical values."""
    if not tid:
        return 0
    value = 0xCBF29CE484222325
    for byte in tid.upper().encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value or 1


def encode_epcs(epcs: list[str], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Columnar encoding of EPC strings: (words uint64[n, width], bits int16[n]).

    Malformed EPCs get bits 0 so the engine reports them as data-quality problems.
    """
    bits = np.array([epc_bits(e) or 0 for e in epcs], dtype=np.int16)
    need = max([(int(b) + 63) // 64 for b in bits] + [1])
    width = max(width or 0, need)
    words = np.zeros((len(epcs), width), dtype=np.uint64)
    for row, (epc, nbits) in enumerate(zip(epcs, bits, strict=True)):
        if nbits:
            words[row, : (int(nbits) + 63) // 64] = epc_words(epc)
    return words, bits


@njit(cache=True, nogil=True)
def hash_words(words: np.ndarray, nwords: int, bits: int) -> np.uint64:
    """Mixing hash of an EPC's words and length (the same function fills and probes the table)."""
    h = np.uint64(bits) * _MIX
    for k in range(nwords):
        h = (h ^ words[k]) * _MIX
        h ^= h >> np.uint64(29)
    return h
