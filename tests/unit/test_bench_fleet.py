"""The fleet benchmark's own bookkeeping: value keys, the loss/duplicate reconciliation, the
parsing of a binary COPY of one bigint column and the drain profile's summary (bench/fleet.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bench.fleet import TAG_BITS, parse_int8_copy, reconcile, summarize_profile, value_keys

BASE_US = 1_796_000_000_000_000


def keys(rows: list[tuple[int, int]]) -> np.ndarray:
    """Keys of hand-built (second, tag index) values."""
    seconds = np.array([s for s, _ in rows], dtype=np.int64)
    tags = np.array([t for _, t in rows], dtype=np.int64)
    return value_keys(BASE_US + seconds * 1_000_000, tags, BASE_US)


def test_keys_tell_tags_and_times_apart():
    k = keys([(0, 0), (0, 1), (1, 0), (1, 1)])
    assert len(set(k.tolist())) == 4
    assert k[1] - k[0] == 1 and k[2] - k[0] == 1_000_000 << TAG_BITS


def test_tag_index_outside_the_key_space_is_refused():
    with pytest.raises(ValueError, match="tag_index"):
        value_keys(np.array([BASE_US]), np.array([1 << TAG_BITS]), BASE_US)


def test_identical_sets_reconcile_exactly():
    expected = keys([(s, t) for s in range(5) for t in range(3)])
    rec = reconcile(expected, expected[::-1].copy())
    assert (rec.expected, rec.landed, rec.lost, rec.duplicated, rec.unexpected) == (15, 15, 0, 0, 0)
    assert rec.exact


def test_lost_duplicated_and_unexpected_rows_are_counted_apart():
    expected = keys([(0, 0), (0, 1), (1, 0), (1, 1)])
    # (0, 1) missing, (1, 0) twice, (1, 1) three times, (9, 0) never accepted.
    landed = keys([(0, 0), (1, 0), (1, 0), (1, 1), (1, 1), (1, 1), (9, 0)])
    rec = reconcile(expected, landed)
    assert (rec.lost, rec.duplicated, rec.unexpected) == (1, 3, 1)
    assert rec.landed == 7 and not rec.exact


def test_a_value_the_store_holds_twice_must_land_twice():
    expected = keys([(0, 0), (0, 0), (1, 0)])
    assert reconcile(expected, keys([(0, 0), (0, 0), (1, 0)])).exact
    rec = reconcile(expected, keys([(0, 0), (1, 0)]))
    assert (rec.lost, rec.repeated_in_store) == (1, 1)


def test_an_empty_database_loses_everything():
    rec = reconcile(keys([(0, 0), (1, 0)]), np.empty(0, np.int64))
    assert (rec.lost, rec.landed, rec.unexpected) == (2, 0, 0)


def test_binary_copy_of_one_bigint_column():
    values = [0, 1, -5, 2**62]
    payload = (b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
               + b"".join(struct.pack(">hiq", 1, 8, v) for v in values) + struct.pack(">h", -1))
    assert parse_int8_copy(payload).tolist() == values
    with pytest.raises(ValueError, match="binary COPY"):
        parse_int8_copy(b"not a copy stream")


def test_profile_summary_shares_functions_by_samples_on_and_atop_the_stack():
    raw = "\n".join([
        "thread (101);run (a.py:1);copy (b.py:7);select (selectors.py:3) 6",
        "thread (101);run (a.py:2);encode (c.py:9) 3",
        "thread (102);encode (c.py:10) 1",
        "not a sample line",
    ])
    summary = summarize_profile(raw)
    assert summary["samples"] == 10
    inclusive = {f["function"]: f["share"] for f in summary["inclusive"]}
    own = {f["function"]: f["share"] for f in summary["self"]}
    # Lines of one function are one entry; a thread's id is not a function.
    assert inclusive == {"thread": 1.0, "run (a.py)": 0.9, "copy (b.py)": 0.6,
                         "select (selectors.py)": 0.6, "encode (c.py)": 0.4}
    assert own == {"select (selectors.py)": 0.6, "encode (c.py)": 0.4}
