"""How the gateway's analytics result columns (``gateway.services.analytics.results``) map
onto the historian's ``kpis`` and ``energy_analysis`` columns: one table serves forwarding
(:mod:`gateway.store.postgres.outbound_kinds`) and reading back
(:mod:`gateway.store.postgres.outbound_reads`), so the two directions cannot drift apart.

Each entry is (the gateway's column, the historian's column, scale): the historian's value is
the gateway's divided by ``scale`` (the gateway's percentages are the table's fractions 0-1).
"""

from __future__ import annotations

from typing import Any

ColumnMap = tuple[tuple[str, str, float], ...]

# After (unit_id, time), which every row of both tables starts with.
KPI_COLUMNS: ColumnMap = (
    ("throughput_bpd", "throughput", 1.0),
    ("energy_efficiency", "energy_efficiency", 1.0),
    ("quality_score", "quality_score", 1.0),
    ("maintenance_score", "maintenance_score", 1.0),
    ("availability_pct", "availability", 100.0),
    ("performance_pct", "performance", 100.0),
    ("oee_quality_pct", "quality_rate", 100.0),
    ("oee_pct", "oee", 100.0),
    ("stability_index", "stability_index", 1.0),
)
ENERGY_COLUMNS: ColumnMap = (
    ("consumption_kwh", "consumption_kwh", 1.0),
    ("feed_bbl", "feed_bbl", 1.0),
    ("kwh_per_bbl", "kwh_per_bbl", 1.0),
    ("benchmark_kwh_bbl", "benchmark_kwh_bbl", 1.0),
    ("target_kwh_bbl", "target_kwh_bbl", 1.0),
    ("efficiency_score", "efficiency_score", 1.0),
    ("savings_kwh", "savings_potential", 1.0),
    ("status", "status", 1.0),
    ("recommendation", "recommendation", 1.0),
)


def gateway_names(columns: ColumnMap) -> tuple[str, ...]:
    return tuple(g for g, _, _ in columns)


def historian_names(columns: ColumnMap) -> tuple[str, ...]:
    return tuple(h for _, h, _ in columns)


def to_historian(columns: ColumnMap, row: dict[str, Any]) -> list[Any]:
    """The historian's values of ``row`` (a gateway result row), in ``columns`` order."""
    return [row[g] if scale == 1.0 or row[g] is None else row[g] / scale
            for g, _, scale in columns]


def to_gateway(columns: ColumnMap, record: Any) -> dict[str, Any]:
    """The gateway's columns of ``record`` (a historian row)."""
    return {g: record[h] if scale == 1.0 or record[h] is None else record[h] * scale
            for g, h, scale in columns}
