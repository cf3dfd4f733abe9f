"""Quality codes and the reasons for non-good quality.

The seed's own scale: 192 good, 128 doubtful, 64 bad (OPC DA's quality byte families).
A value is carried with its code everywhere; analytics select good values with
:func:`good_mask` rather than testing codes by hand, so a bad value cannot pass as good.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Quality(IntEnum):
    GOOD = 192
    DOUBTFUL = 128
    BAD = 64


class Reason(IntEnum):
    """Why a value is not good. Stored as a uint8 column beside the quality code."""

    NONE = 0
    TIMEOUT = 1
    DISCONNECTED = 2
    MODBUS_EXCEPTION = 3
    MALFORMED_RESPONSE = 4
    NOT_FINITE = 5
    OUT_OF_RANGE = 6
    STALE = 7
    DEVICE_BAD = 8  # the device itself reported Bad (OPC-UA StatusCode family Bad)
    DEVICE_UNCERTAIN = 9  # the device reported Uncertain
    NOT_READ = 10  # no value yet (e.g. subscription has not delivered)
    PROTOCOL_ERROR = 11


QUALITY_DTYPE = np.uint8
REASON_DTYPE = np.uint8


def good_mask(quality: np.ndarray) -> np.ndarray:
    """True where a value may be used as a measurement."""
    return quality == Quality.GOOD


def usable_mask(quality: np.ndarray) -> np.ndarray:
    """True where a value is good or doubtful (flagged, but a real reading)."""
    return quality >= Quality.DOUBTFUL


# OPC-UA StatusCode: the two top bits give the severity (00 Good, 01 Uncertain, 10/11 Bad).
_OPCUA_SEVERITY_MASK = 0xC0000000
_OPCUA_UNCERTAIN = 0x40000000


def from_opcua_status(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map OPC-UA StatusCode values (uint32 array) to (quality, reason) arrays."""
    severity = np.asarray(codes, dtype=np.uint32) & np.uint32(_OPCUA_SEVERITY_MASK)
    quality = np.full(severity.shape, Quality.BAD, dtype=QUALITY_DTYPE)
    reason = np.full(severity.shape, Reason.DEVICE_BAD, dtype=REASON_DTYPE)
    good = severity == 0
    uncertain = severity == _OPCUA_UNCERTAIN
    quality[good] = Quality.GOOD
    reason[good] = Reason.NONE
    quality[uncertain] = Quality.DOUBTFUL
    reason[uncertain] = Reason.DEVICE_UNCERTAIN
    return quality, reason


def check_values(values: np.ndarray, quality: np.ndarray, reason: np.ndarray,
                 instrument_min: np.ndarray, instrument_max: np.ndarray) -> None:
    """Downgrade, in place, non-finite values and values outside the instrument range to bad.

    Only values that were otherwise usable are touched, so a device's own reason is kept.
    """
    usable = quality >= Quality.DOUBTFUL
    with np.errstate(invalid="ignore"):
        not_finite = usable & ~np.isfinite(values)
        out_of_range = usable & ~not_finite & ((values < instrument_min) | (values > instrument_max))
    quality[not_finite] = Quality.BAD
    reason[not_finite] = Reason.NOT_FINITE
    quality[out_of_range] = Quality.BAD
    reason[out_of_range] = Reason.OUT_OF_RANGE
