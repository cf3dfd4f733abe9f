"""Byte and word orders of multi-register values, as byte permutations.

Modbus only defines 16-bit registers sent big-endian; how a device spreads a wider value over
several registers is its own choice. We name the four common layouts after a 32-bit value
whose most significant byte is A (``ABCD``); for 64-bit values the same rule extends to four
registers (``CDAB`` reverses the word order, ``BADC`` swaps the bytes inside each word,
``DCBA`` does both). A single register follows the byte rule only (``BADC``/``DCBA`` swap).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from plant.schema import ByteOrder

_WORD_SWAPPED = frozenset({ByteOrder.CDAB, ByteOrder.DCBA})
_BYTE_SWAPPED = frozenset({ByteOrder.BADC, ByteOrder.DCBA})


@cache
def wire_to_big_endian(registers: int, order: ByteOrder) -> np.ndarray:
    """Indices that pick, from the value's bytes as received, its bytes most significant first.

    The permutation is its own inverse, so it also turns big-endian bytes into wire order.
    """
    words = np.arange(registers)
    if order in _WORD_SWAPPED:
        words = words[::-1]
    inner = np.array([1, 0] if order in _BYTE_SWAPPED else [0, 1])
    permutation = (words[:, None] * 2 + inner[None, :]).ravel().astype(np.intp)
    permutation.setflags(write=False)
    return permutation
