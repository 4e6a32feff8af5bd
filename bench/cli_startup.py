"""Benchmark: how fast the `qala` command starts, run as a user runs it (a new process each time).

    .venv/bin/python bench/cli_startup.py [--runs 10] [--against ../main/src] [--no-hyperfine]

Times `qala --help`, a few `qala X Y --help`, and three real commands: `qala places list --json`
on a fresh SQLite store (made with `qala db upgrade`), `qala catalog show ID` and `qala sem fit`
on the synthetic adoption survey (no bootstrap). Prints the median and p95 of each against its
goal (issue "A fast CLI"): help under 0.25 s; for a real command, its fixed cost under 0.4 s,
where the fixed cost is the command's time less its work — the same work done by a plain Python
script (its own imports included), timed in a fresh interpreter too. The cpu columns (user +
system seconds of a run, and less the work's) move less than wall time on a loaded machine.

``--against SRC`` runs the same commands with another checkout's ``src`` first on the path (e.g.
the main branch) and prints the ratio. Uses hyperfine when installed, else a Python loop. Writes
bench/results/cli_startup.csv and cli_startup.png. Take final figures on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ADOPTION = REPO / "examples" / "adoption"
INDICATOR = "kz_sc.requests.median_hours_to_close"
HELP_GOAL = 0.25  # seconds, whole command
FIXED_COST_GOAL = 0.4  # seconds, beyond the command's work
console = Console(width=max(Console().width, 130))


@dataclass(frozen=True)
class Case:
    """One command line after `qala`, and for a real command the plain script doing its work."""

    args: tuple[str, ...]
    work: str | None = None  # Python source that prints the seconds its work took

    @property
    def label(self) -> str:
        return "qala " + " ".join(a if len(a) < 40 else "…/" + Path(a).name for a in self.args)

    @property
    def goal(self) -> float:
        return FIXED_COST_GOAL if self.work else HELP_GOAL


def timed(body: str) -> str:
    """A script printing how long ``body`` took, wall and CPU seconds (its imports included)."""
    return (
        "import time\n_wall, _cpu = time.perf_counter(), time.process_time()\n"
        f"{body}\n"
        "print(time.perf_counter() - _wall, time.process_time() - _cpu)\n"
    )


def cases(survey: Path) -> list[Case]:
    model = ADOPTION / "adoption.model"
    return [
        Case(("--help",)),
        Case(("places", "list", "--help")),
        Case(("catalog", "show", "--help")),
        Case(("sem", "fit", "--help")),
        Case(("budget", "ledger", "verify", "--help")),
        Case(
            ("places", "list", "--json"),
            timed(
                "import datetime, json\n"
                "from qala.runtime import Context\n"
                "from qala.settings import Settings\n"
                "from qala.components.catalog.services import list_places, single_industry_codes\n"
                "context = Context.from_settings(Settings())\n"
                "with context.database.session() as session:\n"
                "    places = list_places(session)\n"
                "    single_industry_codes(session, datetime.date.today().year)\n"
                "    json.dumps([[p.code, {r.year: r.population for r in p.populations}]"
                " for p in places])"
            ),
        ),
        Case(
            ("catalog", "show", INDICATOR),
            timed(
                "from qala.components.catalog.frameworks import load_catalogue\n"
                f"load_catalogue().indicator({INDICATOR!r})"
            ),
        ),
        Case(
            ("sem", "fit", str(model), str(survey), "--json"),
            timed(
                "import json\n"
                "import pandas as pd\n"
                "from qala.engines.plssem import PLSSEM\n"
                f"text = open({str(model)!r}, encoding='utf-8').read()\n"
                f"result = PLSSEM(text).fit(pd.read_csv({str(survey)!r}))\n"
                "json.dumps(result.to_dict())"
            ),
        ),
    ]


def environment(src: Path, database: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "QALA_DATABASE_URL": f"sqlite:///{database}"}


def command(case: Case) -> list[str]:
    return [sys.executable, "-m", "qala.cli.main", *case.args]


def with_hyperfine(
    case: Case, env: dict[str, str], runs: int, folder: Path
) -> tuple[list[float], float]:
    """Wall seconds of each run, and the mean CPU seconds (user + system) of a run."""
    export = folder / "hyperfine.json"
    subprocess.run(
        [
            "hyperfine",
            "--shell=none",
            "--warmup=1",
            f"--runs={runs}",
            "--style=none",
            f"--export-json={export}",
            " ".join(map(quote, command(case))),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    result = json.loads(export.read_text())["results"][0]
    return list(result["times"]), result["user"] + result["system"]


def quote(word: str) -> str:
    return f"'{word}'" if " " in word else word


def with_loop(case: Case, env: dict[str, str], runs: int) -> tuple[list[float], float]:
    """Wall seconds of each run, and the mean CPU seconds (user + system) of a run."""
    subprocess.run(command(case), env=env, check=True, stdout=subprocess.DEVNULL)  # warm-up
    times = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command(case), env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return times, cpu / runs


def work_seconds(case: Case, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of the case's work done by a plain script."""
    assert case.work is not None
    walls, cpus = [], []
    for _ in range(runs):
        printed = subprocess.run(
            [sys.executable, "-c", case.work], env=env, check=True, capture_output=True, text=True
        ).stdout
        wall, cpu = map(float, printed.split())
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class Timing:
    median: float
    p95: float
    work: float | None
    cpu: float  # mean user + system seconds of a run: steadier than wall time on a busy machine
    work_cpu: float | None

    @property
    def measured(self) -> float:
        """What the goal is about: the whole command, or its fixed cost."""
        return self.median - (self.work or 0.0)

    @property
    def measured_cpu(self) -> float:
        return self.cpu - (self.work_cpu or 0.0)


