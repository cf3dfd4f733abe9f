"""The benchmark report: figures from bench/results/latest.json as a short Markdown summary with
PNG charts (matplotlib), each figure beside the raw limit measured in the same run and the ratio.

    .venv/bin/python bench/report.py [--results bench/results]

Writes ``summary.md``, ``ingest.png``, ``latency.png`` and ``ratios.png`` next to latest.json and
adds a ``summary`` section (flat keys such as ``alarm_latency_p99_ms``, ``ingest_*_ratio``,
``rss_mb_at_10000_tags``) to latest.json. Figures whose benchmark did not run are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One reported figure: what was measured, the limit it is compared with, their ratio."""

    key: str
    title: str
    value: float
    unit: str
    limit: float | None = None
    limit_title: str = ""

    @property
    def ratio(self) -> float | None:
        if self.limit in (None, 0):
            return None
        return self.value / self.limit


def _get(doc: dict, *path: str) -> object | None:
    for name in path:
        if not isinstance(doc, dict) or name not in doc:
            return None
        doc = doc[name]
    return doc


def ingest_figures(latest: dict) -> list[Figure]:
    out = []
    # Overload runs (10 ms scans of 10,000 tags) show the gateway's maximum against raw.
    scenarios = [*(_get(latest, "ingest", "scenarios") or []),
                 *(_get(latest, "ingest_overload", "scenarios") or [])]
    for s in scenarios:
        gw = s["gateway"]
        name = f"{s['protocol']}_{s['tags']}_tags_{s['interval_ms']}ms"
        label = f"{s['protocol']} {s['tags']:,} tags × {s['interval_ms']} ms"
        out.append(Figure(f"ingest_{name}_values_per_s", f"ingest {label}", gw["values_per_s"],
                          "values/s", s["raw_values_per_s"], "raw driver rate"))
        out.append(Figure(f"ingest_{name}_cpu_percent", f"CPU {label}", gw["cpu_percent"], "%"))
        out.append(Figure(f"ingest_{name}_rss_mb", f"RSS {label}", gw["rss_mb"], "MB"))
        out.append(Figure(f"ingest_{name}_overruns", f"overruns {label}", gw["overruns"], "scans",
                          gw["scans"], "scans"))
    idle = _get(latest, "ingest", "idle_100_tags_1s")
    if idle:
        out.append(Figure("idle_cpu_percent_100_tags_1s", "idle CPU, 100 tags × 1 s",
                          idle["cpu_percent"], "%"))
    rss_10k = [s["gateway"]["rss_mb"] for s in _get(latest, "ingest", "scenarios") or []
               if s["tags"] == 10000]
    if rss_10k:
        out.append(Figure("rss_mb_at_10000_tags", "RSS at 10,000 tags (max of scenarios)",
                          max(rss_10k), "MB"))
    return out


def store_figures(latest: dict) -> list[Figure]:
    store = latest.get("store")
    if not store:
        return []
    raw = store.get("raw_copy_binary_values_per_s") or store.get("raw_copy_records_values_per_s")
    return [Figure("writer_rows_per_s", "historian writer rows/s", store["writer"]["values_per_s"],
                   "rows/s", raw, "raw asyncpg COPY")]


def alarm_figures(latest: dict) -> list[Figure]:
    lat = _get(latest, "alarms", "latency")
    if not lat:
        return []
    scan = lat["scan_interval_ms"]
    return [Figure("alarm_latency_p50_ms", "alarm latency p50 (scan → MQTT)", lat["p50_ms"], "ms",
                   scan, "scan interval"),
            Figure("alarm_latency_p99_ms", "alarm latency p99 (scan → MQTT)", lat["p99_ms"], "ms",
                   scan, "scan interval")]


def http_figures(latest: dict) -> list[Figure]:
    reads = _get(latest, "http", "reads")
    out = []
    if reads:
        target = reads.get("target_p99_ms")
        out.append(Figure("http_latency_p50_ms", f"HTTP p50, {reads['clients']} clients",
                          reads["p50_ms"], "ms", target, "p99 target"))
        out.append(Figure("http_latency_p99_ms", f"HTTP p99, {reads['clients']} clients",
                          reads["p99_ms"], "ms", target, "p99 target"))
    sse = _get(latest, "http", "sse")
    if sse:
        out.append(Figure("sse_fanout_spread_latency_max_ms",
                          f"SSE fan-out spread (max), {sse['clients']} clients",
                          sse["fanout_spread_max_ms"], "ms"))
    return out


def opcua_server_figures(latest: dict) -> list[Figure]:
    srv = latest.get("opcua_server")
    if not srv:
        return []
    return [Figure("northbound_opcua_update_us_per_value",
                   f"northbound OPC-UA update cost, {srv['tags']:,} tags",
                   srv["flush_per_value_us"], "µs/value",
                   srv["write_attribute_value_per_value_us"], "raw write_attribute_value"),
            Figure("northbound_opcua_flush_p99_ms", "northbound OPC-UA flush p99",
                   srv["flush_ms"]["p99"], "ms")]


def figures(latest: dict) -> list[Figure]:
    """Every figure the results hold, in report order."""
    return (ingest_figures(latest) + store_figures(latest) + alarm_figures(latest)
            + http_figures(latest) + opcua_server_figures(latest))


