"""Demo data — ILLUSTRATIVE, generated with a fixed seed; no real vote, resident or payment.

- ``astana-pb-2025``: a finished city-wide process (approval ballots, at most 3 choices, Method of
  Equal Shares with Add1) whose selected projects are being implemented, with contractors,
  milestones, payments, risks, impact notes and residents' ratings;
- ``astana-yesil-pb-2026``: a Yesil district process in its voting phase, with proposals (some
  found infeasible, with public reasons) and the ballots cast so far;
- two city projects outside participatory budgeting;
- an open survey on green spaces and a past public hearing;
- demo citizens with synthetic, check-digit-correct IINs (:data:`DEMO_CITIZENS`), registered in
  the voting process but not yet voted, so that the dashboard can be tried;
- the indicators, written to the catalogue as illustrative values.

Loading twice changes nothing: each part is skipped when its code exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.budgeting.ballots import cast_ballot
from qala.components.budgeting.consultations import (
    NewConsultation,
    NewQuestion,
    add_comment,
    create_consultation,
    record_outcome,
    respond,
)
from qala.components.budgeting.iin import make_iin
from qala.components.budgeting.models import Consultation, Process, Project
from qala.components.budgeting.process import (
    NewProcess,
    NewProposal,
    advance,
    create_process,
    list_proposals,
    review_proposal,
    submit_proposal,
)
from qala.components.budgeting.projects import (
    NewProject,
    ProjectSummary,
    add_milestone,
    add_risk,
    complete_milestone,
    create_project,
    list_projects,
    rate_project,
    record_payment,
    update_project,
)
from qala.components.budgeting.voters import register_voter
from qala.runtime import Context

FINISHED = "astana-pb-2025"
VOTING = "astana-yesil-pb-2026"
SURVEY = "astana-green-spaces-2026"
HEARING = "astana-yesil-hearing-2026"
SEED = 2025
ILLUSTRATIVE = {
    "kk": "(иллюстрациялық демо деректер)",
    "ru": "(иллюстративные демонстрационные данные)",
    "en": "(illustrative demo data)",
}
"""The label of generated text, in the language of the text it ends."""
DEMO_NOTE = "(иллюстративно)"
"""The label of the notes demo staff of the akimat write (in Russian, as its working papers)."""

DEMO_CITIZENS: tuple[tuple[str, str], ...] = (
    ("Aigerim (demo)", make_iin(date(1991, 4, 12), sex="female", serial=101)),
    ("Nurlan (demo)", make_iin(date(1985, 11, 3), sex="male", serial=202)),
    ("Dana (demo)", make_iin(date(2004, 7, 28), sex="female", serial=303)),
    ("Yerlan (demo)", make_iin(date(1968, 1, 19), sex="male", serial=404)),
    ("Saule (demo)", make_iin(date(1999, 9, 9), sex="female", serial=505)),
)
"""Synthetic residents (name, IIN) for trying the voting process; not real people."""

IDEAS: tuple[tuple[str, str, str, str, int, float], ...] = (
    # (kk, ru, en, category, cost in tenge, popularity weight)
    (
        "Аулаға арналған балалар алаңы",
        "Детская площадка во дворе",
        "Courtyard playground",
        "children",
        45_000_000,
        3.0,
    ),
    (
        "Жағалау бойындағы велосипед жолы",
        "Велодорожка вдоль набережной",
        "Cycle lane along the embankment",
        "mobility",
        90_000_000,
        2.2,
    ),
    (
        "Саябақтағы жарықдиодты жарықтандыру",
        "Светодиодное освещение в парке",
        "LED lighting in the park",
        "safety",
        38_000_000,
        2.0,
    ),
    (
        "Жылытылған аялдама",
        "Тёплая автобусная остановка",
        "Heated bus stop",
        "mobility",
        24_000_000,
        2.6,
    ),
    ("Воркаут алаңы", "Площадка для воркаута", "Street workout area", "sport", 16_000_000, 1.4),
    (
        "Бульварға ағаштар мен орындықтар",
        "Деревья и скамейки на бульваре",
        "Trees and benches on the boulevard",
        "green",
        52_000_000,
        2.4,
    ),
    (
        "Емхана жанындағы пандустар",
        "Пандусы у поликлиники",
        "Ramps at the clinic",
        "accessibility",
        12_000_000,
        1.8,
    ),
    (
        "Қалдықтарды бөлек жинау орындары",
        "Пункты раздельного сбора отходов",
        "Waste sorting points",
        "ecology",
        20_000_000,
        1.5,
    ),
    (
        "Кітапхана жанындағы оқу бағы",
        "Читальный сад у библиотеки",
        "Reading garden at the library",
        "culture",
        30_000_000,
        0.9,
    ),
    ("Қысқы мұз айдыны", "Зимний каток", "Winter ice rink", "sport", 60_000_000, 1.7),
    (
        "Иттерді серуендету алаңы",
        "Площадка для выгула собак",
        "Dog walking area",
        "green",
        14_000_000,
        0.8,
    ),
    (
        "Бағдаршамы бар жаяу жүргінші өткелі",
        "Пешеходный переход со светофором",
        "Pedestrian crossing with lights",
        "safety",
        28_000_000,
        2.1,
    ),
)


@dataclass
class DemoReport:
    created: list[str]
    ballots: int
    projects: int
    indicator_values: int

    def summary(self) -> str:
        made = ", ".join(self.created) if self.created else "processes already there"
        return (
            f"{made}; {self.ballots} illustrative ballots; {self.projects} tracked projects; "
            f"{self.indicator_values} indicator values"
        )


def _ahead(now: datetime, days: int) -> date:
    """A planned date ``days`` after the later of today and 1 January 2026."""
    return max(now.date(), date(2026, 1, 1)) + timedelta(days=days)


def _exists(context: Context, model: type[Process] | type[Consultation], code: str) -> bool:
    with context.database.session() as session:
        return session.scalar(select(model.id).where(model.code == code)) is not None


def _voters(rng: np.random.Generator, count: int, *, offset: int) -> list[str]:
    """Synthetic IINs of adults (born 1950–2007)."""
    result = []
    for k in range(count):
        born = date(
            int(rng.integers(1950, 2008)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        )
        result.append(make_iin(born, sex="female" if k % 2 else "male", serial=offset + 7 * k))
    return result


def _ballot(
    rng: np.random.Generator, codes: list[str], weights: np.ndarray, most: int
) -> list[str]:
    size = int(rng.integers(1, most + 1))
    picked = rng.choice(
        len(codes), size=min(size, len(codes)), replace=False, p=weights / weights.sum()
    )
    return [codes[int(j)] for j in sorted(picked)]


def _calendar(start: datetime) -> dict[str, datetime]:
    """A demo process's calendar: two weeks of proposals, review, then a month of voting."""
    return {
        "proposals_open_at": start,
        "proposals_close_at": start + timedelta(days=15),
        "review_close_at": start + timedelta(days=28),
        "voting_open_at": start + timedelta(days=30),
        "voting_close_at": start + timedelta(days=60),
    }


