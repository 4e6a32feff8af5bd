"""Read and write the pabulib ``.pb`` format (Faliszewski et al. 2023), string in, string out.

A file has three sections, each a ``;``-separated table whose first row is a header::

    META
    key;value
    budget;100000
    vote_type;approval
    PROJECTS
    project_id;cost;name
    1;40000;Skate park
    VOTES
    voter_id;vote
    v1;1,3

Fields may be quoted with ``"`` (a quoted field may hold ``;``). Every problem found is reported
together, each with its line number and column.
"""

from __future__ import annotations

import csv
import io
from fractions import Fraction

from qala.core.errors import Problem, raise_if_problems
from qala.engines.pb.model import Ballot, BallotKind, Election, Instance, Profile, Project

_SECTIONS = ("meta", "projects", "votes")
_VOTE_TYPES = {
    "approval": BallotKind.APPROVAL,
    "choose-1": BallotKind.APPROVAL,
    "cumulative": BallotKind.CUMULATIVE,
    "scoring": BallotKind.SCORING,
    "ordinal": BallotKind.ORDINAL,
}
_INT_LIMITS = ("min_length", "max_length")
_NUMBER_LIMITS = (
    "min_points",
    "max_points",
    "min_sum_points",
    "max_sum_points",
    "min_sum_cost",
    "max_sum_cost",
)


def _number(text: str) -> Fraction:
    """Exact number from pabulib text (``12000``, ``12000.50`` or ``12000,50``)."""
    return Fraction(text.strip().replace(",", "."))


