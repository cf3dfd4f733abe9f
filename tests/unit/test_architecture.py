"""The house plan (docs/architecture.md) as a contract on the code's own imports.

Built from the source with grimp (imports under ``if TYPE_CHECKING:`` count too), so an import
circle or an arrow that runs back up the layers fails here, naming the chain.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("refineryiq", "gateway", "simulator", "analytics", "drivers", "plant")

# Top-level packages, from the top down: each may import only those below it, except that
# the simulator (a separate program) and the gateway never import each other.
FORBIDDEN = {
    "plant": {"drivers", "analytics", "simulator", "gateway", "refineryiq"},
    "drivers": {"analytics", "simulator", "gateway", "refineryiq"},
    "analytics": {"drivers.modbus", "drivers.opcua", "simulator", "gateway", "refineryiq"},
    "simulator": {"gateway", "refineryiq"},
    "gateway": {"simulator", "refineryiq"},
}

# Inside the gateway, from the top down: the daemon wires everything; the front doors
# (northbound) read the services; services use ingest, store and runtime; nothing below the
# daemon imports it.
GATEWAY_LAYERS = (
    "gateway.daemon",
    "gateway.northbound",
    "gateway.services",
    "gateway.ingest",
    "gateway.store",
    "gateway.runtime",
    "gateway.settings",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def _chain(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    chain = graph.find_shortest_chain(importer=importer, imported=imported)
    return " -> ".join(chain or ())


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_layers_above_it(graph, package):
    found = [_chain(graph, package, other) for other in sorted(FORBIDDEN[package])
             if other in graph.modules and graph.chain_exists(importer=package, imported=other,
                                                              as_packages=True)]
    assert found == []


def test_gateway_layers_import_only_downwards(graph):
    illegal = graph.find_illegal_dependencies_for_layers(layers=GATEWAY_LAYERS,
                                                         containers=set())
    found = [f"{d.importer} -> {d.imported}: " + " | ".join(" -> ".join(r.chain) for r in d.routes)
             for d in sorted(illegal, key=lambda d: (d.importer, d.imported))]
    assert found == []


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)
                                                & modules))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def test_no_import_circle_anywhere(graph):
    assert _cycles(graph, set(graph.modules)) == []


def test_the_cycle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert _cycles(graph, {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_no_service_receives_the_daemon(graph):
    importers = graph.find_modules_that_directly_import("gateway.daemon")
    assert importers <= {"refineryiq.cli"}
