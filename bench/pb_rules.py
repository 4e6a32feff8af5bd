"""Benchmark: every rule on the six pabulib files, Qala against pabutools, in one run.

    .venv/bin/python bench/pb_rules.py [--files NAME ...]

For each file and rule (greedy, MES, MES + greedy completion, sequential Phragmén on approval
files, max welfare; cost utilities) times Qala (best of 3) and pabutools (once), checks the two
select the same projects (same welfare for max welfare), prints a Rich table and writes
bench/results/pb_rules.csv. pabutools (GPL) is an optional peer: ``pip install pabutools==1.2.3``.
MES + Add1 is in bench/pb_mes.py.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qala.engines.pb import parse_pabulib, solve

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "pabulib"
console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--files", nargs="*", default=None, help="file names in ../shared/data/pabulib"
    )
    args = parser.parse_args()
    names = args.files or sorted(p.name for p in DATA.glob("*.pb"))
    if not names:
        raise SystemExit(f"no .pb files in {DATA}")
    have_peer = importlib.util.find_spec("pabutools") is not None
    if have_peer:
        sys.path.insert(0, str(REPO))
        import pabutools.rules  # noqa: F401  (import time is not the rule's time)
        from tests.engines.pb.oracle import oracle, welfare  # GPL peer, imported lazily
    else:
        console.print("pabutools is not installed: timing Qala only")
    table = Table(title="PB rules: Qala vs pabutools 1.2.3 (seconds)")
    for column in ("file", "rule", "Qala", "pabutools", "speed-up", "same"):
        table.add_column(column, justify="left" if column in ("file", "rule") else "right")
    rows: list[dict[str, object]] = []
    for name in names:
        e = parse_pabulib((DATA / name).read_text(encoding="utf-8-sig"), source=name)
        instance, profile = e.instance, e.profile
        rules = [
            ("greedy", "greedy", "none"),
            ("mes", "mes", "none"),
            ("mes+greedy", "mes", "greedy"),
            ("max-welfare", "max-welfare", "none"),
        ]
        if profile.kind.value == "approval":
            rules.append(("phragmen", "phragmen", "none"))
        for label, rule, completion in rules:
            best = float("inf")
            outcome = solve(instance, profile, rule, completion=completion)  # type: ignore[arg-type]
            for _ in range(3):
                started = time.perf_counter()
                outcome = solve(instance, profile, rule, completion=completion)  # type: ignore[arg-type]
                best = min(best, time.perf_counter() - started)
            theirs: float | None = None
            same: object = ""
            if have_peer:
                started = time.perf_counter()
                selected = oracle(rule, instance, profile, completion=completion)
                theirs = time.perf_counter() - started
                if rule == "max-welfare":
                    same = outcome.details["welfare"] == welfare(
                        instance, profile, selected, "cost", "pabulib"
                    )
                else:
                    same = sorted(outcome.selected) == selected
            short = name.removesuffix(".pb")
            table.add_row(
                short,
                label,
                f"{best:.4f}",
                "" if theirs is None else f"{theirs:.3f}",
                "" if theirs is None else f"{theirs / best:,.0f}x",
                str(same),
            )
            rows.append(
                {"file": short, "rule": label, "qala_s": best, "pabutools_s": theirs, "same": same}
            )
    console.print(table)
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "pb_rules.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    console.print(f"wrote {out_dir / 'pb_rules.csv'}")


if __name__ == "__main__":
    main()
