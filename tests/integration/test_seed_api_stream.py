"""The SSE stream's per-client bound: a slow client loses its oldest events, counted."""

from __future__ import annotations

from gateway.northbound.http.stream import StreamClient, StreamHub, encode_event


def test_a_full_client_queue_drops_its_oldest_event_and_counts_it():
    client = StreamClient(max_events=2)
    for n in range(3):
        client.put(encode_event("values", {"n": n}, n))
    assert client.dropped == 1
    assert [b'"n":1' in f or b'"n":2' in f for f in client.queue] == [True, True]
    assert b'"n":1' in client.queue[0]


def test_the_hub_counts_drops_across_clients():
    hub = StreamHub(queue_events=1)
    slow, fast = StreamClient(1), StreamClient(1)
    hub.clients |= {slow, fast}
    hub.publish("alarm", {"seq": 1})
    fast.queue.clear()
    hub.publish("alarm", {"seq": 2})
    assert (slow.dropped, fast.dropped, hub.dropped) == (1, 0, 1)


def test_an_event_frame_is_sse_with_id_name_and_one_json_line():
    frame = encode_event("alarm", {"tag_id": "TI-101"}, 7).decode()
    assert frame == 'id: 7\nevent: alarm\ndata: {"tag_id":"TI-101"}\n\n'
