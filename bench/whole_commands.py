"""Benchmark: whole commands as a user runs them, Qala against its peer in the same run.

1. PLS-SEM: ``qala sem fit mobi.txt mobi.csv --bootstrap 5000`` (fit, 5,000 resamples with BCa,
   tables) against a Python script doing the same with seminr 0.2.1 (read the CSV, estimate_pls,
   bootstrap_model(5000, cores=2)). Goal: at least 30 times faster. Ours runs with ``--jobs 1``
   and ``--jobs 2`` (seminr uses two cores).
2. Composite index: ``qala index uncertainty examples/asem/spec.yaml --data … --meta …
   --replications 1000`` against ``Rscript bench/coinr_uncertainty.R 1000`` (COINr's sensitivity
   vignette assumptions on its ASEM example). Goal: at least 100 times faster. Without R and
   COINr the peer column is the time measured earlier on this machine kind (80–102 ms per
   replication), labelled so.

Every command runs as a child process, timed from start to exit: interpreter start-up, imports,
reading the data, the computation and the printed output all count. Besides the wall time the
table shows the child's CPU time (user + system, its own children included), which other load
on a shared machine disturbs less. Ours: best of ``--repeats``; peers: once (they are slow).

Usage: ``python bench/whole_commands.py [--data-dir ../shared/data] [--repeats 3]
[--skip-seminr] [--skip-coinr]``; the chart and a JSON record go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from rich.console import Console
from rich.table import Table

from plssem_bootstrap import MOBI  # the ECSI mobi model, as the seminr oracle tests use it

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
COINR_SCRIPT = BENCH / "coinr_uncertainty.R"
COINR_MS_PER_REP = (80.0, 102.0)  # COINr live in R earlier on this machine kind (81 s / 1,000)
SEMINR_SCRIPT = """
import sys, pandas as pd
sys.path.insert(0, {bench!r})
from plssem_bootstrap import seminr_model
data = pd.read_csv({data!r})
s, model = seminr_model(data)
boot = s.bootstrap_model(model, {n_boot}, seed=1, cores=2)
print(boot.paths_descriptives)
"""


@dataclass
class Timed:
    wall: float
    cpu: float


@dataclass
class Case:
    name: str
    goal: float
    ours: dict[str, Timed]
    peer: Timed | None
    peer_label: str
    peer_stated: tuple[float, float] | None = None  # (low, high) seconds when not measured

    def ratio(self, label: str, kind: str = "wall") -> float | None:
        ours = getattr(self.ours[label], kind)
        if self.peer is not None:
            return float(getattr(self.peer, kind)) / ours
        if self.peer_stated is not None and kind == "wall":
            return self.peer_stated[0] / ours  # the lower stated figure: the cautious ratio
        return None


def run(command: list[str], env: dict[str, str]) -> tuple[Timed, str]:
    """Run one command to completion; its wall time and its CPU time (children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu), done.stdout


def run_coinr(replications: int, env: dict[str, str]) -> tuple[Timed, float]:
    """Run bench/coinr_uncertainty.R: the whole Rscript's times and get_sensitivity's seconds.
    Raises RuntimeError when R or COINr is missing or the run fails."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RuntimeError("Rscript is not installed (apt-get install r-base-core)")
    timed, out = run([rscript, str(COINR_SCRIPT), str(replications)], env)
    inner = [float(x[8:]) for x in out.splitlines() if x.startswith("seconds=")]
    if not inner:
        raise RuntimeError(f"the COINr script printed no seconds= line:\n{out[-500:]}")
    return timed, inner[0]


def coinr_seconds(replications: int) -> float | None:
    """Seconds COINr's get_sensitivity takes for ``replications`` (live), or None without it."""
    try:
        return run_coinr(replications, dict(os.environ))[1]
    except RuntimeError:
        return None


def best_of(command: list[str], env: dict[str, str], repeats: int) -> Timed:
    runs = [run(command, env)[0] for _ in range(repeats)]
    return Timed(min(r.wall for r in runs), min(r.cpu for r in runs))


def qala_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "qala.cli.main", *args]


