"""Writes to devices (setpoints, commands): the one write path every front door uses.

* :mod:`.records` — a request, its outcome, the refusal reasons, the journal row;
* :mod:`.rules` — what a write must satisfy before anything is sent (pure);
* :mod:`.readback` — reading a tag back from its device;
* :mod:`.journal` — the durable write journal (``<state_dir>/writes.sqlite``);
* :mod:`.service` — :class:`~.service.WriteService`, the ``writes`` service of the daemon.

Nothing here knows about HTTP or OPC-UA: the front doors (``gateway/northbound/http/writes.py``,
``gateway/northbound/opcua/writes.py``) hand a :class:`~.records.WriteRequest` over and map the
outcome to their status codes.
"""
