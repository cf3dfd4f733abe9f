"""asyncua's standard address space, built in a child process and held compressed.

``Server.init()`` builds the OPC-UA standard nodeset (6,174 nodes: types, the Server object,
...) as Python objects: about 50 MB resident for the life of the process, at any tag count,
though a running gateway touches a few hundred of those nodes. Instead, :func:`load` runs
``python -m gateway.northbound.opcua.standard_nodes`` once at start: the child builds the
nodeset with asyncua's own code and writes every node pickled and zlib-compressed to its
stdout, then exits. Each node is compressed on its own, against a preset dictionary of 32 KB
taken from the nodes themselves (the class names and structures every node pickle repeats):
about 1.1 MB for the whole nodeset, where plain per-node zlib held 5.8 MB. The server's address space holds those bytes in a
:class:`CompactNodes` mapping, which unpickles a node the first time anything (a client's
browse or read, asyncua itself) touches it and keeps it from then on, as asyncua's own
shelf-backed ``LazyLoadingDict`` does, without a file on disk. What clients see is the same
nodeset; a node is only materialised later.

If the child fails (it should not), the server builds the nodeset in-process as before, with
a warning: the gateway serves the same address space with the old memory cost.

The child costs ~3 s of CPU and ~100 MB for those seconds, once per start (the in-process
build cost the same CPU).
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import zlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from asyncua import Server, ua

from gateway.runtime.logs import get_logger

log = get_logger("gateway.northbound.opcua.standard_nodes")

MODULE = "gateway.northbound.opcua.standard_nodes"
BUILD_TIMEOUT_S = 180.0
ZDICT_BYTES = 32 * 1024  # zlib's largest preset dictionary (its window)
ZDICT_SAMPLES = 200


class CompactNodes(MutableMapping):
    """The address space's node table: nodes built by the server live in ``cache``; standard
    nodes wait in ``source`` (compressed pickles by NodeId string) until first touched."""

    def __init__(self, source: dict[str, bytes], cache: dict[ua.NodeId, Any] | None = None,
                 zdict: bytes = b""):
        self.source = source
        self.zdict = zdict  # the preset dictionary the blobs were compressed against
        self.cache: dict[ua.NodeId, Any] = {} if cache is None else cache
        # Nodes created on first touch (the address space's tags): knows(key), materialize(key)
        self.lazy: Any = None

    def __getitem__(self, key: ua.NodeId) -> Any:
        try:
            return self.cache[key]
        except KeyError:
            pass
        blob = self.source.pop(key.to_string(), None) if isinstance(key, ua.NodeId) else None
        if blob is not None:
            node = self.cache[key] = pickle.loads(decompress(blob, self.zdict))
            return node
        lazy = self.lazy
        if lazy is not None and lazy.knows(key):
            try:
                lazy.materialize(key)
            except Exception:
                log.exception("a lazy OPC-UA node could not be created", node_id=key.to_string())
            if key in self.cache:
                return self.cache[key]
        raise KeyError(key)

    def __setitem__(self, key: ua.NodeId, value: Any) -> None:
        self.cache[key] = value

    def __delitem__(self, key: ua.NodeId) -> None:
        found = self.cache.pop(key, None) is not None
        if isinstance(key, ua.NodeId):
            found = self.source.pop(key.to_string(), None) is not None or found
        if not found:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if key in self.cache:
            return True
        if not isinstance(key, ua.NodeId):
            return False
        return key.to_string() in self.source or (self.lazy is not None and self.lazy.knows(key))

    def __iter__(self) -> Iterator[ua.NodeId]:
        """The nodes created so far only (asyncua's LazyLoadingDict does the same)."""
        return iter(self.cache)

    def __len__(self) -> int:
        return len(self.cache)

    @property
    def stored_bytes(self) -> int:
        return sum(len(b) for b in self.source.values())


def compress(data: bytes, zdict: bytes) -> bytes:
    packer = zlib.compressobj(6, zdict=zdict) if zdict else zlib.compressobj(6)
    return packer.compress(data) + packer.flush()


def decompress(blob: bytes, zdict: bytes) -> bytes:
    unpacker = zlib.decompressobj(zdict=zdict) if zdict else zlib.decompressobj()
    return unpacker.decompress(blob) + unpacker.flush()


def build() -> tuple[bytes, dict[str, bytes]]:
    """The standard nodeset as (preset dictionary, {NodeId string: zlib(pickle(NodeData))})
    (run in the child)."""
    from asyncua.server.internal_server import InternalServer

    async def fill() -> Any:
        iserver = InternalServer()
        await iserver.load_standard_address_space()
        return iserver.aspace

    aspace = asyncio.run(fill())
    pickles = {node_id.to_string(): pickle.dumps(node, protocol=pickle.HIGHEST_PROTOCOL)
               for node_id, node in aspace._nodes.items()}
    # Samples spread over the whole nodeset (types, instances, the Server object).
    every = max(1, len(pickles) // ZDICT_SAMPLES)
    zdict = b"".join(list(pickles.values())[::every])[-ZDICT_BYTES:]
    return zdict, {node_id: compress(data, zdict) for node_id, data in pickles.items()}


async def _run_child() -> tuple[bytes, dict[str, bytes]]:
    """The child's nodes; the child is killed if this is cancelled (the server stopping)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", MODULE, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), BUILD_TIMEOUT_S)
    finally:
        if proc.returncode is None:  # cancelled (the server stops while starting) or too slow
            proc.kill()
            await proc.wait()  # reaped here, so the loop closes with no transport left open
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    zdict, source = pickle.loads(out)
    if not isinstance(source, dict) or not source or not isinstance(zdict, bytes):
        raise RuntimeError("the child sent no nodes")
    return zdict, source


async def install(server: Server) -> bool:
    """Make ``server.init()`` take its standard nodes from the child (call before init);
    False (and asyncua's in-process build) when the child failed."""
    try:
        zdict, source = await _run_child()
    except Exception as exc:
        log.warning("standard OPC-UA nodes built in-process (the child failed)",
                    error=f"{type(exc).__name__}: {exc}")
        return False
    iserver = server.iserver

    async def load_standard_address_space(shelf_file: Any = None) -> None:
        iserver.aspace._nodes = CompactNodes(source, zdict=zdict)

    iserver.load_standard_address_space = load_standard_address_space  # type: ignore[method-assign]
    return True


def main() -> int:
    """Child: write the compressed standard nodeset to stdout."""
    sys.stdout.buffer.write(pickle.dumps(build(), protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