def summary(figs: list[Figure]) -> dict:
    """Flat JSON keys: ``<key>``, ``<key>_limit`` and ``<key>_ratio`` for each figure."""
    out: dict[str, float | None] = {}
    for f in figs:
        out[f.key] = round(f.value, 3)
        if f.limit is not None:
            out[f"{f.key}_limit"] = round(f.limit, 3)
            out[f"{f.key}_ratio"] = None if f.ratio is None else round(f.ratio, 3)
    return out


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def markdown(figs: list[Figure], latest: dict, charts: list[str], results_dir: Path = RESULTS) -> str:
    machine = next((d["machine"] for d in latest.values() if isinstance(d, dict) and "machine" in d), {})
    lines = ["# Benchmark summary", "",
             f"Machine: {machine.get('cpus', '?')} CPUs, {machine.get('machine', '?')}, "
             f"Python {machine.get('python', '?')}. Runs: "
             + ", ".join(f"{k} {v['time']}" for k, v in latest.items()
                         if isinstance(v, dict) and "time" in v) + ".", "",
             "| figure | value | limit (same run) | ratio |", "|---|---:|---:|---:|"]
    for f in figs:
        limit = f"{_fmt(f.limit)} {f.unit} ({f.limit_title})" if f.limit is not None else "—"
        lines.append(f"| {f.title} | {_fmt(f.value)} {f.unit} | {limit} | {_fmt(f.ratio)} |")
    failed = [name for name in _get(latest, "run_all", "failed") or []
              if _get(latest, name, "time") is None or _get(latest, name, "time") < _get(latest, "run_all", "time")]
    if failed:
        lines += ["", "Benchmarks that failed in this run: " + ", ".join(failed) + "."]
    lines += [""] + [f"![{c}]({c})" for c in charts] + [""]
    return "\n".join(lines + fault_lines(results_dir))


def fault_lines(results: Path) -> list[str]:
    """The fault suite's counts (``faults/*.json``, written by `make test-long`) and the newest
    soak (``soak-*.json``) as Markdown tables; nothing when neither has run."""
    lines: list[str] = []
    scenarios = sorted((results / "faults").glob("*.json"))
    if scenarios:
        lines += ["## Fault suite (`make test-long`)", "", "| scenario | claim | counts | run |",
                  "|---|---|---|---|"]
        for path in scenarios:
            doc = json.loads(path.read_text())
            counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items())
            lines.append(f"| {doc['scenario']} | {doc['claim']} | {counts} | {doc['time']} |")
        lines.append("")
    soaks = sorted(results.glob("soak-*.json"))
    if soaks:
        soak = json.loads(soaks[-1].read_text())["summary"]
        mb = 1024 * 1024
        lines += [f"## Soak ({soaks[-1].name})", "",
                  f"{soak['synthetic_tags']:,} synthetic tags for {soak['soak_s'] / 3600:.2g} h after "
                  f"a {soak['warm_up_s']:.0f} s warm-up, {soak['samples']} samples: RSS "
                  f"{soak['rss_after_warm_up_bytes'] / mb:.0f} MB after warm-up, peak in the second "
                  f"half {soak['rss_peak_second_half_bytes'] / mb:.0f} MB "
                  f"({100 * soak['rss_growth_ratio']:+.1f} %, limit +5 %), last "
                  f"{soak['rss_last_bytes'] / mb:.0f} MB; open descriptors "
                  f"{soak['open_fds_first']} → {soak['open_fds_last']}, threads "
                  f"{soak['threads_first']} → {soak['threads_last']}; /health "
                  f"{soak['health_status']}, store errors {soak['store_errors']}.", ""]
    return lines


def charts(figs: list[Figure], out_dir: Path) -> list[str]:
    """PNG charts; returns their file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ingest = [f for f in figs if f.key.startswith("ingest_") and f.key.endswith("_values_per_s")]
    if ingest:
        fig, ax = plt.subplots(figsize=(9, 4))
        x = range(len(ingest))
        ax.bar([i - 0.2 for i in x], [f.value for f in ingest], 0.4, label="gateway")
        ax.bar([i + 0.2 for i in x], [f.limit or 0 for f in ingest], 0.4, label="raw driver")
        ax.set_xticks(list(x), [f.title.removeprefix("ingest ") for f in ingest], rotation=20,
                      ha="right", fontsize=8)
        ax.set_ylabel("values/s")
        ax.set_title("Ingestion vs raw driver rate")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "ingest.png", dpi=100)
        plt.close(fig)
        written.append("ingest.png")
    latency = [f for f in figs if "latency" in f.key]
    if latency:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.barh([f.title for f in latency], [f.value for f in latency], label="measured")
        limits = [(i, f.limit) for i, f in enumerate(latency) if f.limit is not None]
        if limits:
            ax.scatter([v for _, v in limits], [i for i, _ in limits], color="red", marker="|",
                       s=300, label="limit", zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("ms (log)")
        ax.set_title("Latency")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "latency.png", dpi=100)
        plt.close(fig)
        written.append("latency.png")
    ratios = [f for f in figs if f.ratio is not None]
    if ratios:
        fig, ax = plt.subplots(figsize=(8, max(3, 0.35 * len(ratios))))
        ax.barh([f.title for f in ratios], [f.ratio for f in ratios])
        ax.axvline(1.0, color="grey", linestyle="--")
        ax.set_xlabel("value / limit")
        ax.set_title("Ratios to the limit measured in the same run")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "ratios.png", dpi=100)
        plt.close(fig)
        written.append("ratios.png")
    return written


def write_report(results: Path = RESULTS) -> Path:
    """Read latest.json, add its ``summary``, write summary.md and the charts; returns the
    Markdown path."""
    latest_path = results / "latest.json"
    latest = json.loads(latest_path.read_text())
    figs = figures(latest)
    latest["summary"] = summary(figs)
    latest_path.write_text(json.dumps(latest, indent=2))
    names = charts(figs, results)
    path = results / "summary.md"
    path.write_text(markdown(figs, latest, names, results))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    path = write_report(args.results)
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
