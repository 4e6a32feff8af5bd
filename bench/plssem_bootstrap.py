"""Benchmark: 5,000-resample bootstrap of the ECSI mobi model, Qala against seminr (PyPI).

Runs both tools in one process on the same resamples (Qala's seeded index plan is handed to
seminr as an explicit index matrix), prints times, the speed-up, and how far apart the point
estimates and bootstrap standard deviations are. seminr (GPL) is an optional peer: install it
with ``pip install -e '.[peers]'``. plspm is timed too when ``QALA_PLSPM_PYTHON`` names a Python
that has it (it does not run under pandas 3).

The whole ``qala sem fit … --bootstrap 5000`` command against a whole seminr script, start-up
included, is in bench/whole_commands.py.

Usage: ``python bench/plssem_bootstrap.py [--n-boot 5000] [--seed 2026] [--skip-seminr]
[--data-dir ../shared/data]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"

MOBI = """
Image =~ IMAG1 + IMAG2 + IMAG3 + IMAG4 + IMAG5
Expectation =~ CUEX1 + CUEX2 + CUEX3
Quality =~ PERQ1 + PERQ2 + PERQ3 + PERQ4 + PERQ5 + PERQ6 + PERQ7
Value =~ PERV1 + PERV2
Satisfaction =~ CUSA1 + CUSA2 + CUSA3
Complaints =~ CUSCO
Loyalty =~ CUSL1 + CUSL2 + CUSL3
Expectation ~ Image
Quality ~ Expectation
Value ~ Expectation + Quality
Satisfaction ~ Image + Expectation + Quality + Value
Complaints ~ Satisfaction
Loyalty ~ Image + Satisfaction + Complaints
"""

PLSPM_SCRIPT = r"""
import sys, time, pandas as pd
import plspm.config as c
from plspm.plspm import Plspm
from plspm.scheme import Scheme
from plspm.mode import Mode
df = pd.read_csv(sys.argv[1]); n_boot = int(sys.argv[2])
lvs = ["Image","Expectation","Quality","Value","Satisfaction","Complaints","Loyalty"]
paths = {"Expectation":["Image"],"Quality":["Expectation"],"Value":["Expectation","Quality"],
 "Satisfaction":["Image","Expectation","Quality","Value"],"Complaints":["Satisfaction"],
 "Loyalty":["Image","Satisfaction","Complaints"]}
M = pd.DataFrame(0, index=lvs, columns=lvs)
for t, ss in paths.items():
    for s in ss: M.loc[t, s] = 1
items = {"Image":["IMAG%d"%i for i in range(1,6)],"Expectation":["CUEX1","CUEX2","CUEX3"],
 "Quality":["PERQ%d"%i for i in range(1,8)],"Value":["PERV1","PERV2"],
 "Satisfaction":["CUSA1","CUSA2","CUSA3"],"Complaints":["CUSCO"],"Loyalty":["CUSL1","CUSL2","CUSL3"]}
config = c.Config(M, scaled=True)
for lv in lvs:
    config.add_lv(lv, Mode.A, *[c.MV(x) for x in items[lv]])
