"""Benchmark: COINr's uncertainty/sensitivity example on ASEM, and a 10,000 × 100 index.

Runs (one process, one run):

1. Monte Carlo uncertainty on ASEM with COINr's four assumptions of its sensitivity vignette
   (winsorisation limit 1–5 points; min-max 1–100 vs z-score mean 10 sd 2; pillar and sub-index
   weights ±25%; arithmetic vs geometric mean), 1,000 replications; median rank and 5–95%
   interval per country;
2. the same with Sobol indices (Saltelli design, N·(d+2) runs);
3. a generated index of 10,000 units × 100 indicators (10 pillars, 2 sub-indices), 1,000 MC
   replications of the same assumptions.

The peer column is COINr's cost per replication on this example, measured live in the same run
(``Rscript bench/coinr_uncertainty.R N``: get_sensitivity with the same four assumptions) when R
and COINr are installed; otherwise the time measured earlier on this machine kind (80 ms per
replication, the lower end of 80–102 ms), labelled so. The ratio is that figure over our time.
Whole commands, start-up included, are compared in bench/whole_commands.py.

Usage: ``.venv/bin/python bench/index_uncertainty.py [--asem-dir ../shared/data/asem] [--quick]``
Results (CSV, PNG) go to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from qala.engines.index import (
    Aggregate,
    Framework,
    Impute,
    IndexSpec,
    Normalise,
    Treat,
    build_index,
    coinr_vignette_assumptions,
    framework_from_meta,
    framework_from_tree,
    run_uncertainty,
)
from qala.engines.index.plots import rank_interval_figure, sobol_figure
from whole_commands import COINR_MS_PER_REP, coinr_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
console = Console()


def generated_case(
    n_units: int, n_indicators: int, seed: int = 0
) -> tuple[pd.DataFrame, Framework]:
    rng = np.random.default_rng(seed)
    per_pillar = n_indicators // 10
    tree = {
        "code": "Index",
        "children": [
            {
                "code": f"S{s}",
                "children": [
                    {
                        "code": f"P{p}",
                        "children": [
                            {"code": f"i{p * per_pillar + k}", "direction": -1 if k % 3 == 0 else 1}
                            for k in range(per_pillar)
                        ],
                    }
                    for p in range(s * 5, s * 5 + 5)
                ],
            }
            for s in range(2)
        ],
    }
    fw = framework_from_tree(tree)
    latent = rng.normal(size=(n_units, 1))
    values = np.exp(0.6 * latent + rng.normal(size=(n_units, len(fw.indicators))))  # skewed
    values[rng.random(values.shape) < 0.02] = np.nan
    data = pd.DataFrame(values, columns=fw.indicators)
    data.insert(0, "uCode", [f"U{i:05d}" for i in range(n_units)])
    data.insert(1, "region", rng.choice(["north", "south", "east", "west"], size=n_units))
    return data, fw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asem-dir", type=Path, default=ROOT.parent / "shared" / "data" / "asem")
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--sobol-n", type=int, default=1024)
    parser.add_argument("--big-sobol-n", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="ASEM cases: best of this many")
    parser.add_argument("--quick", action="store_true", help="skip the 10,000 × 100 case")
    parser.add_argument("--skip-coinr", action="store_true", help="do not run COINr live")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    live = None if args.skip_coinr else coinr_seconds(args.replications)
    coinr_per_rep = COINR_MS_PER_REP[0] / 1000 if live is None else live / args.replications
    coinr_source = (
        f"COINr live in this run, {1000 * coinr_per_rep:.0f} ms per replication"
        if live is not None
        else f"COINr not run: {COINR_MS_PER_REP[0]:.0f} ms per replication measured earlier"
    )
    data = pd.read_csv(args.asem_dir / "ASEM_iData.csv")
    meta = pd.read_csv(args.asem_dir / "ASEM_iMeta.csv")
    fw = framework_from_meta(meta)
    spec = IndexSpec.from_text((ROOT / "examples" / "asem" / "spec.yaml").read_text())
    assumptions = coinr_vignette_assumptions()

    build_index(spec, data, fw)  # warm-up: first call pays for lazy imports
    t_build = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        nominal = build_index(spec, data, fw)
        t_build = min(t_build, time.perf_counter() - t)

    run_uncertainty(spec, data, fw, assumptions, n=10, seed=0)  # warm-up (imports, caches)
    # best of --repeat runs: the machine is shared, the minimum is the least disturbed figure
    ua = min(
        (
            run_uncertainty(spec, data, fw, assumptions, n=args.replications, seed=1)
            for _ in range(args.repeat)
        ),
        key=lambda r: r.seconds,
    )
    sa = min(
        (
            run_uncertainty(spec, data, fw, assumptions, n=args.sobol_n, method="sobol", seed=1)
            for _ in range(args.repeat)
        ),
        key=lambda r: r.seconds,
    )

    stats = ua.rank_stats.join(nominal.units[["uName"]] if "uName" in nominal.units else None)
    stats = stats.sort_values("nominal")
    stats.to_csv(RESULTS / "index_asem_rank_stats.csv")
    rank_interval_figure(ua, highlight="KAZ").savefig(
        RESULTS / "index_asem_rank_intervals.png", dpi=130
    )
    sobol_figure(sa).savefig(RESULTS / "index_asem_sobol.png", dpi=130)

    table = Table(title=f"ASEM Index: ranks over {ua.runs} replications (COINr's four assumptions)")
    for col in ("country", "nominal", "median", "5%", "95%"):
        table.add_column(col, justify="right")
    for unit, row in stats.iterrows():
        style = "bold yellow" if unit == "KAZ" else None
        table.add_row(
            str(unit),
            f"{row['nominal']:.0f}",
            f"{row['median']:.1f}",
            f"{row['q05']:.1f}",
            f"{row['q95']:.1f}",
            style=style,
        )
    console.print(table)
    if sa.sensitivity is not None:
        console.print(sa.sensitivity.round(3).to_string())

    rows: list[tuple[str, int, float, float | None]] = [
        ("ASEM build (one index)", 1, t_build, coinr_per_rep),
        (
            f"ASEM uncertainty, {ua.runs} MC runs",
            ua.runs,
            ua.seconds,
            ua.runs * coinr_per_rep,
        ),
        (
            f"ASEM Sobol, N={args.sobol_n}: {sa.runs} runs",
            sa.runs,
            sa.seconds,
            sa.runs * coinr_per_rep,
        ),
    ]
    if not args.quick:
        big, big_fw = generated_case(10_000, 100)
        big_spec = IndexSpec(
            steps=(Impute(method="group_mean", group="region"), Treat(), Normalise(), Aggregate()),
            name="generated 10,000 × 100",
        )
        t = time.perf_counter()
        build_index(big_spec, big, big_fw)
        t_big_build = time.perf_counter() - t
        big_ua = run_uncertainty(big_spec, big, big_fw, assumptions, n=args.replications, seed=1)
        rows.append(("10,000 × 100 build (one index)", 1, t_big_build, None))
        rows.append(
            (f"10,000 × 100 uncertainty, {big_ua.runs} MC runs", big_ua.runs, big_ua.seconds, None)
        )
        big_sa = run_uncertainty(
            big_spec, big, big_fw, assumptions, n=args.big_sobol_n, method="sobol", seed=1
        )
        rows.append(
            (
                f"10,000 × 100 Sobol, N={args.big_sobol_n}: {big_sa.runs} runs",
                big_sa.runs,
                big_sa.seconds,
                None,
            )
        )
        if big_ua.failed:
            console.print(f"[yellow]10,000 × 100:[/] {big_ua.warnings[0]}")

    timing = Table(title=f"Qala vs COINr ({coinr_source}; ASEM rows best of {args.repeat})")
    for col in ("case", "runs", "Qala s", "Qala ms/run", "COINr s", "ratio"):
        timing.add_column(col, justify="right")
    for name, runs, qala, coinr in rows:
        timing.add_row(
            name,
            str(runs),
            f"{qala:.3f}",
            f"{1000 * qala / runs:.3f}",
            "—" if coinr is None else f"{coinr:.1f}",
            "—" if coinr is None else f"{coinr / qala:.0f}×",
        )
    console.print(timing)
    kaz = stats.loc["KAZ"]
    console.print(
        f"Kazakhstan: nominal rank {kaz['nominal']:.0f}, median {kaz['median']:.0f}, "
        f"5–95% interval {kaz['q05']:.0f}–{kaz['q95']:.0f}"
    )
    console.print(f"plots and CSV in {RESULTS}")


if __name__ == "__main__":
    main()