def _run_process(
    context: Context,
    *,
    code: str,
    place: str,
    title: dict[str, str],
    budget: int,
    start: datetime,
    ideas: list[int],
    infeasible: dict[int, str],
    ballots: int,
    until: datetime | None,
    rng: np.random.Generator,
    secret_key: str,
    capital_budget: int | None,
    eligible: int | None,
) -> int:
    """Create a process from ``start``, run its proposals, review and ``ballots`` ballots cast
    before ``until`` (the end of voting when None, then count it)."""
    calendar = _calendar(start)
    with context.database.transaction() as session:
        create_process(
            session,
            NewProcess(
                code=code,
                place_code=place,
                title=title,
                description={
                    "en": f"Residents propose and choose projects for the budget. {ILLUSTRATIVE['en']}",
                    "ru": f"Жители предлагают и выбирают проекты. {ILLUSTRATIVE['ru']}",
                    "kk": f"Тұрғындар жобаларды ұсынып, таңдайды. {ILLUSTRATIVE['kk']}",
                },
                budget=budget,
                max_choices=3,
                rule="mes",
                completion="add1",
                min_voter_age=16,
                capital_budget=capital_budget,
                eligible_voters=eligible,
                proposals_open_at=calendar["proposals_open_at"],
                proposals_close_at=calendar["proposals_close_at"],
                review_close_at=calendar["review_close_at"],
                voting_open_at=calendar["voting_open_at"],
                voting_close_at=calendar["voting_close_at"],
            ),
            actor="akimat.demo",
            now=start,
            secret_key=secret_key,
            illustrative=True,
        )
        _propose(session, code, ideas, start=start)
        _review(session, code, ideas, infeasible, at=calendar["proposals_close_at"])
        advance(
            session, code, to_phase="voting", actor="akimat.demo", now=calendar["voting_open_at"]
        )
        _vote(
            session,
            code,
            ideas,
            rng,
            ballots=ballots,
            opens=calendar["voting_open_at"],
            ends=until or calendar["voting_close_at"],
            offset=1000 if until else 5000,
            secret_key=secret_key,
        )
        if until is None:
            _count(session, code, closed=calendar["voting_close_at"] + timedelta(hours=1))
    return ballots


