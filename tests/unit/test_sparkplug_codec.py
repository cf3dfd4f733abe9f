"""The pure pieces of the Sparkplug node: topics, payloads, report by exception, session
numbers and the store-ordered stream of Batches. No broker."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.northbound.sparkplug import payloads
from gateway.northbound.sparkplug import sparkplug_b_pb2 as pb
from gateway.northbound.sparkplug.exception import ExceptionFilter, deadbands
from gateway.northbound.sparkplug.model import FIRST_TAG_ALIAS, MetricKind, NodeMetrics, build_devices
from gateway.northbound.sparkplug.session import Sequence, SessionFile
from gateway.northbound.sparkplug.stream import BatchStream
from gateway.northbound.sparkplug.topics import MessageType, check_id, parse, state_topic, topic
from gateway.store.embedded_rows import StoredBatch
from tests.support.sparkplug_node import plant_catalog

CATALOG = plant_catalog()


def test_topics_follow_the_sparkplug_namespace():
    assert topic("paraguana", MessageType.DDATA, "edge-01", "plc-1") == "spBv1.0/paraguana/DDATA/edge-01/plc-1"
    assert topic("g", MessageType.NBIRTH, "n") == "spBv1.0/g/NBIRTH/n"
    assert state_topic("scada") == "spBv1.0/STATE/scada"
    parsed = parse("spBv1.0/g/DCMD/n/plc-1")
    assert (parsed.group_id, parsed.message_type, parsed.edge_node_id, parsed.device_id) == (
        "g", MessageType.DCMD, "n", "plc-1")
    assert parse("spBv1.0/STATE/scada") is None


@pytest.mark.parametrize("bad", ["a/b", "a+", "#", ""])
def test_an_id_with_a_topic_separator_or_wildcard_is_refused(bad):
    with pytest.raises(ValueError, match="not a valid Sparkplug id"):
        check_id("device id", bad)


def test_settings_refuse_an_id_that_is_not_a_topic_level():
    from pydantic import ValidationError

    from gateway.settings.sparkplug import SparkplugSettings

    assert SparkplugSettings().enabled is False
    with pytest.raises(ValidationError, match="group_id"):
        SparkplugSettings(group_id="plant/north")


def test_ndeath_carries_only_bdseq_and_no_seq():
    payload = pb.Payload.FromString(payloads.node_death(7, 1_700_000_000_000))
    assert not payload.HasField("seq")
    assert [(m.name, m.long_value, m.datatype) for m in payload.metrics] == [("bdSeq", 7, pb.Int64)]


def test_nbirth_has_seq_zero_bdseq_and_rebirth_false():
    body = payloads.node_birth(0, 3, 1_700_000_000_000, NodeMetrics.ALL, [False, "healthy", 1.5, 2])
    payload = pb.Payload.FromString(body)
    by_name = {m.name: m for m in payload.metrics}
    assert payload.seq == 0
    assert by_name["bdSeq"].long_value == 3
    assert by_name["Node Control/Rebirth"].boolean_value is False
    assert by_name["Node Control/Rebirth"].datatype == pb.Boolean
    assert all(m.HasField("timestamp") for m in payload.metrics)


def test_device_models_number_aliases_uniquely_across_devices():
    devices = build_devices(CATALOG, {"a": CATALOG.indices(["TI-101", "FI-102"]).tolist(),
                                      "b": CATALOG.indices(["TI-101"]).tolist()})
    aliases = [m.alias for d in devices.values() for m in d.metrics]
    assert aliases == [FIRST_TAG_ALIAS, FIRST_TAG_ALIAS + 1, FIRST_TAG_ALIAS + 2]
    assert devices["a"].metrics[0].name == "CDU-101/FURNACE-100/TI-101"


def test_ddata_keeps_the_order_of_changes_and_marks_history():
    aliases = np.array([100, 101, 100])
    kinds = np.array([MetricKind.DOUBLE, MetricKind.BOOLEAN, MetricKind.DOUBLE], dtype=np.int8)
    body = payloads.device_data(5, 1, aliases, kinds, np.array([1.0, 1.0, 2.0]),
                                np.array([10.0, 1.0, np.nan]),
                                np.array([Quality.GOOD, Quality.DOUBTFUL, Quality.BAD], dtype=np.uint8),
                                np.array([0, Reason.STALE, Reason.TIMEOUT], dtype=np.uint8),
                                historical=True)
    payload = pb.Payload.FromString(body)
    assert [m.alias for m in payload.metrics] == [100, 101, 100]
    assert [m.timestamp for m in payload.metrics] == [1000, 1000, 2000]
    first, second, third = payload.metrics
    assert first.double_value == 10.0 and not first.HasField("properties")
    assert second.boolean_value is True
    assert dict(zip(second.properties.keys, [v.int_value for v in second.properties.values],
                    strict=True))["Quality"] == Quality.DOUBTFUL
    assert third.is_null
    assert all(m.is_historical for m in payload.metrics)
    assert not any(m.HasField("name") or m.HasField("datatype") for m in payload.metrics)


def test_a_command_payload_is_read_by_name_or_alias():
    payload = pb.Payload(timestamp=1)
    payload.metrics.add(name="Node Control/Rebirth", boolean_value=True)
    payload.metrics.add(alias=101, double_value=4.5)
    metrics = payloads.parse_command(payload.SerializeToString())
    assert [(m.name, m.alias, m.value) for m in metrics] == [
        ("Node Control/Rebirth", None, True), (None, 101, 4.5)]
    with pytest.raises(ValueError):
        payloads.parse_command(b"\xff\xff\xff")


def test_exception_filter_reports_moves_beyond_the_deadband_and_quality_changes():
    flt = ExceptionFilter(np.array([1.0, 0.0]))
    idx = np.array([0, 1])
    good = np.full(2, Quality.GOOD)
    assert flt.select(idx, np.array([10.0, 5.0]), good).tolist() == [True, True]
    assert flt.select(idx, np.array([10.9, 5.0]), good).tolist() == [False, False]
    assert flt.select(idx, np.array([11.1, 5.1]), good).tolist() == [True, True]
    assert flt.select(idx, np.array([11.1, 5.1]), np.full(2, Quality.DOUBTFUL)).tolist() == [True, True]
    nan = np.full(2, np.nan)
    bad = np.full(2, Quality.BAD)
    assert flt.select(idx, nan, bad).tolist() == [True, True]
    assert flt.select(idx, nan, bad).tolist() == [False, False]  # still bad, still no number


def test_exception_filter_compares_repeated_tags_scan_by_scan():
    flt = ExceptionFilter(np.array([0.0]))
    idx = np.array([0, 0, 0])
    mask = flt.select(idx, np.array([1.0, 1.0, 2.0]), np.full(3, Quality.GOOD))
    assert mask.tolist() == [True, False, True]


def test_deadband_is_the_tags_own_else_a_share_of_its_span():
    plant = CATALOG.plant
    tags = [t.model_copy(update={"deadband": 2.5}) if t.id == "TI-101" else t for t in plant.tags]
    from plant.catalog import Catalog
    catalog = Catalog.build(plant.model_copy(update={"tags": tags}))
    db = deadbands(catalog, 10.0)
    assert db[catalog.index["TI-101"]] == 2.5
    assert db[catalog.index["FI-102"]] == pytest.approx(40.0)  # 10 % of 9800..10200


def test_bdseq_goes_up_by_one_per_connect_survives_a_restart_and_wraps(tmp_path):
    session = SessionFile(tmp_path)
    assert [session.next_bd_seq() for _ in range(3)] == [0, 1, 2]
    session.save_cursor(42)
    again = SessionFile(tmp_path)
    assert again.next_bd_seq() == 3 and again.cursor == 42
    again.bd_seq = 255
    assert again.next_bd_seq() == 0


def test_seq_restarts_at_zero_with_a_birth_and_wraps_after_255():
    seq = Sequence()
    assert seq.birth() == 0
    numbers = [seq.next() for _ in range(256)]
    assert numbers[:2] == [1, 2] and numbers[254] == 255 and numbers[255] == 0


class FakeStore:
    """Batches by id, as EmbeddedStore.pending gives them."""

    def __init__(self) -> None:
        self.batches: dict[int, Batch] = {}

    async def last_batch_id(self) -> int:
        return max(self.batches, default=0)

    async def pending(self, after_id: int, max_values: int) -> list[StoredBatch]:
        return [StoredBatch(i, b) for i, b in sorted(self.batches.items()) if i > after_id][:3]


def scan(n: int) -> Batch:
    return Batch.build("g", "d", float(n), float(n), np.array([0]), np.array([float(n)]),
                       np.array([Quality.GOOD]), np.array([0]))


async def test_stream_serves_held_batches_from_the_store_then_the_queue_in_id_order():
    store = FakeStore()
    stream = BatchStream(store, cursor=0)
    for i in range(1, 6):  # accepted while holding: only in the store
        store.batches[i] = scan(i)
        await stream.accept([store.batches[i]], keep=False)
    for i in range(6, 8):  # accepted live: in the queue too
        store.batches[i] = scan(i)
        await stream.accept([store.batches[i]], keep=True)
    seen = []
    while items := await stream.take(max_values=10):
        seen += [i for i, _ in items]
        stream.done(items[-1][0])
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    assert stream.behind == 0


async def test_stream_skips_ids_the_store_no_longer_holds():
    store = FakeStore()
    stream = BatchStream(store, cursor=0)
    for i in range(1, 4):
        store.batches[i] = scan(i)
        await stream.accept([store.batches[i]], keep=False)
    del store.batches[1], store.batches[2]  # retention
    items = await stream.take(max_values=10)
    assert [i for i, _ in items] == [3] and stream.skipped == 2
