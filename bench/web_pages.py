"""Dashboard page latency over a warm ``qala serve`` on the demo data (SQLite).

Builds a demo store in a temporary folder (``qala db upgrade`` then ``qala demo load``), starts
``qala serve`` from the source tree given by ``--source`` (default: this checkout's ``src``), warms
every page up, then requests each page ``--rounds`` times in turn and prints p50/p95 per page. The
target for the city page is p95 under 150 ms. PDF reports answer from the cache once built for
the store's data version: a repeat costs the data-version query (``catalog.data_version``, a few
counts over the values table) and sending the bytes.

A run is saved as ``bench/results/web_pages-<label>.json``; when both a ``before`` and an
``after`` run are saved, the table puts them side by side with the ratio and a PNG chart is
written to ``bench/results/web_pages.png``. To measure the code before a change::

    git archive <base> src | tar -x -C /tmp/before
    .venv/bin/python bench/web_pages.py --source /tmp/before/src --label before
    .venv/bin/python bench/web_pages.py --label after
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGES = (
    "/",
    "/rating",
    "/cities/astana",
    "/cities/almaty",
    "/cities/shymkent",
    "/indicators",
    "/map",
    "/reports/city/astana.pdf",
    "/reports/rating.pdf",
)
CITY_TARGET_MS = 150.0
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qala(source: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "qala.cli.main", *args],
        env={**env, "PYTHONPATH": str(source)},
        check=True,
        capture_output=True,
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(source: Path, rounds: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="qala-web-bench-") as folder:
        env = {
            **os.environ,
            "QALA_DATABASE_URL": f"sqlite:///{folder}/demo.sqlite",
            "QALA_SECRET_KEY": "web-bench",
        }
        console.print(f"Building the demo store in {folder} …")
        qala(source, env, "db", "upgrade")
        qala(source, env, "demo", "load")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "qala.cli.main", "serve", "--port", str(port)],
            env={**env, "PYTHONPATH": str(source)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return timed_pages(f"http://127.0.0.1:{port}", rounds)
        finally:
            server.terminate()
            server.wait(timeout=20)


def timed_pages(base: str, rounds: int) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=base, timeout=120) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for path in PAGES:  # warm-up: caches, templates, fonts, imports
            client.get(path).raise_for_status()
        samples: dict[str, list[float]] = {path: [] for path in PAGES}
        for _ in range(rounds):
            for path in PAGES:
                started = time.perf_counter()
                client.get(path).raise_for_status()
                samples[path].append((time.perf_counter() - started) * 1000)
    return {
        path: {
            "p50": statistics.median(times),
            "p95": percentile(times, 0.95),
            "mean": statistics.fmean(times),
            "n": len(times),
        }
        for path, times in samples.items()
    }


def report(runs: dict[str, dict[str, dict[str, float]]]) -> None:
    labels = [label for label in ("before", "after") if label in runs] or list(runs)
    table = Table(title="Dashboard pages, warm server, demo data on SQLite (ms)")
    table.add_column("page", no_wrap=True)
    for label in labels:
        table.add_column(f"{label} p50", justify="right")
        table.add_column(f"{label} p95", justify="right")
    if len(labels) == 2:
        table.add_column("p95 ratio", justify="right")
    for path in PAGES:
        row = [path]
        for label in labels:
            found = runs[label].get(path)
            row += [f"{found['p50']:.1f}", f"{found['p95']:.1f}"] if found else ["—", "—"]
        if len(labels) == 2 and all(path in runs[label] for label in labels):
            row.append(f"{runs[labels[0]][path]['p95'] / runs[labels[1]][path]['p95']:.1f}×")
        table.add_row(*row)
    console.print(table)
    latest = runs[labels[-1]]
    city = max(latest[p]["p95"] for p in PAGES if p.startswith("/cities/"))
    verdict = "meets" if city < CITY_TARGET_MS else "misses"
    console.print(
        f"City page p95 ({labels[-1]}): {city:.1f} ms — {verdict} the {CITY_TARGET_MS:.0f} ms target"
    )
    if len(labels) == 2:
        chart(runs, labels)


def chart(runs: dict[str, dict[str, dict[str, float]]], labels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.arange(len(PAGES))
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for offset, label in zip((-0.2, 0.2), labels, strict=True):
        ax.barh(y + offset, [runs[label][p]["p95"] for p in PAGES], height=0.4, label=label)
    ax.axvline(CITY_TARGET_MS, color="#b03a2e", linestyle="--", label="city target")
    ax.set_yticks(y)
    ax.set_yticklabels(PAGES, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("p95 latency (ms, log scale)")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / "web_pages.png", dpi=130)
    console.print(f"Chart: {RESULTS / 'web_pages.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "src")
    parser.add_argument("--label", default="after")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    measured = measure(args.source.resolve(), args.rounds)
    (RESULTS / f"web_pages-{args.label}.json").write_text(json.dumps(measured, indent=1))
    runs = {
        path.stem.removeprefix("web_pages-"): json.loads(path.read_text())
        for path in sorted(RESULTS.glob("web_pages-*.json"))
    }
    report(runs)


if __name__ == "__main__":
    main()