def _propose(session: Session, code: str, ideas: list[int], *, start: datetime) -> None:
    """Residents propose the ``ideas``, a day apart."""
    for k, idea in enumerate(ideas):
        kk, ru, en, category, cost, _weight = IDEAS[idea]
        submit_proposal(
            session,
            code,
            NewProposal(
                title={"kk": kk, "ru": ru, "en": en},
                description={
                    "en": f"{en}, proposed by residents. {ILLUSTRATIVE['en']}",
                    "ru": f"{ru} — предложение жителей. {ILLUSTRATIVE['ru']}",
                    "kk": f"{kk} — тұрғындардың ұсынысы. {ILLUSTRATIVE['kk']}",
                },
                estimated_cost=cost,
                category=category,
            ),
            author=f"resident.demo{k}",
            now=start + timedelta(days=1 + k),
            illustrative=True,
        )


def _review(
    session: Session, code: str, ideas: list[int], infeasible: dict[int, str], *, at: datetime
) -> None:
    """Once proposals close, engineers find each feasible but the ``infeasible`` ideas."""
    review_at = at + timedelta(hours=2)
    advance(session, code, to_phase="review", actor="akimat.demo", now=review_at)
    for k, proposal in enumerate(list_proposals(session, code)):
        reason = infeasible.get(ideas[k])
        review_proposal(
            session,
            code,
            proposal.code,
            feasible=reason is None,
            reason=reason
            or "Реализуемо: участок в коммунальной собственности, смета соответствует "
            f"единичным расценкам акимата. {DEMO_NOTE}",
            cost=None if reason else int(round(proposal.estimated_cost * 1.05, -5)),
            actor="engineer.demo",
            now=review_at + timedelta(days=3),
        )


def _vote(
    session: Session,
    code: str,
    ideas: list[int],
    rng: np.random.Generator,
    *,
    ballots: int,
    opens: datetime,
    ends: datetime,
    offset: int,
    secret_key: str,
) -> None:
    """``ballots`` synthetic adults vote, spread evenly from ``opens`` to ``ends``, choosing up
    to three feasible projects as often as their ideas are popular."""
    feasible = [p.code for p in list_proposals(session, code, status="feasible")]
    by_code = {p.code: ideas[k] for k, p in enumerate(list_proposals(session, code))}
    weights = np.array([IDEAS[by_code[c]][5] for c in feasible])
    span = (ends - opens).total_seconds()
    for k, voter in enumerate(_voters(rng, ballots, offset=offset)):
        cast_ballot(
            session,
            code,
            iin=voter,
            choices=_ballot(rng, feasible, weights, 3),
            secret_key=secret_key,
            now=opens + timedelta(seconds=float(span) * (k + 0.5) / ballots),
            illustrative=True,
        )


def _count(session: Session, code: str, *, closed: datetime) -> None:
    """Results an hour after voting closed; implementation a week later."""
    advance(session, code, to_phase="results", actor="akimat.demo", now=closed)
    advance(
        session,
        code,
        to_phase="implementation",
        actor="akimat.demo",
        now=closed + timedelta(days=7),
    )


