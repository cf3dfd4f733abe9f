"""Request planner (fewest requests within the protocol limits, values never split) and the
scan layout built from its requests."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.modbus.codec import encode
from drivers.modbus.layout import ScanLayout
from drivers.modbus.planner import PlanError, plan_requests
from drivers.quality import Quality, Reason
from plant.schema import ByteOrder, DataType, ModbusAddress, ModbusTable, Tag, TagType


def tag(n: int, table: str = "holding", address: int = 0, type: str | None = None,
        order: str = "ABCD", scale: float = 1.0, offset: float = 0.0) -> Tag:
    data_type = type or ("bool" if ModbusTable(table).is_bits else "uint16")
    return Tag(id=f"T-{n}", name=f"tag {n}", engineering_units="-", tag_type=TagType.ANALOG,
               normal_min=0, normal_max=1,
               modbus=ModbusAddress(table=table, address=address, type=data_type, order=order,
                                    scale=scale, offset=offset))


def spans(requests) -> list[tuple[str, int, int]]:
    return [(r.table.value, r.start, r.count) for r in requests]


def test_contiguous_registers_become_one_request():
    tags = [tag(i, address=100 + i) for i in range(10)]
    assert spans(plan_requests(tags)) == [("holding", 100, 10)]


def test_unsorted_tags_are_planned_in_address_order():
    tags = [tag(0, address=5), tag(1, address=3), tag(2, address=4)]
    (request,) = plan_requests(tags)
    assert (request.start, request.count) == (3, 3)
    assert sorted(request.positions.tolist()) == [0, 1, 2]


def test_a_gap_splits_requests_when_max_gap_is_zero():
    tags = [tag(0, address=0), tag(1, address=2)]
    assert spans(plan_requests(tags, max_gap=0)) == [("holding", 0, 1), ("holding", 2, 1)]


def test_max_gap_bridges_unused_registers():
    tags = [tag(0, address=0), tag(1, address=4)]
    assert spans(plan_requests(tags, max_gap=3)) == [("holding", 0, 5)]


def test_a_gap_wider_than_max_gap_is_not_bridged():
    tags = [tag(0, address=0), tag(1, address=5)]
    assert spans(plan_requests(tags, max_gap=3)) == [("holding", 0, 1), ("holding", 5, 1)]


def test_requests_hold_at_most_max_registers():
    tags = [tag(i, address=i) for i in range(300)]
    assert spans(plan_requests(tags)) == [("holding", 0, 125), ("holding", 125, 125),
                                          ("holding", 250, 50)]


def test_configured_max_registers_is_respected():
    tags = [tag(i, address=i) for i in range(10)]
    assert spans(plan_requests(tags, max_registers=4)) == [
        ("holding", 0, 4), ("holding", 4, 4), ("holding", 8, 2)]


def test_a_multi_register_value_is_never_split_across_requests():
    # 124 uint16 then a float32 at 124..125: the float does not fit the first request.
    tags = [tag(i, address=i) for i in range(124)] + [tag(999, address=124, type="float32")]
    requests = plan_requests(tags)
    assert spans(requests) == [("holding", 0, 124), ("holding", 124, 2)]


def test_a_value_wider_than_max_registers_is_a_plan_error():
    with pytest.raises(PlanError, match="float64"):
        plan_requests([tag(0, address=10, type="float64")], max_registers=3)


def test_bit_tables_use_max_bits_not_max_registers():
    tags = [tag(i, table="coil", address=i) for i in range(2500)]
    assert spans(plan_requests(tags)) == [("coil", 0, 2000), ("coil", 2000, 500)]


def test_each_table_gets_its_own_requests():
    tags = [tag(0, "holding", 0), tag(1, "input", 0), tag(2, "coil", 0), tag(3, "discrete", 0),
            tag(4, "holding", 1)]
    assert spans(plan_requests(tags)) == [("holding", 0, 2), ("input", 0, 1), ("coil", 0, 1),
                                          ("discrete", 0, 1)]


def test_mixed_types_in_one_request_are_grouped_by_type_and_order():
    tags = [tag(0, address=0, type="int16"), tag(1, address=1, type="float32"),
            tag(2, address=3, type="int16"), tag(3, address=4, type="float32", order="CDAB")]
    (request,) = plan_requests(tags)
    assert (request.start, request.count) == (0, 6)
    kinds = {(g.data_type, g.order): (g.offsets.tolist(), g.positions.tolist()) for g in request.fields}
    assert kinds == {
        (DataType.INT16, ByteOrder.ABCD): ([0, 3], [0, 2]),
        (DataType.FLOAT32, ByteOrder.ABCD): ([1], [1]),
        (DataType.FLOAT32, ByteOrder.CDAB): ([4], [3]),
    }


def test_scale_and_offset_travel_with_each_tag():
    tags = [tag(0, address=0, scale=0.1, offset=5.0), tag(1, address=1, scale=2.0)]
    (group,) = plan_requests(tags)[0].fields
    assert group.scale.tolist() == [0.1, 2.0]
    assert group.offset.tolist() == [5.0, 0.0]


def test_every_tag_is_answered_by_exactly_one_request():
    tags = [tag(i, address=a) for i, a in enumerate([0, 1, 2, 7, 200, 201, 1000, 1003, 1124, 5000])]
    positions = np.concatenate([r.positions for r in plan_requests(tags, max_gap=4)])
    assert sorted(positions.tolist()) == list(range(len(tags)))


def test_greedy_packing_reaches_the_minimum_request_count():
    # 10,000 consecutive int16 registers: ceil(10000 / 125) = 80 requests.
    tags = [tag(i, address=20000 + i, type="int16") for i in range(10_000)]
    assert len(plan_requests(tags)) == 80


def test_empty_group_plans_no_requests():
    assert plan_requests([]) == []


def test_a_tag_without_modbus_address_is_a_plan_error():
    bare = Tag(id="X-1", name="x", engineering_units="-", tag_type=TagType.ANALOG,
               normal_min=0, normal_max=1)
    with pytest.raises(PlanError, match="X-1"):
        plan_requests([bare])


def test_more_than_125_registers_per_request_is_rejected():
    with pytest.raises(PlanError):
        plan_requests([tag(0)], max_registers=126)


def test_more_than_2000_bits_per_request_is_rejected():
    with pytest.raises(PlanError):
        plan_requests([tag(0, table="coil")], max_bits=2001)


# --------------------------------------------------------------------------- scan layout


def test_layout_decodes_every_request_into_the_group_positions():
    tags = [tag(0, address=10, type="int16", scale=0.5), tag(1, table="coil", address=3),
            tag(2, address=500, type="float32", order="CDAB"), tag(3, address=11, type="int16")]
    requests = plan_requests(tags)
    layout = ScanLayout.build(len(tags), requests)
    answers = {(ModbusTable.HOLDING, 10): [encode([-4.5], DataType.INT16, scale=0.5)[0], 7],
               (ModbusTable.HOLDING, 500): encode([2.25], DataType.FLOAT32, ByteOrder.CDAB).tolist(),
               (ModbusTable.COIL, 3): [True] + [False] * 7}
    responses = [answers[(r.table, r.start)] for r in requests]
    values, quality, reason = layout.decode(responses, [Reason.NONE] * len(requests))
    assert values.tolist() == [-4.5, 1.0, 2.25, 7.0]
    assert quality.tolist() == [Quality.GOOD] * 4 and reason.tolist() == [Reason.NONE] * 4


def test_layout_marks_only_the_tags_of_a_failed_request():
    tags = [tag(0, address=0), tag(1, address=1000), tag(2, address=1)]
    requests = plan_requests(tags)  # [0..1], [1000]
    layout = ScanLayout.build(len(tags), requests)
    values, quality, reason = layout.decode([[5, 6], None], [Reason.NONE, Reason.TIMEOUT])
    assert values[[0, 2]].tolist() == [5.0, 6.0] and np.isnan(values[1])
    assert quality.tolist() == [Quality.GOOD, Quality.BAD, Quality.GOOD]
    assert reason.tolist() == [Reason.NONE, Reason.TIMEOUT, Reason.NONE]
