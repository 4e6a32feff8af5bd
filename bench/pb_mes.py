"""Benchmark: Method of Equal Shares on Warsaw 2020 Praga-Południe, Qala against pabutools.

    .venv/bin/python bench/pb_mes.py [--file PATH] [--repeat 5] [--skip-slow-peer] [--clock cpu]

Times, in one run and on the same parsed election, plain MES (cost utilities) and MES with the Add1
completion (each voter's share raised by 1 PLN until the outcome is exhaustive, pabutools'
``voter_budget_increment=1``; our ``completion="add1-exhaustive"``), and Qala's ``"add1"``
variant (keep raising while the outcome fits). Goals (issue 5): Add1 under 5 s (pabutools about
475 s), plain MES under 0.5 s (pabutools about 7 s). Checks that both tools select the same
projects. pabutools (GPL) is an optional peer: ``pip install pabutools==1.2.3``. Its Add1 run
takes minutes; ``--skip-slow-peer`` uses the 475 s measured in ../shared/data/pabulib/SOURCE.md
instead. Results go to bench/results/pb_mes.csv.
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

from qala.engines.pb import build_supports, method_of_equal_shares, parse_pabulib

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = (
    REPO.parent / "shared" / "data" / "pabulib" / "Poland_Warszawa_2020_Praga-Poludnie.pb"
)
KNOWN_PABUTOOLS_ADD1_SECONDS = 475.0  # SOURCE.md: pabutools 1.2.3, one core
console = Console()
clock = time.perf_counter  # --clock cpu: time.process_time, steadier on a shared, busy machine


def best_of(repeat: int, action):  # type: ignore[no-untyped-def]
    """(fastest wall time over ``repeat`` runs, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = clock()
        result = action()
        best = min(best, clock() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--repeat", type=int, default=5, help="Qala runs per timing (best kept)")
    parser.add_argument(
        "--skip-slow-peer",
        action="store_true",
        help=f"do not run pabutools' Add1 (use the known {KNOWN_PABUTOOLS_ADD1_SECONDS:.0f} s)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default) or this process's CPU time (when other jobs share the cores)",
    )
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if not args.file.exists():
        raise SystemExit(f"{args.file} is absent (it lives in ../shared/data/pabulib)")
    election = parse_pabulib(args.file.read_text(encoding="utf-8-sig"), source=args.file.name)
    instance, profile = election.instance, election.profile
    console.print(
        f"{args.file.name}: {len(instance)} projects, {len(profile)} voters, "
        f"budget {float(instance.budget_limit):,.0f}"
    )

    def qala_supports():  # type: ignore[no-untyped-def]
        return build_supports(instance, profile, utility="cost")

    t_supports, supports = best_of(args.repeat, qala_supports)
    t_mes, mes = best_of(
        args.repeat, lambda: method_of_equal_shares(instance, profile, supports=supports)
    )
    t_add1e, add1e = best_of(
        max(1, args.repeat // 2),
        lambda: method_of_equal_shares(
            instance, profile, completion="add1-exhaustive", supports=supports
        ),
    )
    t_add1, add1 = best_of(
        max(1, args.repeat // 2),
        lambda: method_of_equal_shares(instance, profile, completion="add1", supports=supports),
    )
    rows: list[dict[str, object]] = []
    have_peer = importlib.util.find_spec("pabutools") is not None
    peer_mes = peer_add1 = None
    peer_note = ""
    if have_peer:
        sys.path.insert(0, str(REPO))
        from pabutools.rules import method_of_equal_shares as p_mes
        from tests.engines.pb.oracle import sat_class, to_pabutools  # GPL peer, lazily

        p_instance, p_profile = to_pabutools(instance, profile)
        sat = sat_class(profile, "cost", "pabulib")
        started = clock()
        out = p_mes(p_instance, p_profile, sat_class=sat)
        peer_mes = (clock() - started, sorted(str(p.name) for p in out))
        if args.skip_slow_peer:
            peer_note = "known figure (SOURCE.md), not rerun"
        else:
            console.print("running pabutools' MES + Add1 (minutes)…")
            started = clock()
            out = p_mes(p_instance, p_profile, sat_class=sat, voter_budget_increment=1)
            peer_add1 = (clock() - started, sorted(str(p.name) for p in out))
    else:
        peer_note = "pabutools not installed: known figures"

    table = Table(
        title=f"Method of Equal Shares, Warsaw 2020 Praga-Południe ({args.clock} time, best of runs)"
    )
    for column in ("task", "Qala s", "pabutools s", "speed-up", "same outcome", "goal"):
        table.add_column(column, justify="right" if column != "task" else "left")

    def add_row(task: str, ours: float, theirs: float | None, same: object, goal: str) -> None:
        ratio = "" if theirs is None else f"{theirs / ours:,.0f}x"
        table.add_row(
            task,
            f"{ours:.3f}",
            "" if theirs is None else f"{theirs:.2f}",
            ratio,
            str(same),
            goal,
        )
        rows.append(
            {
                "task": task,
                "qala_s": ours,
                "pabutools_s": theirs,
                "same_outcome": same,
                "goal": goal,
            }
        )

    add_row("utilities table (shared by rules)", t_supports, None, "", "")
    mes_same = "" if peer_mes is None else sorted(mes.selected) == peer_mes[1]
    add_row(
        "MES (+ utilities table)",
        t_mes + t_supports,
        peer_mes[0] if peer_mes else 6.9,
        mes_same,
        "< 0.5 s",
    )
    if peer_add1 is not None:
        add1_theirs: float = peer_add1[0]
        add1_same: object = sorted(add1e.selected) == peer_add1[1]
    else:
        add1_theirs, add1_same = KNOWN_PABUTOOLS_ADD1_SECONDS, "(not rerun)"
    add_row(
        "MES + Add1, stop when exhaustive", t_add1e + t_supports, add1_theirs, add1_same, "< 5 s"
    )
    add_row(
        "MES + Add1, raise while it fits",
        t_add1 + t_supports,
        None,
        sorted(add1.selected) == sorted(add1e.selected),
        "",
    )
    console.print(table)
    console.print(
        f"Add1: {add1e.details['add1_steps']} MES runs, final share "
        f"{float(add1e.details['budget_per_voter']):.2f} per voter; outcome costs "
        f"{float(add1e.cost):,.0f} of {float(instance.budget_limit):,.0f}. {peer_note}"
    )
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "pb_mes.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    console.print(f"wrote {out_dir / 'pb_mes.csv'}")


if __name__ == "__main__":
    main()