CONTRACTORS = (
    "ТОО «Астана Құрылыс» (демо)",
    "ТОО «Жасыл Қала» (демо)",
    "ТОО «Сарыарқа Инжиниринг» (демо)",
)
DELIVERIES: dict[int, tuple[datetime, int, int, str, str]] = {
    # The k-th project of 2025 that is delivered: when; its final payment is the rest of the
    # budget, less (-1) or more (+1) by a part of the budget (1/20, 1/10); the payment's purpose
    # and the impact note.
    0: (
        datetime(2025, 11, 15, 12, tzinfo=UTC),
        -1,
        20,
        f"Окончательный расчёт {DEMO_NOTE}",
        f"Сдано досрочно и дешевле сметы; жители попросили больше скамеек. {DEMO_NOTE}",
    ),
    1: (
        datetime(2025, 12, 20, 12, tzinfo=UTC),
        +1,
        10,
        f"Окончательный расчёт с дополнительными работами {DEMO_NOTE}",
        f"Ежедневно пользуются около 300 жителей; понадобился дополнительный дренаж. {DEMO_NOTE}",
    ),
}


def _implement(
    context: Context, rng: np.random.Generator, *, secret_key: str, now: datetime
) -> None:
    """Move the 2025 projects along: contractors, milestones, payments, risks, delivery, ratings."""
    with context.database.transaction() as session:
        projects = list_projects(session, today=now.date(), process_code=FINISHED)
        for k, project in enumerate(projects):
            began = datetime(2025, 7, 1, 9, tzinfo=UTC) + timedelta(days=7 * k)
            advance_payment = _start_works(session, project, k, began=began, now=now)
            if k in DELIVERIES:
                _deliver(session, project, k, advance_payment)
        for project in list_projects(session, today=now.date(), status="delivered"):
            for r in range(24):
                rate_project(
                    session,
                    project.code,
                    rater=f"resident.demo{r}",
                    stars=int(
                        np.clip(
                            rng.normal(4.0 if project.late is False else 3.2, 0.9), 1, 5
                        ).round()
                    ),
                    secret_key=secret_key,
                    now=now - timedelta(days=10),
                    illustrative=True,
                )


def _start_works(
    session: Session, project: ProjectSummary, k: int, *, began: datetime, now: datetime
) -> int:
    """The ``k``-th project gets its contractor, two milestones (design done), a 30 % advance
    payment and a risk; returns the advance."""
    update_project(
        session,
        project.code,
        {
            "contractor": CONTRACTORS[k % len(CONTRACTORS)],
            "status": "in_progress",
            # Delivered ones: on time (k = 0) and late (k = 1); the rest due after the
            # day the demo is loaded, whenever that is.
            "planned_end": {0: date(2025, 12, 31), 1: date(2025, 11, 30)}.get(
                k, _ahead(now, 60 + 30 * k)
            ),
        },
        actor="akimat.demo",
        now=began,
    )
    design = add_milestone(
        session,
        project.code,
        title="Проект утверждён",
        due_on=(began + timedelta(days=30)).date(),
        actor="akimat.demo",
        now=began,
    )
    add_milestone(
        session,
        project.code,
        title="Работы завершены",
        due_on=(began + timedelta(days=150)).date(),
        actor="akimat.demo",
        now=began,
    )
    complete_milestone(
        session,
        project.code,
        int(design["id"]),
        done_on=(began + timedelta(days=26 + 5 * k)).date(),
        actor="akimat.demo",
        now=began + timedelta(days=90),
    )
    advance_payment = project.budget * 3 // 10
    record_payment(
        session,
        project.code,
        paid_on=(began + timedelta(days=10)).date(),
        amount=advance_payment,
        payee=CONTRACTORS[k % len(CONTRACTORS)],
        purpose=f"Аванс (30 %) {DEMO_NOTE}",
        reference=f"PP-2025-{100 + k}",
        actor="treasury.demo",
        now=began + timedelta(days=10),
    )
    add_risk(
        session,
        project.code,
        risk="Зимние морозы задерживают земляные работы",
        likelihood=3 + (k % 2),
        impact=3,
        owner="Управление строительства акимата",
        mitigation="Земляные работы — до ноября; тепляки.",
        actor="akimat.demo",
        now=began + timedelta(days=1),
    )
    return advance_payment


