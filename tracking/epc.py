"""EPC and TID encoding: hex strings to fixed 64-bit words that Numba can hash and compare.

An EPC is 96..496 bits in whole 16-bit words. It is stored as big-endian 64-bit words (zero padded
at the end) plus its bit length, so two EPCs are equal only if both length and words are equal.
"""

from __future__ import annotations

import hashlib

import numpy as np

EPC_MIN_BITS = 96
EPC_MAX_BITS = 496

_HEX_DIGITS = frozenset("0123456789ABCDEF")
_MASK64 = (1 << 64) - 1


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


def words_to_epc(words: np.ndarray | list[int], bits: int) -> str:
    """Inverse of epc_words: the upper-case hex EPC of `bits` bits."""
    text = "".join(f"{int(w):016X}" for w in words[: (bits + 63) // 64])
    return text[: bits // 4]


def words_to_epcs(words: np.ndarray, bits: np.ndarray) -> list[str]:
    """words_to_epc of every row of words uint64[n, w] with its bit length, in one conversion."""
    step = 16 * words.shape[1]
    text = np.ascontiguousarray(words, dtype=">u8").tobytes().hex().upper()
    return [text[k * step: k * step + b // 4] for k, b in enumerate(bits.tolist())]


def tid_hash(tid: str | None) -> int:
    """A non-zero 64-bit fingerprint of a TID (0 means 'no TID'); identical TIDs give identical values.

    A hex TID is folded into 64 bits by XOR (TIDs are factory-written, so they cannot be chosen to
    collide); anything else is hashed with BLAKE2b. The length is mixed in so zero padding differs.
    """
    if not tid:
        return 0
    try:
        value = int(tid, 16)
    except ValueError:
        value = int.from_bytes(hashlib.blake2b(tid.encode(), digest_size=8).digest(), "big")
    folded = len(tid) << 56
    while value:
        folded ^= value & _MASK64
        value >>= 64
    return folded or 1


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
