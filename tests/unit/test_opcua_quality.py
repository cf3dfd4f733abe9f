"""StatusCode families and driver failures map onto quality and reason."""

from __future__ import annotations

import math

import numpy as np
import pytest
from asyncua import ua

from drivers.base import GroupPlan
from drivers.opcua.driver import classify_failure
from drivers.opcua.nodes import NodeGroup
from drivers.quality import Quality, Reason
from plant.devices import ScanGroup
from plant.schema import OpcUaAddress, Tag, TagType

RECEIVE_TS = 1_800_000_000.0


def tag(tag_id: str, lo: float | None = 0.0, hi: float | None = 600.0) -> Tag:
    return Tag(id=tag_id, name=tag_id, unit_id=None, engineering_units="°C",
               tag_type=TagType.TEMPERATURE, normal_min=40, normal_max=80,
               instrument_min=lo, instrument_max=hi,
               opcua=OpcUaAddress(node_id=f"ns=2;s=HT-305.{tag_id}"))


def node_group(*tags: Tag) -> NodeGroup:
    plan = GroupPlan(group=ScanGroup(id="ht-poll", device="scada"),
                     tag_index=np.arange(10, 10 + len(tags), dtype=np.int32), tags=tags)
    return NodeGroup.from_plan("scada", plan)


def one(status: int, value=342.0):
    nodes = node_group(tag("TI-306"))
    data_value = ua.DataValue(ua.Variant(value), StatusCode=ua.StatusCode(status))
    return nodes.to_batch([data_value], RECEIVE_TS, RECEIVE_TS)


def test_good_status_is_good_quality():
    batch = one(ua.StatusCodes.Good)
    assert batch.quality[0] == Quality.GOOD and batch.reason[0] == Reason.NONE
    assert batch.values[0] == 342.0


def test_good_with_a_sub_code_is_still_good():
    batch = one(ua.StatusCodes.GoodLocalOverride)
    assert batch.quality[0] == Quality.GOOD


def test_uncertain_last_usable_value_is_doubtful_and_keeps_its_value():
    batch = one(ua.StatusCodes.UncertainLastUsableValue)
    assert batch.quality[0] == Quality.DOUBTFUL and batch.reason[0] == Reason.DEVICE_UNCERTAIN
    assert batch.values[0] == 342.0


def test_bad_node_id_unknown_is_bad_from_the_device():
    batch = one(ua.StatusCodes.BadNodeIdUnknown, value=None)
    assert batch.quality[0] == Quality.BAD and batch.reason[0] == Reason.DEVICE_BAD


def test_bad_communication_error_is_bad_from_the_device_and_carries_no_value():
    batch = one(ua.StatusCodes.BadCommunicationError, value=17.0)
    assert batch.quality[0] == Quality.BAD and batch.reason[0] == Reason.DEVICE_BAD
    assert math.isnan(batch.values[0])


def test_good_value_outside_the_instrument_range_is_bad_out_of_range():
    batch = one(ua.StatusCodes.Good, value=650.0)
    assert batch.quality[0] == Quality.BAD and batch.reason[0] == Reason.OUT_OF_RANGE


def test_good_status_without_a_number_is_bad_not_finite():
    batch = one(ua.StatusCodes.Good, value="OVERRANGE")
    assert batch.quality[0] == Quality.BAD and batch.reason[0] == Reason.NOT_FINITE


def test_tag_without_instrument_range_accepts_any_finite_value():
    nodes = node_group(tag("TI-306", lo=None, hi=None))
    batch = nodes.to_batch([ua.DataValue(ua.Variant(1e9))], RECEIVE_TS, RECEIVE_TS)
    assert batch.quality[0] == Quality.GOOD


def test_batch_for_some_positions_uses_those_tags_indices_and_ranges():
    nodes = node_group(tag("TI-306"), tag("TI-307", lo=0.0, hi=100.0))
    batch = nodes.to_batch([ua.DataValue(ua.Variant(150.0))], RECEIVE_TS, RECEIVE_TS,
                           positions=np.array([1]))
    assert batch.tag_index.tolist() == [11]
    assert batch.reason[0] == Reason.OUT_OF_RANGE


def test_tag_without_an_opcua_address_reads_the_null_node():
    no_address = tag("TI-306").model_copy(update={"opcua": None})
    assert node_group(no_address).node_ids[0] == ua.NodeId(0, 0)


@pytest.mark.parametrize("exc, expected", [
    (TimeoutError(), (Reason.TIMEOUT, False)),
    (ua.UaStatusCodeError(ua.StatusCodes.BadTimeout), (Reason.TIMEOUT, False)),
    (ConnectionError("client is disconnected"), (Reason.DISCONNECTED, True)),
    (ua.UaStatusCodeError(ua.StatusCodes.BadSessionIdInvalid), (Reason.DISCONNECTED, True)),
    (ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations), (Reason.PROTOCOL_ERROR, False)),
])
def test_service_failures_map_to_reasons(exc, expected):
    assert classify_failure(exc) == expected
