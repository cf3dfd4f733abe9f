"""The per-tag backlog of live MQTT values: bounded by the catalog, newest value kept,
longest waiting tag first."""

from __future__ import annotations

import numpy as np

from gateway.northbound.mqtt.backlog import ValueBacklog


def put(backlog: ValueBacklog, tags: list[int], values: list[float], now: float) -> int:
    n = len(tags)
    return backlog.put(np.array(tags), np.array(values), np.full(n, 192), np.zeros(n),
                       np.full(n, now), now)


def test_a_tag_holds_at_most_one_value_whatever_arrives():
    backlog = ValueBacklog(tags=5)
    for second in range(1000):
        put(backlog, [0, 1, 2, 3, 4], [float(second)] * 5, now=float(second))
    assert len(backlog) == 5
    assert backlog.dropped == 5 * 999
    assert backlog.value.tolist() == [999.0] * 5


def test_a_newer_value_replaces_the_older_and_counts_it_dropped():
    backlog = ValueBacklog(tags=3)
    assert put(backlog, [1], [10.0], now=0.0) == 0
    assert put(backlog, [1, 2], [11.0, 20.0], now=1.0) == 1
    tags = backlog.take(10)
    assert backlog.value[tags].tolist() == [11.0, 20.0]
    assert backlog.dropped == 1


def test_the_longest_waiting_tag_leaves_first():
    backlog = ValueBacklog(tags=4)
    put(backlog, [3], [1.0], now=0.0)
    put(backlog, [0, 1], [1.0, 1.0], now=1.0)
    put(backlog, [3, 2], [2.0, 1.0], now=2.0)  # tag 3 keeps its place
    assert backlog.take(1).tolist() == [3]
    assert backlog.take(2).tolist() == [0, 1]
    assert backlog.take(5).tolist() == [2]
    assert len(backlog) == 0


def test_take_respects_the_limit_and_leaves_the_rest_waiting():
    backlog = ValueBacklog(tags=10)
    put(backlog, list(range(10)), [0.0] * 10, now=0.0)
    assert len(backlog.take(4)) == 4
    assert len(backlog) == 6
    assert backlog.take(0).tolist() == []
    assert len(backlog) == 6


def test_clear_counts_what_was_waiting_as_dropped():
    backlog = ValueBacklog(tags=4)
    put(backlog, [0, 2], [1.0, 2.0], now=0.0)
    assert backlog.clear() == 2
    assert len(backlog) == 0
    assert backlog.dropped == 2
    assert backlog.take(4).tolist() == []
