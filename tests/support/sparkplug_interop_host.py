"""A host application built on pysparkplug (an independent Sparkplug B implementation from
PyPI), so the gateway's messages are checked by code that is not ours.

pysparkplug needs paho-mqtt < 2 and the gateway paho-mqtt 2, so it cannot share the project's
virtualenv: tests/integration/sparkplug/test_sparkplug_interop.py installs it into a virtualenv of its
own (build/sparkplug-interop-venv) and runs this script there. It must not import the project.

    python sparkplug_interop_host.py GROUP_ID

Subscribes to ``spBv1.0/GROUP_ID/#`` with pysparkplug's client, which decodes each payload and
resolves aliases from the births itself; prints ``subscribed``, then one JSON line per message
as pysparkplug decoded it; exits when its standard input closes.
"""

import dataclasses
import enum
import json
import sys
import threading

import pysparkplug as psp


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def main() -> int:
    group_id = sys.argv[1]
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(client, message):
        line = {"topic": str(message.topic), "type": _plain(message.topic.message_type),
                "device": message.topic.device_id, "payload": _plain(message.payload)}
        with lock:
            print(json.dumps(line, default=str), flush=True)

    def on_connect(client):
        client.subscribe(psp.Topic(group_id=group_id, message_type="#"), psp.QoS.AT_LEAST_ONCE,
                         on_message)
        subscribed.set()

    client = psp.Client()
    client.connect("127.0.0.1", port=1883, blocking=False, callback=on_connect)
    if subscribed.wait(10):
        # paho 1.x gives no SUBACK callback through pysparkplug: a ping round trip after the
        # SUBSCRIBE on the same connection means the broker has handled it.
        client._client.publish(f"interop/{group_id}/ping", b"", qos=1).wait_for_publish(10)
        print("subscribed", flush=True)
    sys.stdin.read()
    client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