t = time.perf_counter()
Plspm(df, config, Scheme.PATH, bootstrap=True, bootstrap_iterations=n_boot, processes=2)
print(time.perf_counter() - t)
"""


def seminr_model(data: pd.DataFrame) -> tuple[Any, Any]:
    import seminr as s  # GPL peer, imported only here

    mm = s.constructs(
        s.composite("Image", s.multi_items("IMAG", range(1, 6))),
        s.composite("Expectation", s.multi_items("CUEX", range(1, 4))),
        s.composite("Quality", s.multi_items("PERQ", range(1, 8))),
        s.composite("Value", s.multi_items("PERV", range(1, 3))),
        s.composite("Satisfaction", s.multi_items("CUSA", range(1, 4))),
        s.composite("Complaints", s.single_item("CUSCO")),
        s.composite("Loyalty", s.multi_items("CUSL", range(1, 4))),
    )
    sm = s.relationships(
        s.paths(from_="Image", to=["Expectation", "Satisfaction", "Loyalty"]),
        s.paths(from_="Expectation", to=["Quality", "Value", "Satisfaction"]),
        s.paths(from_="Quality", to=["Value", "Satisfaction"]),
        s.paths(from_="Value", to=["Satisfaction"]),
        s.paths(from_="Satisfaction", to=["Complaints", "Loyalty"]),
        s.paths(from_="Complaints", to=["Loyalty"]),
    )
    return s, s.estimate_pls(data, mm, sm)


def main() -> None:
    # imported here, not at the top: bench/whole_commands.py imports seminr_model and MOBI from
    # this module into the peer's own process, which must not pay for Qala's imports
    from qala.engines.plssem import PLSSEM
    from qala.engines.plssem.bootstrap import bootstrap, resample_indices

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-boot", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-seminr", action="store_true")
    parser.add_argument(
        "--data-dir", type=Path, default=SHARED_DATA, help="folder with mobi.csv (../shared/data)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="Qala timings: best of this many")
    parser.add_argument(
        "--plspm-boot",
        type=int,
        default=200,
        help="resamples for plspm (slow); its time is scaled up to --n-boot and labelled so",
    )
    args = parser.parse_args()
    console = Console()
    data_file = args.data_dir / "mobi.csv"
    data = pd.read_csv(data_file)
    n = len(data)
    indices = resample_indices(n, args.n_boot, args.seed)

    rows: list[tuple[str, float]] = []
    fit = PLSSEM(MOBI).fit(data)
    bootstrap(fit, 50, seed=0, bca=False)  # warm caches before timing
    timed: dict[str, object] = {}
    for label, kwargs in [
        ("Qala, 1 process", {"n_jobs": 1, "bca": False}),
        ("Qala, 2 processes", {"n_jobs": 2, "batch_size": (args.n_boot + 1) // 2, "bca": False}),
        ("Qala, 1 process + BCa jackknife", {"n_jobs": 1, "bca": True}),
    ]:
        best = float("inf")
        for _ in range(args.repeats):  # best of a few: the machine is shared
            start = time.perf_counter()
            fit = PLSSEM(MOBI).fit(data)
            boot = bootstrap(fit, args.n_boot, seed=args.seed, **kwargs)
            best = min(best, time.perf_counter() - start)
        rows.append((f"{label} (fit + bootstrap, best of {args.repeats})", best))
        timed[label] = boot
    qala_boot = timed["Qala, 1 process"]

    notes: list[str] = []
    seminr_time = None
    if not args.skip_seminr:
        try:
            start = time.perf_counter()
            s, model = seminr_model(data)  # fit + bootstrap, as for Qala
            sboot = s.bootstrap_model(model, args.n_boot, indices=indices, cores=2)
            seminr_time = time.perf_counter() - start
            rows.append(("seminr 0.2.1, cores=2", seminr_time))
            names = list(model.path_coef.rows)
            sp = pd.DataFrame(model.path_coef.values, index=names, columns=names)
            point = max(abs(fit.path_matrix.loc[a, b] - sp.loc[a, b]) for a in names for b in names)
            d = sboot.paths_descriptives
            sd_gap = 0.0
            for lab, row in qala_boot.paths.iterrows():  # type: ignore[attr-defined]
                src, dst = lab.split(" -> ")
                sd_gap = max(sd_gap, abs(row["sd"] - d.get(src, f"{dst} Boot SD")))
            notes.append(f"max |path difference| Qala vs seminr: {point:.2e}")
            notes.append(f"max |bootstrap SD difference| on the same resamples: {sd_gap:.2e}")
        except ImportError:
            notes.append("seminr is not installed (pip install -e '.[peers]'); skipped")
    plspm_python = os.environ.get("QALA_PLSPM_PYTHON")
    if plspm_python:
        try:
            out = subprocess.run(
                [plspm_python, "-c", PLSPM_SCRIPT, str(data_file), str(args.plspm_boot)],
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            measured = float(out.stdout.strip().splitlines()[-1])
            rows.append(
                (
                    f"plspm 0.5.7 (pandas 2), processes=2: {args.plspm_boot} resamples "
                    f"took {measured:.1f} s, scaled to {args.n_boot}",
                    measured * args.n_boot / args.plspm_boot,
                )
            )
        except (subprocess.SubprocessError, ValueError) as exc:
            notes.append(f"plspm failed: {exc}")

    table = Table(title=f"PLS-SEM bootstrap, mobi (n={n}), {args.n_boot} resamples")
    table.add_column("tool")
    table.add_column("seconds", justify="right")
    table.add_column("× slower than Qala (1 process)", justify="right")
    base = rows[0][1]
    for label, seconds in rows:
        table.add_row(label, f"{seconds:.3f}", f"{seconds / base:.1f}")
    console.print(table)
    if seminr_time is not None:
        console.print(
            f"speed-up seminr(cores=2) / Qala(1 process): [bold]{seminr_time / base:.1f}×[/]"
        )
    for note in notes:
        console.print(note)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "plssem_bootstrap.json").write_text(
        json.dumps(
            {"rows": rows, "notes": notes, "n_boot": args.n_boot, "seed": args.seed}, indent=2
        )
    )


if __name__ == "__main__":
    main()
