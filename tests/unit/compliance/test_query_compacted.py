"""Athena presets over the compacted copies (``query --engine athena --compacted``): the statement reads each
compacted partition from ``records_compacted`` and every other from ``records``, so every preset answers exactly
what it answers over the JSON records, whichever partitions compaction has reached. Run on DuckDB over a mirror
(no Athena here): ``records_compacted`` is made from the same records, as the compaction function makes it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.audit.record import CloudTrailRef, LaunchLink
from flopsmeter.cli import query
from flopsmeter.cli.main import main
from flopsmeter.compliance.query import Preset, QueryError, connect, preset_sql
from flopsmeter.compliance.query.compacted import COMBINED, compacted_cte, day_ranges, partitions_sql
from tests.support.athena_sql import parse_what_it_sends
from tests.support.records import make_record, write_mirror

A, B = "111122223333", "444455556666"
SWEEP = "arn:aws:sagemaker:eu-west-1:111122223333:hyper-parameter-tuning-job/s1"


def _job(i: int, day: int, flops: float, account: str = A):
    chain = [LaunchLink(kind="hyper-parameter-tuning-job", arn=SWEEP)] if i % 3 == 0 else []
    record = make_record(
        f"job-{i:03d}",
        flops=flops,
        pretrain=None,
        end=datetime(2026, 3, day, 12, tzinfo=UTC),
        cloudtrail=CloudTrailRef(status="found", principal_arn=f"arn:aws:sts::{account}:assumed-role/R/u{i % 2}",
                                 chain=chain),
    )  # fmt: skip
    job = record.job.model_copy(update={"account_id": account, "arn": record.job.arn.replace("123456789012", account)})
    return record.model_copy(update={"job": job}).sealed()


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    jobs = [_job(i, 1 + i % 6, (i + 1) * 4e21, A if i % 4 else B) for i in range(24)]
    connection = connect(write_mirror(tmp_path_factory.mktemp("compacted"), jobs))
    yield connection
    connection.close()


PRESETS = [
    Preset(),
    Preset(limit=5),
    Preset(exceeding=True),
    Preset(since="2026-03-04"),
    Preset(by_base_model=True),
    Preset(by_principal=True),
    Preset(by_sweep=True),
    Preset(accounts=(B,)),
    Preset(by_lineage=True),
]


@pytest.mark.parametrize(
    "compacted_days",
    [(), (1, 2, 3, 4, 5, 6), (1, 2), (1, 2, 4, 6)],  # none, all, the oldest, with gaps (a failed run)
)
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: ",".join(k for k, v in vars(p).items() if v) or "list")
def test_every_preset_answers_the_same_whatever_compaction_has_reached(con, compacted_days, preset) -> None:
    days = ", ".join(f"DATE '2026-03-{d:02d}'" for d in compacted_days) or "NULL"
    con.execute(f"CREATE OR REPLACE TEMP TABLE records_compacted AS SELECT * FROM records WHERE date IN ({days})")
    partitions = con.execute("SELECT DISTINCT account, region, date FROM records_compacted").fetchall()
    expected = _rows(con, preset_sql(preset))
    union = compacted_cte(partitions) + preset_sql(preset, table=COMBINED)
    assert _rows(con, union) == expected
    assert expected  # a preset that answers nothing proves nothing


def _rows(con, sql: str) -> list[tuple]:
    """The rows, sums rounded to 12 significant digits (their order of addition differs) and sorted (ties may)."""
    rows = [
        tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row) for row in con.execute(sql).fetchall()
    ]
    return sorted(rows, key=repr)


def test_compacted_days_become_ranges_per_account_and_region() -> None:
    rows = [(A, "eu-west-1", d) for d in ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-05")]
    rows += [(B, "eu-west-1", date(2026, 3, 2))]
    assert day_ranges(rows) == {
        (A, "eu-west-1"): [(date(2026, 3, 1), date(2026, 3, 3)), (date(2026, 3, 5), date(2026, 3, 5))],
        (B, "eu-west-1"): [(date(2026, 3, 2), date(2026, 3, 2))],
    }
    sql = compacted_cte(rows, columns=["job"])
    assert "date BETWEEN '2026-03-01' AND '2026-03-03'" in sql and sql.count(" OR ") == 2


@pytest.mark.parametrize(
    "row",
    [("1234", "eu-west-1", "2026-03-01"), (A, "eu-west-1'; DROP", "2026-03-01"), (A, "eu-west-1", "March")],
)
def test_a_partition_value_that_is_not_one_is_refused_not_inlined(row) -> None:
    with pytest.raises(QueryError):
        compacted_cte([row])


def test_cli_compacted_lists_the_partitions_then_runs_the_preset_over_both_tables(monkeypatch, capsys) -> None:
    """The two Athena calls, as sent (Stubber: the request shapes are botocore's)."""
    athena = boto3.client("athena", region_name="eu-west-1")
    sent = parse_what_it_sends(athena)  # Athena's grammar first
    stub = Stubber(athena)
    expected_sql = compacted_cte([(A, "eu-west-1", "2026-03-01")]) + preset_sql(
        Preset(exceeding=True), table=COMBINED, engine="athena"
    )
    context = {"WorkGroup": "wg", "QueryExecutionContext": {"Database": "db"}}
    answers = [
        (partitions_sql(), [["account", "region", "date"], [A, "eu-west-1", "2026-03-01"]]),
        (expected_sql, [["job"], ["job-001"]]),
    ]
    for number, (sql, rows) in enumerate(answers):
        stub.add_response("start_query_execution", {"QueryExecutionId": f"q{number}"}, {"QueryString": sql, **context})
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
            {"QueryExecutionId": f"q{number}"},
        )
        result_rows = [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]
        meta = {"ColumnInfo": [{"Name": n, "Type": "varchar"} for n in rows[0]]}
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"ResultSetMetadata": meta, "Rows": result_rows}},
            {"QueryExecutionId": f"q{number}"},
        )
    monkeypatch.setattr(query, "aws_clients", lambda args: lambda service: athena)
    argv = ["query", "--engine", "athena", "--workgroup", "wg", "--database", "db", "--compacted", "--exceeding"]
    with stub:
        assert main([*argv, "--format", "csv"]) == 0
    stub.assert_no_pending_responses()
    assert [line for line in capsys.readouterr().out.splitlines() if line] == ["job", "job-001"]
    assert sent == [partitions_sql(), expected_sql]


@pytest.mark.parametrize("argv", [["--compacted"], ["--engine", "athena", "--compacted", "SELECT 1"]])
def test_cli_compacted_is_for_athena_presets_only(argv, capsys) -> None:
    assert main(["query", *argv]) == 2
    assert "--compacted" in capsys.readouterr().err
