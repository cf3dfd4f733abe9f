"""Alarm-system performance KPIs from the journal (ISA-18.2 section 16, EEMUA 191).

Pure: the journal (transitions), the window and ``now`` come in, a JSON-ready dict comes out.
An *activation* is a transition into ACTIVE_UNACK from a state that was not active; the rate
KPIs, floods, chattering and the top-10 count activations, not acknowledgements.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from analytics.alarm_config import AlarmConfig
from analytics.alarm_types import AlarmState, AlarmTransition

HOUR_S = 3600.0
TOP_N = 10


def alarm_kpis(journal: Iterable[AlarmTransition], now: float, window_s: float = 86400.0,
               config: AlarmConfig | None = None) -> dict[str, Any]:
    """KPIs over ``[now - window_s, now)``; the journal may hold older transitions too (they
    only serve to know which alarms are still standing and since when)."""
    config = config or AlarmConfig()
    start = now - window_s
    transitions = sorted(journal, key=lambda t: t.seq)
    activations = [t for t in transitions if t.is_activation and start <= t.time < now]
    times = np.array([t.time for t in activations], dtype=np.float64)
    per_period = _counts(times, start, now, config.flood_period_s)
    per_hour = _counts(times, start, now, HOUR_S)
    flood_periods = int(np.count_nonzero(per_period > config.flood_threshold))
    standing = _standing(transitions)
    stale = sorted(key for key, since in standing.items() if now - since > config.stale_after_s)
    chattering = _chattering(activations, config)
    per_tag = Counter(t.tag_id for t in activations)
    top = sorted(per_tag.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    return {
        "window_start": start,
        "window_end": now,
        "activations": len(activations),
        "per_10min": {"average": _avg(per_period, window_s, config.flood_period_s),
                      "max": int(per_period.max(initial=0))},
        "per_hour": {"average": _avg(per_hour, window_s, HOUR_S),
                     "max": int(per_hour.max(initial=0))},
        "flood": {"threshold": config.flood_threshold, "periods": int(len(per_period)),
                  "periods_in_flood": flood_periods,
                  "percent_in_flood": round(100.0 * flood_periods / len(per_period), 2)
                  if len(per_period) else 0.0},
        "chattering": {"count": len(chattering), "alarms": chattering},
        "stale": {"count": len(stale), "alarms": stale},
        "top_tags": [{"tag_id": tag_id, "activations": n} for tag_id, n in top],
        "standing": len(standing),
    }


def _counts(times: np.ndarray, start: float, now: float, period_s: float) -> np.ndarray:
    """Activations per clock-aligned period (10:00-10:10, ...) touching ``[start, now)``."""
    first = int(np.floor(start / period_s))
    last = int(np.ceil(now / period_s)) - 1
    n = max(last - first + 1, 1)
    bucket = np.floor(times / period_s).astype(np.int64) - first
    return np.bincount(bucket[(bucket >= 0) & (bucket < n)], minlength=n)


def _avg(counts: np.ndarray, window_s: float, period_s: float) -> float:
    if len(counts) == 0:
        return 0.0
    return round(float(counts.sum()) * period_s / window_s, 3)


def _standing(transitions: list[AlarmTransition]) -> dict[str, float]:
    """Alarm keys active at the end of the journal, with the time they became active."""
    since: dict[str, float] = {}
    for t in transitions:
        if t.to_state in (AlarmState.UNACK, AlarmState.ACKED):
            if t.is_activation or t.key not in since:
                since[t.key] = t.time
        else:
            since.pop(t.key, None)
    return since


def _chattering(activations: list[AlarmTransition], config: AlarmConfig) -> list[str]:
    """Alarm keys with ``chattering_activations`` activations inside ``chattering_window_s``."""
    by_key: dict[str, list[float]] = defaultdict(list)
    for t in activations:
        by_key[t.key].append(t.time)
    n = config.chattering_activations
    out = []
    for key, times in by_key.items():
        if len(times) < n:
            continue
        arr = np.sort(np.array(times))
        if np.any(arr[n - 1:] - arr[: len(arr) - n + 1] <= config.chattering_window_s):
            out.append(key)
    return sorted(out)
