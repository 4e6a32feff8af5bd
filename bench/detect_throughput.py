"""Throughput of the detection engine: observations per second, batch replay and streaming.

All air-quality rules on (thresholds from ҚР ДСМ-70 and WHO 2021 at instant/hour/8 h/day,
saturation, stuck, quarantine, rate of change, rolling MAD, seasonal baseline, silence, station
and network episodes, neighbour consistency), one core. The goal set by issue 6 is 5,000
observations/s end to end for ingestion; the detector must leave most of that budget to storage.
FIWARE's published load tests give Orion-LD about 3,500 updates/s on 2 CPUs (2,800/s with
history) — quoted for scale, not run here.

Run: ``.venv/bin/python bench/detect_throughput.py [--sensors 50 --days 14 --cadence-min 10]``.
Writes bench/results/detect_throughput.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from qala.engines.detect import (
    Observation,
    StreamingEvaluator,
    air_quality_rules,
    columns_from_frame,
    evaluate_frame,
)

GOAL = 5_000.0
ORION_LD = 3_500.0


def synthetic_frame(sensors: int, days: int, cadence_min: int, seed: int = 7) -> pd.DataFrame:
    """PM2.5 with a daily cycle, a two-day smog episode, noise, one stuck and one saturating sensor."""
    rng = np.random.default_rng(seed)
    steps = days * 24 * 60 // cadence_min
    start = pd.Timestamp("2025-12-01T00:00:00+05:00")
    times = start + pd.to_timedelta(np.arange(steps) * cadence_min, unit="min")
    hours = np.arange(steps) * cadence_min / 60.0
    daily = 25 + 15 * np.sin(2 * np.pi * (hours % 24 - 8) / 24)
    episode = np.where((hours > 72) & (hours < 120), 90.0, 0.0)
    frames = []
    for k in range(sensors):
        values = np.maximum(0.0, daily + episode + rng.normal(0, 6, steps) + rng.normal(0, 5))
        values = np.round(values, 2)
        if k == 0:
            values[steps // 2 : steps // 2 + 40] = 1000.0  # saturated
        if k == 1:
            values[steps // 3 : steps // 3 + 30] = 17.0  # stuck
        keep = rng.random(steps) > 0.01  # 1 % lost readings
        frames.append(
            pd.DataFrame(
                {
                    "sensor": f"station_{k:03d}",
                    "time": times[keep],
                    "value": values[keep],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    frame["time"] = frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return frame.reset_index(drop=True)


def pandas_peer(frame: pd.DataFrame) -> int:
    """The same data through plain vectorised pandas, for a subset of the rules only: saturation,
    the instant and daily ПДК/WHO thresholds and the rolling median/MAD z-score. No state, no
    streaming, no stuck/quarantine/silence/episodes — what a notebook replay would do."""
    table = frame.assign(time=pd.to_datetime(frame["time"], utc=True, format="ISO8601"))
    table = table.sort_values(["sensor", "time"], kind="stable")
    faults = int((table["value"] >= 1000).sum())
    valid = table[(table["value"] < 1000) & (table["value"] >= 0)]
    instant = int((valid["value"] > 160).sum())
    hourly = valid.groupby(["sensor", valid["time"].dt.floor("h")])["value"].mean().reset_index()
    hourly["day"] = (hourly["time"] + pd.Timedelta(hours=5)).dt.floor("D")
    daily = hourly.groupby(["sensor", "day"])["value"].agg(["mean", "size"])
    daily = daily[daily["size"] >= 18]
    days = int((daily["mean"] > 35).sum() + (daily["mean"] > 15).sum())

    def mad(window: np.ndarray) -> float:
        return float(np.median(np.abs(window - np.median(window))))

    previous = valid.groupby("sensor")["value"].shift(1)
    rolling = previous.groupby(valid["sensor"]).rolling(48, min_periods=12)
    median = rolling.median().reset_index(level=0, drop=True)
    spread = rolling.apply(mad, raw=True).reset_index(level=0, drop=True)
    z = 0.6745 * (valid["value"] - median) / np.maximum(spread, 1.0)
    anomalies = int((z.abs() > 3.5).sum())
    return faults + instant + days + anomalies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--cadence-min", type=int, default=10)
    parser.add_argument(
        "--astana",
        type=Path,
        default=Path(__file__).resolve().parents[1].parent
        / "shared/data/sensors/airdatakz_astana_pm25_hourly_2025-12_2026-01.csv",
    )
    args = parser.parse_args()
    console = Console(width=150)
    rules = air_quality_rules(["pm25"])
    frame = synthetic_frame(args.sensors, args.days, args.cadence_min)
    n = len(frame)
    console.print(
        f"synthetic: {args.sensors} sensors × {args.days} days every {args.cadence_min} min = {n:,} observations"
    )

    rows: list[tuple[str, int, float, int]] = []

    started = time.perf_counter()
    findings = evaluate_frame(
        frame, rules, quantity=None, unit=None, default_quantity="pm25", default_unit="ug/m3"
    )
    rows.append(
        (
            "batch: evaluate_frame (parse + sort + rules)",
            n,
            time.perf_counter() - started,
            len(findings),
        )
    )

    started = time.perf_counter()
    peer_findings = pandas_peer(frame)
    rows.append(
        (
            "peer: vectorised pandas, rule subset only",
            n,
            time.perf_counter() - started,
            peer_findings,
        )
    )

    columns = columns_from_frame(
        frame, quantity=None, unit=None, default_quantity="pm25", default_unit="ug/m3"
    )
    observations = [
        Observation(s, q, t, v, u)
        for s, q, t, v, u in zip(
            columns.sensor.tolist(),
            columns.quantity.tolist(),
            columns.time_us.tolist(),
            columns.value.tolist(),
            columns.unit.tolist(),
            strict=True,
        )
    ]
    evaluator = StreamingEvaluator(rules)
    started = time.perf_counter()
    found = 0
    for observation in observations:
        found += len(evaluator.feed(observation))
    found += len(evaluator.flush())
    rows.append(
        ("streaming: feed(Observation) one by one", n, time.perf_counter() - started, found)
    )

    evaluator = StreamingEvaluator(rules)
    started = time.perf_counter()
    found = 0
    for observation in observations:
        found += len(evaluator.feed(observation))
        found += len(evaluator.feed(observation))  # every message delivered twice
    found += len(evaluator.flush())
    rows.append(
        ("streaming: each message delivered twice", 2 * n, time.perf_counter() - started, found)
    )

    started = time.perf_counter()
    state = evaluator.state()
    StreamingEvaluator.from_state(rules, state)
    state_seconds = time.perf_counter() - started

    if args.astana.exists():
        real = pd.read_csv(args.astana)
        started = time.perf_counter()
        real_findings = evaluate_frame(
            real,
            rules,
            sensor="station_id",
            time="datetime_utc",
            value="value_ugm3",
            quantity=None,
            unit=None,
            default_quantity="pm25",
            default_unit="ug/m3",
        )
        rows.append(
            (
                "batch: AirData.kz Astana replay (real)",
                len(real),
                time.perf_counter() - started,
                len(real_findings),
            )
        )

    table = Table(title="qala.engines.detect throughput (one core, all air-quality rules)")
    for name in (
        "path",
        "observations",
        "seconds",
        "obs/s",
        "× goal 5,000/s",
        "× Orion-LD 3,500/s",
        "findings",
    ):
        table.add_column(name, justify="right" if name != "path" else "left")
    records = []
    for name, count, seconds, found in rows:
        rate = count / seconds
        table.add_row(
            name,
            f"{count:,}",
            f"{seconds:.3f}",
            f"{rate:,.0f}",
            f"{rate / GOAL:.1f}",
            f"{rate / ORION_LD:.1f}",
            f"{found:,}",
        )
        records.append(
            {
                "path": name,
                "observations": count,
                "seconds": seconds,
                "obs_per_s": rate,
                "findings": found,
            }
        )
    console.print(table)
    console.print(
        f"state: {len(state['streams'])} streams, save + restore {state_seconds * 1000:.1f} ms"
    )
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    pd.DataFrame(records).to_csv(out / "detect_throughput.csv", index=False)


if __name__ == "__main__":
    main()