def _deliver(session: Session, project: ProjectSummary, k: int, advance_payment: int) -> None:
    """The final payment and the delivery of the ``k``-th project, as :data:`DELIVERIES` says
    (the second one late, past its planned end, and over budget: the indicators show it)."""
    finished, sign, part, purpose, impact = DELIVERIES[k]
    record_payment(
        session,
        project.code,
        paid_on=finished.date(),
        amount=project.budget - advance_payment + sign * (project.budget // part),
        payee=CONTRACTORS[k % len(CONTRACTORS)],
        purpose=purpose,
        reference=f"PP-2025-{200 + k}",
        actor="treasury.demo",
        now=finished,
    )
    update_project(
        session,
        project.code,
        {"status": "delivered", "actual_end": finished.date(), "impact_note": impact},
        actor="akimat.demo",
        now=finished,
    )


def _city_projects(context: Context, now: datetime) -> None:
    with context.database.transaction() as session:
        if (
            session.scalar(select(Project.id).where(Project.code == "astana-led-kabanbay"))
            is not None
        ):
            return
        start = datetime(2025, 5, 5, 9, tzinfo=UTC)
        create_project(
            session,
            NewProject(
                code="astana-led-kabanbay",
                place_code="astana",
                title={
                    "en": "LED street lighting on Kabanbay Batyr avenue",
                    "ru": "Светодиодное освещение проспекта Кабанбай батыра",
                    "kk": "Қабанбай батыр даңғылын жарықдиодты жарықтандыру",
                },
                description={
                    "en": f"City project replacing 1,200 sodium lamps. {ILLUSTRATIVE['en']}",
                    "ru": f"Городской проект: замена 1 200 натриевых ламп. {ILLUSTRATIVE['ru']}",
                    "kk": f"Қалалық жоба: 1 200 натрий шамын ауыстыру. {ILLUSTRATIVE['kk']}",
                },
                budget=640_000_000,
                planned_start=date(2025, 5, 15),
                planned_end=_ahead(now, 200),
                contractor="ТОО «Энерго Сервис» (демо)",
                lat=51.1175,  # illustrative: the avenue south of the Esil
                lon=71.4210,
            ),
            actor="akimat.demo",
            now=start,
            illustrative=True,
        )
        update_project(
            session,
            "astana-led-kabanbay",
            {"status": "in_progress"},
            actor="akimat.demo",
            now=start + timedelta(days=10),
        )
        record_payment(
            session,
            "astana-led-kabanbay",
            paid_on=date(2025, 6, 1),
            amount=192_000_000,
            payee="ТОО «Энерго Сервис» (демо)",
            purpose=f"Аванс {DEMO_NOTE}",
            reference="PP-2025-900",
            actor="treasury.demo",
            now=start + timedelta(days=27),
        )
        add_risk(
            session,
            "astana-led-kabanbay",
            risk="Поставка ламп задерживается из-за импортной логистики",
            likelihood=4,
            impact=3,
            owner="Управление энергетики и ЖКХ",
            mitigation="Два поставщика; принимаются частичные поставки.",
            actor="akimat.demo",
            now=start + timedelta(days=2),
        )
        create_project(
            session,
            NewProject(
                code="astana-heated-stops",
                place_code="astana",
                title={
                    "en": "Heated bus stops, 40 sites",
                    "ru": "Тёплые остановки, 40 мест",
                    "kk": "Жылы аялдамалар, 40 орын",
                },
                description={
                    "en": f"City project for winter comfort of public transport users. {ILLUSTRATIVE['en']}",
                    "ru": f"Городской проект: тепло зимой для пассажиров общественного транспорта. {ILLUSTRATIVE['ru']}",
                    "kk": f"Қалалық жоба: қоғамдық көлік жолаушыларына қыста жылы аялдама. {ILLUSTRATIVE['kk']}",
                },
                budget=280_000_000,
                planned_start=date(2025, 8, 1),
                planned_end=_ahead(now, 120),
                contractor="ТОО «Аялдама Жүйелері» (демо)",
                lat=51.1690,  # illustrative: stops on the right bank
                lon=71.4460,
            ),
            actor="akimat.demo",
            now=start + timedelta(days=60),
            illustrative=True,
        )


def _survey(context: Context, rng: np.random.Generator, *, secret_key: str, now: datetime) -> None:
    """A survey on green spaces, open for 30 days around ``now``, with 60 answers and comments."""
    if _exists(context, Consultation, SURVEY):
        return
    opens = now - timedelta(days=12)
    with context.database.transaction() as session:
        create_consultation(
            session,
            NewConsultation(
                code=SURVEY,
                place_code="astana",
                kind="survey",
                title={
                    "kk": "Астананың жасыл аймақтары",
                    "ru": "Зелёные зоны Астаны",
                    "en": "Green spaces of Astana",
                },
                description={
                    "en": f"Which green spaces matter to you? {ILLUSTRATIVE['en']}",
                    "ru": f"Какие зелёные зоны вам важны? {ILLUSTRATIVE['ru']}",
                    "kk": f"Сізге қай жасыл аймақтар маңызды? {ILLUSTRATIVE['kk']}",
                },
                opens_at=opens,
                closes_at=now + timedelta(days=18),
                questions=_survey_questions(),
            ),
            actor="akimat.demo",
            now=opens,
            illustrative=True,
        )
        languages = ("ru", "kk", "en")
        for r in range(60):
            respond(
                session,
                SURVEY,
                respondent=f"resident.demo{r}",
                language=languages[r % 3 if r % 5 else 1],
                answers=_survey_answers(rng, r),
                secret_key=secret_key,
                now=opens + timedelta(hours=3 * r),
                illustrative=True,
            )
        add_comment(
            session,
            SURVEY,
            author="resident.demo1",
            text="Сохраните, пожалуйста, берёзовую рощу у реки. (иллюстративно)",
            language="ru",
            now=opens + timedelta(days=1),
            illustrative=True,
        )
        add_comment(
            session,
            SURVEY,
            author="resident.demo2",
            text="Аулаларға көбірек көгал керек. (иллюстрациялық)",
            language="kk",
            now=opens + timedelta(days=2),
            illustrative=True,
        )


def _survey_questions() -> list[NewQuestion]:
    """A choice, several choices, a 1–5 scale and an optional idea, in kk, ru and en."""
    return [
        NewQuestion(
            "priority",
            "single",
            {
                "kk": "Ең маңыздысы не?",
                "ru": "Что важнее всего?",
                "en": "What matters most?",
            },
            options=[
                {
                    "key": "parks",
                    "label": {"kk": "Саябақтар", "ru": "Парки", "en": "Parks"},
                },
                {
                    "key": "courtyards",
                    "label": {"kk": "Аулалар", "ru": "Дворы", "en": "Courtyards"},
                },
                {
                    "key": "boulevards",
                    "label": {
                        "kk": "Бульварлар",
                        "ru": "Бульвары",
                        "en": "Boulevards",
                    },
                },
            ],
        ),
        NewQuestion(
            "uses",
            "multiple",
            {
                "kk": "Не үшін барасыз?",
                "ru": "Зачем вы туда ходите?",
                "en": "What do you go there for?",
            },
            options=[
                {
                    "key": "walk",
                    "label": {"kk": "Серуен", "ru": "Прогулки", "en": "Walking"},
                },
                {
                    "key": "sport",
                    "label": {"kk": "Спорт", "ru": "Спорт", "en": "Sport"},
                },
                {
                    "key": "children",
                    "label": {
                        "kk": "Балалармен",
                        "ru": "С детьми",
                        "en": "With children",
                    },
                },
            ],
        ),
        NewQuestion(
            "satisfaction",
            "scale",
            {
                "kk": "Қаншалықты қанағаттанасыз?",
                "ru": "Насколько вы довольны?",
                "en": "How satisfied are you?",
            },
            scale_min=1,
            scale_max=5,
        ),
        NewQuestion(
            "idea",
            "text",
            {
                "kk": "Сіздің ұсынысыңыз",
                "ru": "Ваше предложение",
                "en": "Your suggestion",
            },
            required=False,
        ),
    ]


def _survey_answers(rng: np.random.Generator, r: int) -> dict[str, object]:
    """The ``r``-th respondent's answers: mostly parks, one in seven with an idea."""
    return {
        "priority": ("parks", "courtyards", "boulevards")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))],
        "uses": sorted(
            {
                ("walk", "sport", "children")[int(j)]
                for j in rng.choice(3, size=int(rng.integers(1, 4)), replace=False)
            }
        ),
        "satisfaction": int(rng.integers(2, 6)),
        "idea": "Побольше тенистых деревьев, пожалуйста. (иллюстративно)" if r % 7 == 0 else "",
    }