def trees(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) of each source tree to time; unlabelled when there is one."""
    out = []
    for src in args.src:
        label = "" if len(args.src) == 1 else f"{src.resolve().parent.name}: "
        out.append((label, {**os.environ, "PYTHONPATH": str(src)}))
    return out


def plssem_case(data_dir: Path, env: dict[str, str], args: argparse.Namespace) -> Case:
    data = data_dir / "mobi.csv"
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mobi.txt"
        model.write_text(MOBI.strip() + "\n", encoding="utf-8")
        fit = ["sem", "fit", str(model), str(data), "--bootstrap", str(args.n_boot), "--seed", "1"]
        ours = {
            f"{label}--jobs {jobs}": best_of(qala_command(*fit, "--jobs", jobs), tree, args.repeats)
            for label, tree in trees(args)
            for jobs in ("1", "2")
        }
    peer = None
    label = "seminr 0.2.1 (PyPI), cores=2: skipped"
    if not args.skip_seminr:
        script = SEMINR_SCRIPT.format(bench=str(BENCH), data=str(data), n_boot=args.n_boot)
        try:
            peer = run([sys.executable, "-c", script], env)[0]
            label = "seminr 0.2.1 (PyPI), cores=2, whole script"
        except RuntimeError as exc:
            label = f"seminr failed or is not installed (pip install -e '.[peers]'): {exc}"
    return Case(f"PLS-SEM mobi, fit + {args.n_boot} bootstrap resamples", 30.0, ours, peer, label)


def coinr_case(data_dir: Path, env: dict[str, str], args: argparse.Namespace) -> Case:
    asem = data_dir / "asem"
    reps = str(args.replications)
    command = qala_command(
        "index",
        "uncertainty",
        str(REPO / "examples" / "asem" / "spec.yaml"),
        "--data",
        str(asem / "ASEM_iData.csv"),
        "--meta",
        str(asem / "ASEM_iMeta.csv"),
        "--replications",
        reps,
    )
    ours = {label.rstrip(": "): best_of(command, tree, args.repeats) for label, tree in trees(args)}
    name = f"Composite index ASEM, {reps} uncertainty replications"
    why = "skipped (--skip-coinr)"
    if not args.skip_coinr:
        try:
            timed, inner = run_coinr(args.replications, env)
            label = f"COINr (R), whole Rscript; get_sensitivity alone {inner:.2f} s"
            return Case(name, 100.0, ours, timed, label)
        except RuntimeError as exc:
            why = str(exc)[-300:]
    low, high = (ms * args.replications / 1000 for ms in COINR_MS_PER_REP)
    label = (
        f"COINr NOT measured in this run ({why}); {COINR_MS_PER_REP[0]:.0f}–"
        f"{COINR_MS_PER_REP[1]:.0f} ms per replication as measured earlier on this machine kind"
    )
    return Case(name, 100.0, ours, None, label, peer_stated=(low, high))


def chart(cases: list[Case], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 2.2 * len(cases) + 0.6))
    for ax, case in zip(axes if len(cases) > 1 else [axes], cases, strict=True):
        labels = [f"Qala {k}".strip() for k in case.ours]
        values = [t.wall for t in case.ours.values()]
        colours = ["#1f77b4"] * len(values)
        if case.peer is not None:
            labels.append(case.peer_label.split(",")[0])
            values.append(case.peer.wall)
            colours.append("#d62728")
        elif case.peer_stated is not None:
            labels.append("peer (stated)")
            values.append(case.peer_stated[0])
            colours.append("#ff9896")
        ax.barh(labels, values, color=colours)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", which="both", labelsize=7)
        ax.invert_yaxis()
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f} s", va="center", fontsize=8)
        best = (
            max(r for r in (case.ratio(k) for k in case.ours) if r is not None)
            if (case.peer is not None or case.peer_stated is not None)
            else None
        )
        ratio = "" if best is None else f" — {best:.0f}× (goal {case.goal:.0f}×)"
        ax.set_title(case.name + ratio, fontsize=9)
        ax.set_xlabel("seconds, whole command (log scale)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3, help="Qala commands: best of this many")
    parser.add_argument("--n-boot", type=int, default=5000)
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--skip-seminr", action="store_true")
    parser.add_argument("--skip-coinr", action="store_true")
    parser.add_argument(
        "--src",
        type=Path,
        nargs="+",
        default=[REPO / "src"],
        help="Qala source tree(s) to time (PYTHONPATH); several give a row each",
    )
    args = parser.parse_args()
    console = Console(width=max(140, shutil.get_terminal_size().columns))
    env = dict(os.environ)  # the peers' environment
    load_before = os.getloadavg()
    cases = [plssem_case(args.data_dir, env, args), coinr_case(args.data_dir, env, args)]
    load_after = os.getloadavg()

    table = Table(title="Whole commands: Qala against its peer, same run, this machine")
    for col in ("case", "Qala", "Qala s (CPU s)", "peer s (CPU s)", "ratio wall (CPU)", "goal"):
        table.add_column(col, justify="right" if col != "case" else "left")
    for case in cases:
        for label, ours in case.ours.items():
            if case.peer is not None:
                peer = f"{case.peer.wall:.2f} ({case.peer.cpu:.2f})"
            elif case.peer_stated is not None:
                peer = f"{case.peer_stated[0]:.1f}–{case.peer_stated[1]:.1f} (stated)"
            else:
                peer = "—"
            wall, cpu = case.ratio(label), case.ratio(label, "cpu")
            ratio = (
                "—" if wall is None else f"{wall:.0f}×" + ("" if cpu is None else f" ({cpu:.0f}×)")
            )
            met = wall is not None and wall >= case.goal
            table.add_row(
                case.name,
                label or "qala",
                f"{ours.wall:.3f} ({ours.cpu:.3f})",
                peer,
                ratio,
                f"{case.goal:.0f}× " + ("[green]met[/]" if met else "[red]not met[/]"),
            )
    console.print(table)
    for case in cases:
        console.print(f"peer of “{case.name}”: {case.peer_label}", highlight=False)
    cores = os.cpu_count()
    console.print(
        f"{cores} cores; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} "
        "after: figures taken under other load are upper bounds for both sides",
        highlight=False,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    chart(cases, RESULTS / "whole_commands.png")
    record = {
        "src": [str(src) for src in args.src],
        "load_average": {"before": load_before, "after": load_after},
        "cases": [
            {
                "name": c.name,
                "goal": c.goal,
                "ours": {k: vars(t) for k, t in c.ours.items()},
                "peer": None if c.peer is None else vars(c.peer),
                "peer_label": c.peer_label,
                "peer_stated_seconds": c.peer_stated,
            }
            for c in cases
        ],
    }
    (RESULTS / "whole_commands.json").write_text(json.dumps(record, indent=2))
    console.print(f"chart and record in {RESULTS}", highlight=False)


if __name__ == "__main__":
    main()