def parse_pabulib(text: str, *, source: str | None = None, validate: bool = True) -> Election:
    """Parse a pabulib file's content.

    Parameters
    ----------
    text
        The whole file as a string.
    source
        File name used in error messages.
    validate
        Also check each ballot against the ballot limits in META (lengths, points, costs).

    Returns
    -------
    Election
        The instance and the profile.

    Raises
    ------
    qala.core.errors.ValidationError
        Listing every problem with its line and column.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    problems: list[Problem] = []

    def problem(
        reason: str, line: int | None, column: str | None = None, value: object = None
    ) -> None:
        problems.append(Problem(reason, file=source, row=line, column=column, value=value))

    meta: dict[str, str] = {}
    project_rows: list[tuple[int, dict[str, str]]] = []
    vote_rows: list[tuple[int, dict[str, str]]] = []
    section = ""
    header: list[str] | None = None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"')
    seen_sections: set[str] = set()
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        first = row[0].strip().lower()
        if first in _SECTIONS and len([c for c in row if c.strip()]) == 1:
            section = first
            seen_sections.add(first)
            header = None
            continue
        if not section:
            problem("content before the first section (expected META)", line, value=row[0])
            continue
        if header is None:
            header = [c.strip() for c in row]
            if section == "projects":
                for needed in ("project_id", "cost"):
                    if needed not in header:
                        problem(f"PROJECTS header lacks `{needed}`", line, needed)
            elif section == "votes":
                for needed in ("voter_id", "vote"):
                    if needed not in header:
                        problem(f"VOTES header lacks `{needed}`", line, needed)
            continue
        if len(row) > len(header):
            extra = row[len(header) :]
            if any(c.strip() for c in extra):
                problem(
                    f"{len(row)} fields but the header has {len(header)}", line, value=";".join(row)
                )
        record = {header[i]: row[i].strip() for i in range(min(len(row), len(header)))}
        if section == "meta":
            if len(row) < 2:
                problem("META line needs `key;value`", line, "value", row[0])
                continue
            meta[row[0].strip()] = row[1].strip()
        elif section == "projects":
            project_rows.append((line, record))
        else:
            vote_rows.append((line, record))
    for needed in _SECTIONS:
        if needed not in seen_sections:
            problem(f"section {needed.upper()} is missing", None)

    budget = Fraction(0)
    if "budget" not in meta:
        problem("META lacks `budget`", None, "budget")
    else:
        try:
            budget = _number(meta["budget"])
        except (ValueError, ZeroDivisionError):
            problem("`budget` must be a number", None, "budget", meta["budget"])
    vote_type = meta.get("vote_type", "").strip().lower()
    kind = _VOTE_TYPES.get(vote_type)
    if kind is None:
        problem(
            "`vote_type` must be one of approval, choose-1, cumulative, scoring, ordinal",
            None,
            "vote_type",
            meta.get("vote_type"),
        )
        kind = BallotKind.APPROVAL

    projects: list[Project] = []
    seen_ids: set[str] = set()
    for line, record in project_rows:
        pid = record.get("project_id", "")
        if not pid:
            problem("empty project_id", line, "project_id")
            continue
        if pid in seen_ids:
            problem("duplicate project_id", line, "project_id", pid)
            continue
        seen_ids.add(pid)
        try:
            cost = _number(record.get("cost", ""))
        except (ValueError, ZeroDivisionError):
            problem("`cost` must be a number", line, "cost", record.get("cost"))
            continue
        if cost < 0:
            problem("`cost` must be >= 0", line, "cost", record.get("cost"))
            continue
        others = {k: v for k, v in record.items() if k not in ("project_id", "cost")}
        projects.append(Project(pid, cost, others))

    ballots: list[Ballot] = []
    cardinal = kind in (BallotKind.CUMULATIVE, BallotKind.SCORING)
    voter_ids: set[str] = set()
    for line, record in vote_rows:
        vid = record.get("voter_id", "")
        if not vid:
            problem("empty voter_id", line, "voter_id")
        elif vid in voter_ids:
            problem("duplicate voter_id", line, "voter_id", vid)
        voter_ids.add(vid)
        vote_text = record.get("vote", "")
        names = tuple(p.strip() for p in vote_text.split(",") if p.strip())
        unknown = [p for p in names if p not in seen_ids]
        if unknown:
            problem("unknown project id (not in PROJECTS)", line, "vote", ",".join(unknown))
        if len(set(names)) != len(names):
            problem("a project is named twice on one ballot", line, "vote", vote_text)
        points: tuple[Fraction, ...] | None = None
        if cardinal:
            raw = [p for p in record.get("points", "").split(",") if p.strip()]
            try:
                points = tuple(_number(p) for p in raw)
            except (ValueError, ZeroDivisionError):
                problem(
                    "`points` must be numbers separated by commas",
                    line,
                    "points",
                    record.get("points"),
                )
                points = None
            if points is not None and len(points) != len(names):
                problem(
                    f"{len(points)} points for {len(names)} projects in `vote`",
                    line,
                    "points",
                    record.get("points"),
                )
                points = None
            if points is None:
                points = tuple(Fraction(0) for _ in names)
        others = {k: v for k, v in record.items() if k not in ("voter_id", "vote", "points")}
        ballots.append(Ballot(vid, names, points, others))

    limits: dict[str, object] = {}
    for key in _INT_LIMITS:
        if key in meta and meta[key].strip() not in ("", "None"):
            try:
                limits[key] = int(meta[key])
            except ValueError:
                problem(f"`{key}` must be a whole number", None, key, meta[key])
    for key in _NUMBER_LIMITS:
        if key in meta and meta[key].strip() not in ("", "None"):
            try:
                limits[key] = _number(meta[key])
            except (ValueError, ZeroDivisionError):
                problem(f"`{key}` must be a number", None, key, meta[key])
    raise_if_problems(problems, f"invalid pabulib file{'' if source is None else ' ' + source}")

    instance = Instance(projects, budget, meta)
    profile = Profile(kind, ballots, **limits)  # type: ignore[arg-type]
    if validate:
        rows = [line for line, _ in vote_rows]
        ballot_problems = [
            Problem(p.reason, file=source, row=p.row, column=p.column, value=p.value, code=p.code)
            for p in profile.validate(instance, rows=rows)
        ]
        raise_if_problems(
            ballot_problems,
            f"ballots break the limits in META{'' if source is None else ' of ' + source}",
        )
    return Election(instance, profile)


def _format_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value)) if float(value) == value else f"{value.numerator}/{value.denominator}"


def write_pabulib(instance: Instance, profile: Profile) -> str:
    """Write an instance and its profile as pabulib text.

    ``num_projects``, ``num_votes``, ``budget``, ``vote_type`` and the ballot limits are written from
    the objects; other META keys, project columns and voter columns are kept as they are.
    """
    meta = dict(instance.meta)
    meta["num_projects"] = str(len(instance))
    meta["num_votes"] = str(len(profile))
    meta["budget"] = _format_number(instance.budget_limit)
    if meta.get("vote_type") != "choose-1" or profile.kind is not BallotKind.APPROVAL:
        meta["vote_type"] = profile.kind.value
    for key in (*_INT_LIMITS, *_NUMBER_LIMITS):
        value = getattr(profile, key)
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = str(value) if isinstance(value, int) else _format_number(value)

    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quotechar='"', lineterminator="\n")
    out.write("META\n")
    writer.writerow(["key", "value"])
    for key, value in meta.items():
        writer.writerow([key, value])

    out.write("PROJECTS\n")
    project_columns = ["project_id", "cost"]
    for p in instance:
        for key in p.meta:
            if key not in project_columns:
                project_columns.append(key)
    writer.writerow(project_columns)
    for p in instance:
        cells = {"project_id": p.id, "cost": _format_number(p.cost), **p.meta}
        writer.writerow([cells.get(c, "") for c in project_columns])

    out.write("VOTES\n")
    cardinal = profile.kind in (BallotKind.CUMULATIVE, BallotKind.SCORING)
    vote_columns = ["voter_id", "vote"] + (["points"] if cardinal else [])
    for b in profile:
        for key in b.meta:
            if key not in vote_columns:
                vote_columns.append(key)
    writer.writerow(vote_columns)
    for b in profile:
        cells = {"voter_id": b.voter_id, "vote": ",".join(b.projects), **b.meta}
        if cardinal:
            cells["points"] = ",".join(_format_number(x) for x in (b.points or ()))
        writer.writerow([cells.get(c, "") for c in vote_columns])
    return out.getvalue()