def _hearing(context: Context, *, now: datetime) -> None:
    """A district's budget hearing held a month before ``now``, with its outcome."""
    if _exists(context, Consultation, HEARING):
        return
    opens = now - timedelta(days=50)
    held = now - timedelta(days=30)
    with context.database.transaction() as session:
        create_consultation(
            session,
            NewConsultation(
                code=HEARING,
                place_code="astana-yesil-district",
                kind="hearing",
                title={
                    "kk": "Есіл ауданының бюджет тыңдауы",
                    "ru": "Публичные слушания по бюджету района Есиль",
                    "en": "Yesil district budget hearing",
                },
                description={
                    "en": f"Public hearing before the district's participatory budget. {ILLUSTRATIVE['en']}",
                    "ru": f"Публичные слушания перед бюджетом участия района. {ILLUSTRATIVE['ru']}",
                    "kk": f"Аудандағы қатысу бюджеті алдындағы көпшілік тыңдау. {ILLUSTRATIVE['kk']}",
                },
                opens_at=opens,
                closes_at=held + timedelta(days=5),
                hearing_at=held,
                venue="Акимат района Есиль, зал 2 (демо)",
            ),
            actor="akimat.demo",
            now=opens,
            illustrative=True,
        )
        add_comment(
            session,
            HEARING,
            author="resident.demo3",
            text="Нужны пандусы у поликлиники №7. (иллюстративно)",
            language="ru",
            now=opens + timedelta(days=3),
            illustrative=True,
        )
        record_outcome(
            session,
            HEARING,
            participants=86,
            now=held + timedelta(days=6),
            summary={
                "en": "86 residents came; accessibility and lighting were the main requests. (illustrative)",
                "ru": "Пришли 86 жителей; главные просьбы — доступная среда и освещение. (иллюстративно)",
                "kk": "86 тұрғын келді; негізгі өтініштер — қолжетімді орта және жарықтандыру. (иллюстрациялық)",
            },
        )


