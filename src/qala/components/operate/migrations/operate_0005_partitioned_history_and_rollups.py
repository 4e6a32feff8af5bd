"""observation history partitioned by month on PostgreSQL; hourly and daily roll-ups

Revision ID: operate_0005
Revises: operate_0004
Create Date: 2026-12-06 01:20:00

On PostgreSQL ``operate_observation`` becomes a table partitioned by range of ``time_us``: one
partition per month that holds readings, the current month and three ahead, and a default
partition (``qala operate maintain`` keeps creating months ahead). Its keys gain the partition
key: primary key ``(id, time_us)``, a message id unique with its time. The roll-ups are filled
from the history already stored. SQLite keeps one plain table; only the message id's key changes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "operate_0005"
down_revision = "operate_0004"
branch_labels = None
depends_on = None

HOUR = 3_600_000_000
DAY = 24 * HOUR
COLUMNS = "id, sensor, quantity, time_us, value, unit, message_id, received_us"


def _rollup(name: str) -> None:
    op.create_table(
        name,
        sa.Column("sensor", sa.String(length=256), nullable=False),
        sa.Column("quantity", sa.String(length=64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sensor", "quantity", "start_us", name=op.f(f"pk_{name}")),
    )
    op.create_index(f"ix_{name}_start_us", name, ["start_us"])


def _fill_rollup(name: str, width: int) -> None:
    op.execute(
        f"INSERT INTO {name} (sensor, quantity, start_us, count, total, minimum, maximum) "
        f"SELECT sensor, quantity, (time_us / {width}) * {width}, count(*), sum(value), "
        f"min(value), max(value) FROM operate_observation "
        f"GROUP BY sensor, quantity, (time_us / {width}) * {width}"
    )


def _month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1_000_000


def _following(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _partition_postgres() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE operate_observation RENAME TO operate_observation_unpartitioned")
    for old in (
        "pk_operate_observation",
        "uq_operate_observation_message_id",
        "uq_operate_observation_sensor_quantity_time_us",
    ):
        op.execute(
            f"ALTER TABLE operate_observation_unpartitioned RENAME CONSTRAINT {old} TO {old}_old"
        )
    op.execute(
        "CREATE TABLE operate_observation ("
        " id bigint NOT NULL DEFAULT nextval('operate_observation_id_seq'),"
        " sensor varchar(256) NOT NULL, quantity varchar(64) NOT NULL, time_us bigint NOT NULL,"
        " value double precision NOT NULL, unit varchar(32) NOT NULL,"
        " message_id varchar(128), received_us bigint NOT NULL,"
        " CONSTRAINT pk_operate_observation PRIMARY KEY (id, time_us),"
        " CONSTRAINT uq_operate_observation_sensor_quantity_time_us"
        " UNIQUE (sensor, quantity, time_us),"
        " CONSTRAINT uq_operate_observation_message_id_time_us UNIQUE (message_id, time_us)"
        ") PARTITION BY RANGE (time_us)"
    )
    op.execute("CREATE TABLE operate_observation_default PARTITION OF operate_observation DEFAULT")
    months = {
        (moment.year, moment.month)
        for (day,) in bind.execute(
            sa.text(
                f"SELECT DISTINCT (time_us / {DAY}) * {DAY} FROM operate_observation_unpartitioned"
            )
        )
        for moment in [datetime.fromtimestamp(int(day) / 1e6, tz=UTC)]
    }
    now = datetime.now(UTC)
    year, month = now.year, now.month
    for _ in range(4):
        months.add((year, month))
        year, month = _following(year, month)
    for year, month in sorted(months):
        low, high = _month_start(year, month), _month_start(*_following(year, month))
        op.execute(
            f"CREATE TABLE operate_observation_y{year:04d}m{month:02d} PARTITION OF "
            f"operate_observation FOR VALUES FROM ({low}) TO ({high})"
        )
    op.execute(
        f"INSERT INTO operate_observation ({COLUMNS}) "
        f"SELECT {COLUMNS} FROM operate_observation_unpartitioned"
    )
    op.execute("ALTER SEQUENCE operate_observation_id_seq OWNED BY operate_observation.id")
    op.execute("DROP TABLE operate_observation_unpartitioned")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _partition_postgres()
    else:
        with op.batch_alter_table("operate_observation") as batch_op:
            batch_op.drop_constraint("uq_operate_observation_message_id", type_="unique")
            batch_op.create_unique_constraint(
                "uq_operate_observation_message_id_time_us", ["message_id", "time_us"]
            )
    _rollup("operate_observation_hourly")
    _rollup("operate_observation_daily")
    _fill_rollup("operate_observation_hourly", HOUR)
    _fill_rollup("operate_observation_daily", DAY)


def downgrade() -> None:
    op.drop_table("operate_observation_daily")
    op.drop_table("operate_observation_hourly")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE operate_observation RENAME TO operate_observation_partitioned")
        op.execute(
            "ALTER TABLE operate_observation_partitioned RENAME CONSTRAINT "
            "pk_operate_observation TO pk_operate_observation_partitioned"
        )
        for name in ("sensor_quantity_time_us", "message_id_time_us"):
            op.execute(
                "ALTER TABLE operate_observation_partitioned RENAME CONSTRAINT "
                f"uq_operate_observation_{name} TO uq_operate_observation_{name}_partitioned"
            )
        op.execute(
            "CREATE TABLE operate_observation ("
            " id bigint NOT NULL DEFAULT nextval('operate_observation_id_seq'),"
            " sensor varchar(256) NOT NULL, quantity varchar(64) NOT NULL,"
            " time_us bigint NOT NULL, value double precision NOT NULL,"
            " unit varchar(32) NOT NULL, message_id varchar(128), received_us bigint NOT NULL,"
            " CONSTRAINT pk_operate_observation PRIMARY KEY (id),"
            " CONSTRAINT uq_operate_observation_message_id UNIQUE (message_id),"
            " CONSTRAINT uq_operate_observation_sensor_quantity_time_us"
            " UNIQUE (sensor, quantity, time_us))"
        )
        # A message id repeated at another time (allowed since) keeps its first reading.
        op.execute(
            f"INSERT INTO operate_observation ({COLUMNS}) SELECT {COLUMNS} FROM "
            "operate_observation_partitioned ORDER BY id ON CONFLICT DO NOTHING"
        )
        op.execute("ALTER SEQUENCE operate_observation_id_seq OWNED BY operate_observation.id")
        op.execute("DROP TABLE operate_observation_partitioned CASCADE")
    else:
        with op.batch_alter_table("operate_observation") as batch_op:
            batch_op.drop_constraint("uq_operate_observation_message_id_time_us", type_="unique")
            batch_op.create_unique_constraint("uq_operate_observation_message_id", ["message_id"])