def measure(case: Case, env: dict[str, str], runs: int, folder: Path, hyperfine: bool) -> Timing:
    times, cpu = (
        with_hyperfine(case, env, runs, folder) if hyperfine else with_loop(case, env, runs)
    )
    work, work_cpu = work_seconds(case, env, max(3, runs // 2)) if case.work else (None, None)
    return Timing(statistics.median(times), p95(times), work, cpu, work_cpu)


def survey_file(folder: Path) -> Path:
    """The synthetic adoption survey (examples/adoption writes it; made here when absent)."""
    path = ADOPTION / "synthetic_adoption_survey.csv"
    if path.exists():
        return path
    spec = importlib.util.spec_from_file_location(
        "adoption_example", ADOPTION / "adoption_example.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = folder / "synthetic_adoption_survey.csv"
    example.simulate_survey().to_csv(path, index=False)
    return path


def fresh_store(src: Path, folder: Path) -> Path:
    database = folder / f"store-{src.parent.name}.sqlite"
    subprocess.run(
        [sys.executable, "-m", "qala.cli.main", "db", "upgrade"],
        env=environment(src, database),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return database


def verdict(case: Case, timing: Timing) -> str:
    ok = timing.measured < case.goal
    return f"[{'green' if ok else 'red'}]{'<' if ok else '≥'} {case.goal}[/]"


def report(rows: list[tuple[Case, Timing, Timing | None]]) -> None:
    table = Table(title="qala start-up (seconds; new process per run)")
    for column in ("command", "median", "p95", "work", "measured", "goal", "cpu", "cpu measured"):
        table.add_column(column, justify="left" if column in ("command", "goal") else "right")
    if rows and rows[0][2] is not None:
        table.add_column("against", justify="right")
        table.add_column("ratio", justify="right")
    for case, timing, other in rows:
        cells = [
            case.label,
            f"{timing.median:.3f}",
            f"{timing.p95:.3f}",
            "" if timing.work is None else f"{timing.work:.3f}",
            f"{timing.measured:.3f}" + (" fixed" if case.work else " whole"),
            verdict(case, timing),
            f"{timing.cpu:.3f}",
            f"{timing.measured_cpu:.3f}",
        ]
        if other is not None:
            cells += [f"{other.median:.3f}", f"{other.median / timing.median:.1f}×"]
        table.add_row(*cells)
    console.print(table)


def save(rows: list[tuple[Case, Timing, Timing | None]]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "cli_startup.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "command",
                "median_s",
                "p95_s",
                "cpu_s",
                "work_s",
                "work_cpu_s",
                "goal_s",
                "against_median_s",
            ]
        )
        for case, timing, other in rows:
            writer.writerow(
                [
                    case.label,
                    f"{timing.median:.4f}",
                    f"{timing.p95:.4f}",
                    f"{timing.cpu:.4f}",
                    "" if timing.work is None else f"{timing.work:.4f}",
                    "" if timing.work_cpu is None else f"{timing.work_cpu:.4f}",
                    case.goal,
                    "" if other is None else f"{other.median:.4f}",
                ]
            )
    chart(rows, RESULTS / "cli_startup.png")
    console.print(f"wrote {RESULTS / 'cli_startup.csv'} and {RESULTS / 'cli_startup.png'}")


def chart(rows: list[tuple[Case, Timing, Timing | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [case.label.removeprefix("qala ")[:38] for case, _, _ in rows]
    positions = range(len(rows))
    figure, axes = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.5))
    height = 0.38 if rows[0][2] is not None else 0.7
    medians = [timing.median for _, timing, _ in rows]
    work = [timing.work or 0.0 for _, timing, _ in rows]
    axes.barh([p + height / 2 for p in positions], work, height, color="#9ecae1", label="work")
    axes.barh(
        [p + height / 2 for p in positions],
        [m - w for m, w in zip(medians, work, strict=True)],
        height,
        left=work,
        color="#3182bd",
        label="start-up (fixed cost)",
    )
    if rows[0][2] is not None:
        against = [other.median if other else 0.0 for _, _, other in rows]
        axes.barh(
            [p - height / 2 for p in positions], against, height, color="#bbbbbb", label="against"
        )
    for p, (case, timing, _) in zip(positions, rows, strict=True):
        goal = case.goal + (timing.work or 0.0)
        axes.plot([goal, goal], [p - 0.45, p + 0.45], color="#d62728", linewidth=1.5)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("median seconds per run (red: goal)")
    axes.set_title("qala command start-up")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--against", type=Path, help="another checkout's src, e.g. ../main/src")
    parser.add_argument("--no-hyperfine", action="store_true", help="time with a Python loop")
    options = parser.parse_args()
    hyperfine = shutil.which("hyperfine") is not None and not options.no_hyperfine
    ours = REPO / "src"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        survey = survey_file(folder)
        stores = {ours: fresh_store(ours, folder)}
        if options.against:
            stores[options.against.resolve()] = fresh_store(options.against.resolve(), folder)
        load = os.getloadavg()[0]
        console.print(
            f"{'hyperfine' if hyperfine else 'Python loop'}, {options.runs} runs each; "
            f"load average {load:.2f} on {os.cpu_count()} cores"
        )
        rows = []
        for case in cases(survey):
            timing = measure(case, environment(ours, stores[ours]), options.runs, folder, hyperfine)
            other = None
            if options.against:
                against = options.against.resolve()
                other = measure(
                    case, environment(against, stores[against]), options.runs, folder, hyperfine
                )
            rows.append((case, timing, other))
            console.print(f"  {case.label}: {timing.median:.3f} s", highlight=False)
    report(rows)
    save(rows)


if __name__ == "__main__":
    main()