def load_demo(context: Context) -> DemoReport:
    """Load every demo part that is missing, then write the indicators (see the module doc)."""
    from qala.components.budgeting.indicators import compute_indicators, write_indicators

    now = context.clock()
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    secret_key = context.settings.secret_key
    rng = np.random.default_rng(SEED)
    created: list[str] = []
    ballots = 0
    if not _exists(context, Process, FINISHED):
        ballots += _run_process(
            context,
            code=FINISHED,
            place="astana",
            title={
                "kk": "Астананың қатысу бюджеті 2025",
                "ru": "Бюджет участия Астаны 2025",
                "en": "Astana participatory budget 2025",
            },
            budget=300_000_000,
            start=datetime(2025, 2, 1, 4, tzinfo=UTC),
            ideas=[0, 1, 2, 3, 4, 5, 8, 9, 10, 11],
            infeasible={
                9: f"Нереализуемо: предложенный участок — охраняемая зона затопления. {DEMO_NOTE}"
            },
            ballots=240,
            until=None,
            rng=rng,
            secret_key=secret_key,
            capital_budget=60_000_000_000,
            eligible=None,
        )
        _implement(context, rng, secret_key=secret_key, now=now)
        created.append(FINISHED)
    _city_projects(context, now)
    if not _exists(context, Process, VOTING):
        start = now - timedelta(days=40)
        ballots += _run_process(
            context,
            code=VOTING,
            place="astana-yesil-district",
            title={
                "kk": "Есіл ауданының қатысу бюджеті 2026",
                "ru": "Бюджет участия района Есиль 2026",
                "en": "Yesil district participatory budget 2026",
            },
            budget=150_000_000,
            start=start,
            ideas=[0, 2, 3, 4, 5, 6, 7, 9, 10, 11, 1, 8],
            infeasible={
                1: f"Нереализуемо на уровне района: набережная входит в городскую программу. {DEMO_NOTE}",
                8: f"Нереализуемо: здание библиотеки на реконструкции до 2027 года. {DEMO_NOTE}",
            },
            ballots=150,
            until=now - timedelta(hours=1),
            rng=rng,
            secret_key=secret_key,
            capital_budget=None,
            eligible=180_000,
        )
        with context.database.transaction() as session:
            for _name, citizen_iin in DEMO_CITIZENS:
                register_voter(session, VOTING, citizen_iin, secret_key=secret_key, now=now)
        created.append(VOTING)
    _survey(context, rng, secret_key=secret_key, now=now)
    _hearing(context, now=now)
    with context.database.session() as session:
        result = compute_indicators(session)
        projects = len(list_projects(session, today=now.date()))
    written = write_indicators(context.database, result, imported_by="budgeting demo")
    return DemoReport(created, ballots, projects, written)
