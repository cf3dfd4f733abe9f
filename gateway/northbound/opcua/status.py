"""Our quality codes mapped back onto OPC-UA StatusCodes for the northbound server.

A SCADA client reads a StatusCode, not our (quality, reason) pair, so each reason becomes the
StatusCode that says the same thing (OPC-UA Part 4, 7.39 and Part 8, 6.3.2):

=========  ===================  ======================================================
quality    reason               StatusCode
=========  ===================  ======================================================
GOOD       any                  Good
DOUBTFUL   STALE                UncertainLastUsableValue (the device repeats a frozen value)
DOUBTFUL   OUT_OF_RANGE         UncertainEngineeringUnitsExceeded
DOUBTFUL   DEVICE_UNCERTAIN     Uncertain (the device said Uncertain; its sub-code is not kept)
DOUBTFUL   any other            UncertainSensorNotAccurate
BAD        TIMEOUT              BadTimeout
BAD        DISCONNECTED         BadNotConnected
BAD        MODBUS_EXCEPTION     BadDeviceFailure (the PLC refused the request)
BAD        MALFORMED_RESPONSE   BadCommunicationError
BAD        PROTOCOL_ERROR       BadCommunicationError
BAD        NOT_FINITE           BadSensorFailure (NaN/inf from the instrument)
BAD        OUT_OF_RANGE         BadOutOfRange (outside the instrument range)
BAD        STALE                BadNoCommunication
BAD        DEVICE_BAD           BadSensorFailure (the device said Bad; its sub-code is not kept)
BAD        NOT_READ             BadWaitingForInitialData
BAD        any other            Bad
=========  ===================  ======================================================

The mapping is a lookup table indexed by (quality, reason), so a whole column converts in
one numpy operation. Alarm severities map onto the OPC-UA 1..1000 scale: LOW 300,
MEDIUM 500, HIGH 800 (Part 9, 5.5.2 leaves the bands to the server).
"""

from __future__ import annotations

import numpy as np
from asyncua import ua

from analytics.alarm_types import Severity
from drivers.quality import Quality, Reason

_SC = ua.StatusCodes

GOOD = _SC.Good

_UNCERTAIN = {
    Reason.STALE: _SC.UncertainLastUsableValue,
    Reason.OUT_OF_RANGE: _SC.UncertainEngineeringUnitsExceeded,
    Reason.DEVICE_UNCERTAIN: _SC.Uncertain,
}
_UNCERTAIN_DEFAULT = _SC.UncertainSensorNotAccurate

_BAD = {
    Reason.TIMEOUT: _SC.BadTimeout,
    Reason.DISCONNECTED: _SC.BadNotConnected,
    Reason.MODBUS_EXCEPTION: _SC.BadDeviceFailure,
    Reason.MALFORMED_RESPONSE: _SC.BadCommunicationError,
    Reason.PROTOCOL_ERROR: _SC.BadCommunicationError,
    Reason.NOT_FINITE: _SC.BadSensorFailure,
    Reason.OUT_OF_RANGE: _SC.BadOutOfRange,
    Reason.STALE: _SC.BadNoCommunication,
    Reason.DEVICE_BAD: _SC.BadSensorFailure,
    Reason.NOT_READ: _SC.BadWaitingForInitialData,
}
_BAD_DEFAULT = _SC.Bad

ALARM_SEVERITY = {Severity.LOW: 300, Severity.MEDIUM: 500, Severity.HIGH: 800}


def _build_table() -> np.ndarray:
    """(256 quality codes x 256 reasons) -> StatusCode, uint32."""
    table = np.full((256, 256), _BAD_DEFAULT, dtype=np.uint32)
    table[Quality.GOOD, :] = GOOD
    table[Quality.DOUBTFUL, :] = _UNCERTAIN_DEFAULT
    for reason, code in _UNCERTAIN.items():
        table[Quality.DOUBTFUL, reason] = code
    for reason, code in _BAD.items():
        table[Quality.BAD, reason] = code
    table.setflags(write=False)
    return table


STATUS_TABLE = _build_table()


def status_codes(quality: np.ndarray, reason: np.ndarray) -> np.ndarray:
    """The OPC-UA StatusCode (uint32) of each (quality, reason) pair."""
    return STATUS_TABLE[np.asarray(quality, dtype=np.uint8), np.asarray(reason, dtype=np.uint8)]


def status_code(quality: int, reason: int) -> int:
    """The OPC-UA StatusCode of one value."""
    return int(STATUS_TABLE[int(quality) & 0xFF, int(reason) & 0xFF])


def is_bad(code: int) -> bool:
    """Bad family (the two top bits 10 or 11): the value must be sent as null (Part 4, 7.7.1)."""
    return code & 0x80000000 != 0
